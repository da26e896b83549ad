"""The checkpoint file: a small versioned JSON file, written atomically, locked for one run at a
time, bound to one tenant and data source, readable by a person, never holding a secret.

What it records (``model``): every range of the run and each range's cursor (the last log_id
whose batch Tinybird acknowledged, filtered-out records included), the appends in flight (so a
resume after a crash can ask Tinybird which of their rows landed), a per-day ledger of rows sent
(for ``verify``), what the run was started with (so a resume with other flags is refused, not
silently mixed), and the logs left out on purpose: refused by Tinybird as too large (until the
operator decides), or skipped with ``--skip-log-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from backfill import __version__
from backfill.errors import StateError, StateLockedError
from backfill.state.model import (
    STATE_FORMAT,
    STATE_VERSION,
    Gap,
    LeftOut,
    PendingAppend,
    RangeState,
    RunState,
)
from backfill.state.schema import check_fields
from backfill.timeutil import iso, utcnow


def load(path: Path) -> RunState | None:
    """The state at ``path``, None when there is none; StateError when it cannot be trusted."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StateError(f"State file {path} cannot be read: {error.strerror}.") from None
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise StateError(
            f"State file {path} is not valid JSON ({error}); it may be truncated or corrupted.",
            hint="It was left untouched. Restore it from a backup, or start over with --restart "
            "(the damaged file is kept beside it).",
        ) from None
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise StateError(
            f"{path} is not an auth0-backfill state file.",
            hint="Point --state at this job's state file, or at a path that does not exist yet.",
        )
    version = document.get("version")
    if not isinstance(version, int) or version > STATE_VERSION:
        raise StateError(
            f"State file {path} was written by a newer auth0-backfill "
            f"({document.get('written_by', '?')}, state version {version}); "
            f"this is {__version__} (state version {STATE_VERSION}).",
            hint="Upgrade auth0-backfill; the file was left untouched.",
        )
    try:
        return _from_json(document)
    except (KeyError, TypeError, ValueError) as error:
        detail = error.args[0] if isinstance(error, KeyError) else str(error)
        raise StateError(
            f"State file {path} is damaged: {detail}.",
            hint="It was left untouched. Restore it from a backup, or start over with --restart "
            "(the damaged file is kept beside the new one).",
        ) from None


def _from_json(document: dict[str, Any]) -> RunState:
    names = {item.name for item in fields(RunState)}
    body = {key: value for key, value in document.items() if key in names}
    for required in ("tenant", "datasource", "tinybird_host", "started_with"):
        if required not in body:
            raise KeyError(f"missing {required!r}")
    check_fields(RunState, body, "")
    state = RunState(**body)
    state.ranges = [
        _item(RangeState, item, f"ranges[{index}].") for index, item in _each(body, "ranges")
    ]
    state.pending = [
        _item(PendingAppend, item, f"pending[{index}].") for index, item in _each(body, "pending")
    ]
    state.gaps = [_item(Gap, item, f"gaps[{index}].") for index, item in _each(body, "gaps")]
    state.refused = [
        _item(LeftOut, item, f"refused[{index}].") for index, item in _each(body, "refused")
    ]
    state.skipped = [
        _item(LeftOut, item, f"skipped[{index}].") for index, item in _each(body, "skipped")
    ]
    for item in state.ranges:
        if not item.start_after:
            raise ValueError(f"range {item.id} has no start position")
        for name in ("start", "end", "cursor_date"):
            value = getattr(item, name)
            if value is not None and _not_a_date(value):
                raise ValueError(f"range {item.id}'s {name} {value!r} is not a date")
        if item.end_id is not None and not (item.end_id.isascii() and item.end_id.isdigit()):
            raise ValueError(f"range {item.id}'s end_id {item.end_id!r} is not a log_id")
    return state


def _each(body: dict[str, Any], key: str) -> list[tuple[int, Any]]:
    return list(enumerate(body.get(key) or []))


def _item(cls: Any, item: Any, where: str) -> Any:
    if not isinstance(item, dict):
        raise ValueError(f"{where.rstrip('.')} is not an object")
    check_fields(cls, item, where)
    return cls(**item)


def _not_a_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return True
    return False


