"""An import's checkpoint: a small versioned JSON file, written atomically (0600), locked for one
import at a time (``state.file``'s lock: exit 75 on overlap), bound to the data source and
Tinybird host, to the command's sources and to the flags that decide its rows.

What it holds: where sending stands in the staged order (``cursor``, the last row of the last
batch Tinybird acknowledged, every batch before it included), the appends in flight (so a resume
asks Tinybird which of their rows landed), the totals and a per-day ledger of rows sent, and the
logs left out on purpose. The sources' fingerprints (size, modification time or ETag; the digest
of standard input) are kept beside it, written once (``<state>.sources``): a Firehose archive
of a year has a hundred thousand objects, too many to rewrite with every checkpoint.

It is created only once reading is done and every refusal passed, right before the first
append: an import refused before sending leaves no checkpoint behind.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from backfill import __version__
from backfill.errors import StateError, given_text, listed
from backfill.state.file import unwritable, write_atomic
from backfill.state.model import STATE_FORMAT, LeftOut
from backfill.state.schema import check_fields
from backfill.timeutil import iso, utcnow

IMPORT_FORMAT = "auth0-backfill-import-state"
IMPORT_VERSION = 1
# What binds a checkpoint: the same values resume it, others are refused (--restart starts
# over). --skip-existing, --allow-duplicates and --max-rejects are not among them.
BINDING = ("sources", "from_date", "until_date", "types", "exclude_types", "pii", "tenant")


@dataclass
class Pending:
    """An append that was (or was about to be) in flight: which rows it carries."""

    seq: int
    rows: int
    first: list[str]  # its first and last rows' keys, (month, log_id)
    last: list[str]
    min_log_id: str
    max_log_id: str
    min_date: str
    max_date: str
    digest: str


@dataclass
class ImportState:
    datasource: str
    tinybird_host: str
    started_with: dict[str, Any]
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    sources: int = 0
    staged_rows: int = 0
    cursor: list[str] | None = None  # (month, log_id) of the last acknowledged row
    done: bool = False
    rows_sent: int = 0
    quarantined_rows: int = 0
    already_landed_rows: int = 0
    batches: int = 0
    pending: list[Pending] = field(default_factory=list)
    ledger: dict[str, int] = field(default_factory=dict)
    refused: list[LeftOut] = field(default_factory=list)
    skipped: list[LeftOut] = field(default_factory=list)
    saved_at: str | None = None
    last_run: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        document = {"format": IMPORT_FORMAT, "version": IMPORT_VERSION, "written_by": __version__}
        document.update(asdict(self))
        return document


def sources_path(state: Path) -> Path:
    return state.with_name(state.name + ".sources")


def load(path: Path) -> ImportState | None:
    """The checkpoint at ``path``, None when there is none; StateError when it cannot be used."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"State file {path} cannot be read: {error.strerror}.") from None
    except ValueError:
        raise _damaged(path, "not valid JSON; it may be truncated") from None
    if isinstance(document, dict) and document.get("format") == STATE_FORMAT:
        raise StateError(
            f"{path} holds the checkpoint of a `run`, not of an import.",
            hint="Give the import its own --state (default auth0-backfill-import-state.json).",
        )
    if not isinstance(document, dict) or document.get("format") != IMPORT_FORMAT:
        raise StateError(
            f"{path} is not an auth0-backfill import state file.",
            hint="Point --state at this import's state file, or at a path that does not exist.",
        )
    version = document.get("version")
    if not isinstance(version, int) or version > IMPORT_VERSION:
        raise StateError(
            f"State file {path} was written by a newer auth0-backfill "
            f"({document.get('written_by', '?')}).",
            hint="Upgrade auth0-backfill; the file was left untouched.",
        )
    try:
        return _from_json(document)
    except (KeyError, TypeError, ValueError) as error:
        raise _damaged(path, str(error.args[0] if error.args else error)) from None


def _from_json(document: dict[str, Any]) -> ImportState:
    names = {item.name for item in fields(ImportState)}
    body = {key: value for key, value in document.items() if key in names}
    for required in ("datasource", "tinybird_host", "started_with"):
        if required not in body:
            raise KeyError(f"missing {required!r}")
    check_fields(ImportState, body, "")
    state = ImportState(**body)
    state.pending = [_item(Pending, item, f"pending[{n}].") for n, item in enumerate(state.pending)]
    state.refused = [_item(LeftOut, item, f"refused[{n}].") for n, item in enumerate(state.refused)]
    state.skipped = [_item(LeftOut, item, f"skipped[{n}].") for n, item in enumerate(state.skipped)]
    if state.cursor is not None and len(state.cursor) != 2:
        raise ValueError("cursor is not (month, log_id)")
    return state


