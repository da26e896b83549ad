"""Compression, recognised by its first bytes, never by a file name: Firehose writes objects
without a suffix, and a ``.json`` file may well be gzip.

gzip (several members back to back too, as ``cat a.gz b.gz`` makes them), zstd (frames back to
back), bzip2 and xz; anything else is read as it is. A stream cut short, or bytes that do not
decompress, stop the import with the source named (``DataError``, exit 9): what follows the cut
cannot be read, and a partial file imported silently would leave a hole nobody sees.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Iterator
from typing import Any, Protocol, cast

from backfill.errors import ConfigError, DataError

try:  # ISA-L's inflate: several times zlib's speed, where it has wheels (see pyproject.toml)
    from isal import igzip as gzip_module
    from isal import igzip_lib

    ISAL_ERROR = cast(type[Exception], igzip_lib.IsalError)  # typed as an instance by its stubs
    DAMAGED: tuple[type[Exception], ...] = (
        OSError, ValueError, zlib.error, lzma.LZMAError, ISAL_ERROR
    )  # fmt: skip
except ImportError:  # pragma: no cover - exercised on machines without isal
    import gzip as gzip_module  # type: ignore[no-redef]

    DAMAGED = (OSError, ValueError, zlib.error, lzma.LZMAError)

CHUNK = 1 << 20  # decompressed bytes handed to the parser at a time

GZIP = b"\x1f\x8b"
ZSTD = b"\x28\xb5\x2f\xfd"
BZIP2 = b"BZh"
XZ = b"\xfd7zXZ\x00"


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def sniff(head: bytes) -> str | None:
    """The compression the first bytes announce, or None for plain bytes."""
    if head.startswith(GZIP):
        return "gzip"
    if head.startswith(ZSTD):
        return "zstd"
    if head.startswith(XZ):
        return "xz"
    if head.startswith(BZIP2) and len(head) > 3 and head[3:4].isdigit():
        return "bzip2"
    return None


class _Peeked(io.RawIOBase):
    """A binary stream whose first bytes were read to sniff it, read again from the start."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def chunks(raw: Readable, name: str) -> Iterator[bytes]:
    """The decompressed bytes of ``raw``, ``CHUNK`` at a time."""
    head = raw.read(8)
    kind = sniff(head)
    stream = _Peeked(head, raw)
    if kind is None:
        yield from _plain(stream)
        return
    reader = _decompressor(kind, stream, name)
    try:
        while True:
            data = reader.read(CHUNK)
            if not data:
                return
            yield data
    except EOFError:
        raise DataError(
            f"Source {name}: the {kind} stream is cut short (the file ends before its end "
            "marker). Nothing was sent.",
            hint="Copy the file again from where it came, or leave it out of the command.",
        ) from None
    except DAMAGED as error:
        raise DataError(
            f"Source {name}: the {kind} data is damaged ({error}). Nothing was sent.",
            hint="Copy the file again from where it came, or leave it out of the command.",
        ) from None
    except Exception as error:  # zstandard.ZstdError derives from Exception only
        if type(error).__name__ != "ZstdError":
            raise
        raise DataError(
            f"Source {name}: the zstd data is damaged or cut short ({error}). Nothing was sent.",
            hint="Copy the file again from where it came, or leave it out of the command.",
        ) from None


def _plain(stream: _Peeked) -> Iterator[bytes]:
    while True:
        data = stream.read(CHUNK) or b""
        if not data:
            return
        yield data


def _decompressor(kind: str, stream: _Peeked, name: str) -> Readable:
    if kind == "gzip":
        reader: Readable = gzip_module.GzipFile(fileobj=stream, mode="rb")  # type: ignore[no-untyped-call]
        return reader
    if kind == "bzip2":
        return bz2.BZ2File(stream, mode="rb")
    if kind == "xz":
        return lzma.LZMAFile(stream, mode="rb")  # type: ignore[arg-type]
    return _zstd(stream, name)


def _zstd(stream: _Peeked, name: str) -> Readable:
    """zstd through the ``zstandard`` package (the standard library has it from Python 3.14)."""
    try:
        import zstandard
    except ImportError:
        raise ConfigError(
            f"Source {name} is zstd-compressed, and reading zstd needs the optional extra.",
            hint="pip install 'auth0-backfill[zstd]' (or decompress it first: zstd -d).",
        ) from None
    return _ZstdFrames(stream, zstandard.ZstdDecompressor())


class _ZstdFrames:
    """zstd frames back to back, through the decompression object (its ``eof`` says whether a
    frame was closed): zstandard's stream reader returns b"" at the end of its input even
    inside a frame, so a stream cut short would read as a shorter one. An open frame at the
    end is an EOFError here, as gzip raises one."""

    def __init__(self, stream: _Peeked, decompressor: Any) -> None:
        self._stream = stream
        self._factory = decompressor
        self._current = decompressor.decompressobj()
        self._started = False

    def read(self, size: int = -1, /) -> bytes:
        while True:
            raw = self._stream.read(size)
            if not raw:
                if self._started and not self._current.eof:
                    raise EOFError
                return b""
            out = self._feed(raw)
            if out:
                return out

    def _feed(self, raw: bytes) -> bytes:
        parts = []
        while raw:
            if self._current.eof:
                self._current = self._factory.decompressobj()
            self._started = True
            parts.append(self._current.decompress(raw))
            raw = self._current.unused_data if self._current.eof else b""
        return b"".join(parts)