def check_binding(
    state: RunState, *, path: Path, tenant: str, datasource: str, tinybird_host: str
) -> None:
    """A checkpoint belongs to one tenant, one data source and one Tinybird host: resumed
    against another workspace, it would send there only the rows after it."""
    if state.tenant != tenant or state.datasource != datasource:
        raise StateError(
            f"State file {path} belongs to tenant {state.tenant} and data source "
            f"{state.datasource}, not to {tenant} and {datasource}.",
            hint="Use a separate --state per tenant and data source (the file was left "
            "untouched), or --restart to start this one over.",
        )
    if state.tinybird_host.rstrip("/").lower() != tinybird_host.rstrip("/").lower():
        raise StateError(
            f"State file {path} was made for the Tinybird host {state.tinybird_host}, not "
            f"{tinybird_host} (TINYBIRD_HOST): its checkpoint says what landed there.",
            hint=f"Set TINYBIRD_HOST={state.tinybird_host} to resume it, or use a separate "
            f"--state for {tinybird_host} (the file was left untouched), or --restart to start "
            "this one over.",
        )


def save(path: Path, state: RunState) -> None:
    try:
        write_atomic(path, snapshot(state))
    except OSError as error:
        raise unwritable(path, error) from None


def snapshot(state: RunState) -> bytes:
    """The state as the file holds it, stamped with when it was saved."""
    state.saved_at = round(time.time(), 3)
    return (json.dumps(state.to_json(), indent=1, sort_keys=False) + "\n").encode()


class Saver:
    """One state file, written off the event loop.

    ``submit`` takes the state's bytes at once (the file will hold the state as it was then);
    a worker thread writes and fsyncs the latest bytes submitted (an older snapshot not yet
    written is skipped: only the latest matters); ``durable`` waits until everything submitted
    so far is on disk, and raises the ``StateError`` of a write that failed. An fsync takes
    milliseconds to tens of them: forty tenants saving in the loop would stall every one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._latest: bytes | None = None
        self._submitted = 0
        self._written = 0
        self._failure: StateError | None = None
        self._writer: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()

    def submit(self, state: RunState) -> None:
        self._latest = snapshot(state)
        self._submitted += 1
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def durable(self) -> None:
        wanted = self._submitted
        while self._written < wanted and self._failure is None:
            self._progress.clear()
            await self._progress.wait()
        if self._failure is not None:
            raise self._failure

    async def _write(self) -> None:
        while self._latest is not None and self._failure is None:
            content, version, self._latest = self._latest, self._submitted, None
            try:
                await asyncio.to_thread(write_atomic, self.path, content)
            except OSError as error:
                self._failure = unwritable(self.path, error)
            else:
                self._written = version
            self._progress.set()


def unwritable(path: Path, error: OSError) -> StateError:
    directory = path.parent if str(path.parent) else Path(".")
    return StateError(
        f"The state file {path} cannot be written: {error.strerror or error}.",
        hint=f"Make {directory} writable for this user (and check the disk has room), or point "
        "--state (or AUTH0_BACKFILL_STATE) at a writable place. The checkpoint on disk is the "
        "last one written.",
    )


def write_atomic(path: Path, content: bytes) -> None:
    """Temp file in the same directory, fsync, rename over: a reader sees old or new, never half."""
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError):
        directory_handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_handle)
        finally:
            os.close(directory_handle)


def open_private(path: Path) -> BinaryIO:
    """A file that will hold records (a dry run's envelopes: emails, IPs), opened for writing
    as the state file is: readable by this user only (0600), whatever the umask, also when it
    existed before."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with contextlib.suppress(OSError):  # not ours to change (a pipe, /dev/stdout): as it is
        os.fchmod(handle, 0o600)
    return os.fdopen(handle, "wb")


def set_aside(path: Path) -> Path:
    """Keep an unusable state file beside the new one instead of overwriting it."""
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.broken-{stamp}")
    os.replace(path, target)
    return target


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold ``<state>.lock`` for the whole run; a second run on the same state exits at once.

    flock is released by the kernel when the process dies, even by SIGKILL, so a crash never
    leaves a stale lock behind.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:  # before anything is read or sent: say so now
        raise unwritable(path, error) from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(handle, 200, 0).decode(errors="replace").strip() or "another process"
            raise StateLockedError(
                f"Another auth0-backfill run ({holder}) is using {path}.",
                hint="Nothing was done. This run exits so the two never overlap; cron will try "
                "again at the next slot.",
            ) from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"pid {os.getpid()}, started {iso(utcnow())}".encode(), 0)
        yield
    finally:
        os.close(handle)