def _item(cls: Any, item: Any, where: str) -> Any:
    if not isinstance(item, dict):
        raise ValueError(f"{where.rstrip('.')} is not an object")
    check_fields(cls, item, where)
    return cls(**item)


def _damaged(path: Path, detail: str) -> StateError:
    return StateError(
        f"State file {path} is damaged: {detail}.",
        hint="It was left untouched. Restore it, or start over with --restart (the damaged file "
        "is kept beside the new one).",
    )


def save(path: Path, state: ImportState) -> None:
    state.saved_at = iso(utcnow())
    content = (json.dumps(state.to_json(), indent=1) + "\n").encode()
    try:
        write_atomic(path, content)
    except OSError as error:
        raise unwritable(path, error) from None


class Saver:
    """Saves from the event loop without blocking it: the snapshot is serialized at once (so it
    is consistent), written and fsynced in a worker thread. Saves asked while one is being
    written are folded into the next write: a caller that awaits ``save`` returns once a
    snapshot at least as new as its change is on disk."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = asyncio.Lock()
        self._asked = 0
        self._written = 0

    async def save(self, state: ImportState) -> None:
        self._asked += 1
        mine = self._asked
        async with self._lock:
            if self._written >= mine:
                return  # a newer snapshot was written while this one waited
            version = self._asked
            state.saved_at = iso(utcnow())
            content = (json.dumps(state.to_json(), indent=1) + "\n").encode()
            try:
                await asyncio.to_thread(write_atomic, self._path, content)
            except OSError as error:
                raise unwritable(self._path, error) from None
            self._written = version


def save_sources(path: Path, recorded: list[dict[str, Any]]) -> None:
    try:
        write_atomic(sources_path(path), (json.dumps(recorded, indent=0) + "\n").encode())
    except OSError as error:
        raise unwritable(sources_path(path), error) from None


def load_sources(path: Path) -> list[dict[str, Any]]:
    companion = sources_path(path)
    try:
        recorded = json.loads(companion.read_bytes())
    except (OSError, ValueError):
        raise StateError(
            f"The list of sources beside the state file ({companion}) is missing or damaged: "
            "whether the sources changed since the checkpoint cannot be told.",
            hint="Restore it, or start over with --restart.",
        ) from None
    if not isinstance(recorded, list) or not all(isinstance(item, dict) for item in recorded):
        raise StateError(
            f"{companion} is damaged.", hint="Restore it, or start over with --restart."
        )
    return recorded


def check_binding(
    state: ImportState, path: Path, *, datasource: str, tinybird_host: str, binding: dict[str, Any]
) -> None:
    """A checkpoint resumes the same import only: same data source and host, same sources and
    the same flags that decide the rows."""
    if state.datasource != datasource:
        raise StateError(
            f"State file {path} belongs to data source {state.datasource}, not {datasource}.",
            hint="Use a separate --state per data source, or --restart to start this one over.",
        )
    if state.tinybird_host.rstrip("/").lower() != tinybird_host.rstrip("/").lower():
        raise StateError(
            f"State file {path} was made for the Tinybird host {state.tinybird_host}, not "
            f"{tinybird_host}.",
            hint=f"Set TINYBIRD_HOST={state.tinybird_host} to resume it, or --restart.",
        )
    differing = [key for key in BINDING if state.started_with.get(key) != binding.get(key)]
    if differing:
        shown = [
            f"{key.replace('_', '-')} was {given_text(str(state.started_with.get(key)))}"
            for key in differing
        ]
        raise StateError(
            f"State file {path} is the checkpoint of an import with other "
            f"{'sources or ' if 'sources' in differing else ''}flags: {listed(shown, 3)}.",
            hint="Repeat the command it was started with to resume it, use another --state for "
            "this one, or --restart to start it over.",
        )


def changed_error(path: Path, names: list[str]) -> StateError:
    return StateError(
        f"Sources changed since the checkpoint in {path}: {listed(names, 4)}. Resuming would mix "
        "two archives. Nothing was sent.",
        hint="Restore them as they were to resume, or run again with --restart to import them "
        "anew (with --skip-existing to send only what the data source lacks).",
    )
