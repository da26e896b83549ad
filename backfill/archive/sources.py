"""Where archives are read from: files, directories (read recursively, in name order; names
that start with a dot are skipped), ``-`` for standard input, and object-store URLs (``s3://``,
``gs://``, ``az://`` ...) through fsspec, an optional extra as pandas and DuckDB users know it.

Every source is listed before anything is read, with what identifies its content (size, and its
modification time or its object's ETag): a checkpoint records that, so a source that changed
since is named and refused instead of resumed into a mixed import. A source that cannot be
listed (missing, not readable, an object store without its extra or its credentials) is a
``ConfigError`` (exit 2): nothing was read, and the command line is what to change.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from backfill.errors import ConfigError, given_text

STDIN = "-"
# The extra that installs each protocol's fsspec implementation (pyproject.toml).
EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gs",
    "gcs": "gs",
    "az": "az",
    "abfs": "az",
    "abfss": "az",
    "adl": "az",
}


@dataclass
class Source:
    """One file or object to read."""

    name: str  # as messages show it: a path, a URL, or "-"
    size: int | None  # bytes, as stored (compressed); None: unknown (standard input)
    fingerprint: dict[str, Any]  # what identifies its content now
    opener: Callable[[], BinaryIO] = field(repr=False, compare=False)

    def open(self) -> BinaryIO:
        try:
            return self.opener()
        except FileNotFoundError:
            raise ConfigError(
                f"Source {given_text(self.name)} disappeared while reading."
            ) from None
        except PermissionError:
            raise _denied(self.name) from None


def expand(arguments: tuple[str, ...]) -> list[Source]:
    """Every source the arguments name, in the order given (a directory's files in name
    order); the same file named twice is read once."""
    if not arguments:
        raise ConfigError("Give at least one source: a file, a directory, - or a URL.")
    if arguments.count(STDIN) > 1:
        raise ConfigError("Standard input (-) can be read once: give it once.")
    found: list[Source] = []
    seen: set[str] = set()
    for argument in arguments:
        for source in _one(argument):
            if source.name not in seen:
                seen.add(source.name)
                found.append(source)
    return found


def _one(argument: str) -> list[Source]:
    if argument == STDIN:
        return [Source(STDIN, None, {"stdin": True}, lambda: sys.stdin.buffer)]
    if "://" in argument and not argument.startswith("file://"):
        return _remote(argument)
    return _local(Path(argument.removeprefix("file://")))


# -- local files ------------------------------------------------------------------------------


def _local(path: Path) -> list[Source]:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            f"Source {given_text(str(path))} does not exist.",
            hint="Check the path (a directory is read with every file under it).",
        ) from None
    except PermissionError:
        raise _denied(str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        return [_file(item, item.stat()) for item in _walk(path)]
    return [_file(path, info)]


def _walk(root: Path) -> list[Path]:
    """Regular files under ``root``, in name order (by path: ``a/10`` before ``c``), skipping
    names that start with a dot."""
    found = []
    for folder, folders, files in os.walk(root, onerror=_walk_error):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            candidate = Path(folder) / name
            if not name.startswith(".") and candidate.is_file():
                found.append(candidate)
    return sorted(found, key=lambda path: path.relative_to(root).parts)


def _walk_error(error: OSError) -> None:
    raise _denied(str(error.filename)) from None


def _file(path: Path, info: os.stat_result) -> Source:
    if not os.access(path, os.R_OK):
        raise _denied(str(path))
    return Source(
        str(path),
        info.st_size,
        {"size": info.st_size, "mtime_ns": info.st_mtime_ns},
        lambda: path.open("rb"),
    )


def _denied(name: str) -> ConfigError:
    return ConfigError(
        f"Source {given_text(name)} cannot be read: permission denied.",
        hint="Give this user read access to it, or leave it out of the command.",
    )


# -- object stores ---------------------------------------------------------------------------


def _remote(url: str) -> list[Source]:
    protocol = url.split("://", 1)[0].lower()
    extra = EXTRAS.get(protocol)
    install = f"pip install 'auth0-backfill[{extra}]'" if extra else "install fsspec"
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"Reading {given_text(url)} needs fsspec, which is not installed.",
            hint=f"{install} (object stores are an optional extra).",
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError:
        raise ConfigError(
            f"Reading {protocol}:// URLs needs an fsspec implementation that is not installed.",
            hint=f"{install}.",
        ) from None
    except ValueError as error:
        raise ConfigError(f"Source {given_text(url)}: {error}.") from None
    try:
        info = fs.info(path)
        if info.get("type") == "directory":
            listed = fs.find(path, detail=True)
            entries = [listed[name] for name in sorted(listed)]
        else:
            entries = [info]
    except Exception as error:  # noqa: BLE001 - each store raises its own kinds: all named
        raise _store_error(url, error) from None
    found = [entry for entry in entries if entry.get("type", "file") == "file"]
    if not found:
        raise ConfigError(f"Source {given_text(url)} holds no object.")
    return [_object(fs, entry) for entry in found]


def _object(fs: Any, entry: dict[str, Any]) -> Source:
    name = str(entry["name"])
    url = fs.unstrip_protocol(name)
    tag = next(
        (entry[key] for key in ("ETag", "etag", "md5Hash", "content_settings") if entry.get(key)),
        None,
    )
    modified = next(
        (
            entry[key]
            for key in ("LastModified", "mtime", "updated", "last_modified")
            if key in entry
        ),
        None,
    )
    fingerprint = {"size": entry.get("size"), "etag": str(tag) if tag else None}
    if tag is None:
        fingerprint["modified"] = str(modified) if modified is not None else None
    return Source(url, entry.get("size"), fingerprint, lambda: fs.open(name, "rb"))


def _store_error(url: str, error: Exception) -> ConfigError:
    kind = type(error).__name__
    text = given_text(" ".join(str(error).split())) or kind
    if isinstance(error, FileNotFoundError):
        return ConfigError(f"Source {given_text(url)} does not exist ({text}).")
    if isinstance(error, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
        return ConfigError(
            f"Source {given_text(url)} cannot be read: access denied ({text}).",
            hint="Check the credentials in the environment (e.g. AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID) and that they may list and read it.",
        )
    if "Credentials" in kind or "credentials" in text.lower():
        return ConfigError(
            f"Source {given_text(url)} cannot be read: no credentials for the object store "
            f"({kind}).",
            hint="Set them as the store's own tools expect (for S3: AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for GCS: "
            "GOOGLE_APPLICATION_CREDENTIALS; for Azure: AZURE_STORAGE_CONNECTION_STRING).",
        )
    return ConfigError(f"Source {given_text(url)} cannot be listed: {kind}: {text}.")


# -- what a source read -----------------------------------------------------------------------


class Counted:
    """A source's raw (still compressed) bytes as they are read: how many, and for standard
    input (which has no size or modification time) their digest, which identifies it."""

    def __init__(self, raw: BinaryIO, *, digest: bool) -> None:
        self._raw = raw
        self.bytes = 0
        self._hash = hashlib.sha256() if digest else None

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.bytes += len(data)
        if self._hash is not None:
            self._hash.update(data)
        return data

    def digest(self) -> str | None:
        return self._hash.hexdigest() if self._hash is not None else None


def fingerprints(sources: list[Source]) -> list[dict[str, Any]]:
    """What a checkpoint records of its sources."""
    return [{"name": source.name, **source.fingerprint} for source in sources]


def changed(recorded: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[str]:
    """The sources that differ between a checkpoint and now: changed, added or gone (standard
    input is compared by its digest once read)."""
    before = {item["name"]: item for item in recorded}
    now = {item["name"]: item for item in current}
    names = []
    for name in sorted(set(before) | set(now)):
        was, is_ = before.get(name), now.get(name)
        if was is None:
            names.append(f"{name} (new)")
        elif is_ is None:
            names.append(f"{name} (gone)")
        elif name != STDIN and was != is_:
            names.append(f"{name} (changed)")
    return names
