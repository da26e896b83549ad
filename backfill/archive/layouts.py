"""How items lie in a file, detected per file from its first bytes: NDJSON (one JSON object a
line), JSON arrays (one, or several back to back as a webhook's ``JSONARRAY`` bodies pile up),
or JSON objects written back to back with no separator (Firehose's default) or any whitespace.

Every item comes out with its number in the file and the line it starts on, parsed (orjson) or
with the reason it could not be (``Item.error``), so a bad one can be named precisely.

Arrays and back-to-back objects are cut without a JSON tokenizer in Python (which would cost
more than the parse): outside strings, ``}`` followed by ``{`` (with only whitespace, commas and
brackets between) happens only between two items. A cut inside a string (or inside a nested
array) leaves a piece that is not valid JSON, whose quotes or brackets do not balance, so a
piece that does not parse is joined to the next one and tried again. A piece that still does not
parse after ``MERGE_LIMIT`` joins, or past ``ITEM_LIMIT`` bytes, is reported bad on its own and
reading goes on after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

NDJSON, ARRAY, OBJECTS = "NDJSON", "JSON array", "concatenated JSON objects"

BETWEEN_ITEMS = re.compile(rb"\}[\s,\[\]]*\{")
WHITESPACE = b" \t\r\n"
MERGE_LIMIT = 64  # cuts an item may span (nested arrays of objects, "}{" inside strings)
ITEM_LIMIT = 16 * 1024 * 1024  # bytes: far beyond any Auth0 record and any Tinybird row
FIRST_LINE_LIMIT = 64 * 1024 * 1024  # read this far for the first line before deciding
BOM = b"\xef\xbb\xbf"


@dataclass
class Item:
    number: int  # the item's place in its file, from 1
    line: int  # the line it starts on, from 1
    value: Any = None
    error: str | None = None  # why it is not JSON
    raw: bytes = b""  # its bytes, kept only when it is bad (for the rejects file)


def items(chunks: Iterator[bytes]) -> tuple[str, Iterator[Item]]:
    """The file's layout and its items."""
    head, rest = _head(chunks)
    if not head:
        return NDJSON, iter(())
    first = head.lstrip(WHITESPACE)[:1]
    if first == b"[":
        return ARRAY, _pieces(head, rest)
    head = _through_first_line(head, rest)
    if first == b"{" and not _parses(head.lstrip(WHITESPACE).split(b"\n", 1)[0]):
        return OBJECTS, _pieces(head, rest)
    return NDJSON, _lines(head, rest)


def _head(chunks: Iterator[bytes]) -> tuple[bytes, Iterator[bytes]]:
    """The bytes from the first that is not whitespace on (a byte order mark dropped, the
    blank lines before kept as newlines so line numbers stay right), and the rest."""
    skipped = 0
    for chunk in chunks:
        if chunk.startswith(BOM):
            chunk = chunk[len(BOM) :]
        stripped = chunk.lstrip(WHITESPACE)
        if stripped:
            skipped += chunk[: len(chunk) - len(stripped)].count(b"\n")
            return b"\n" * skipped + stripped, chunks
        skipped += chunk.count(b"\n")
    return b"", chunks


def _through_first_line(head: bytes, rest: Iterator[bytes]) -> bytes:
    """``head`` extended with the chunks that complete its first line (up to a limit)."""
    taken = [head]
    size = len(head)
    while b"\n" not in taken[-1].lstrip(WHITESPACE) and size < FIRST_LINE_LIMIT:
        more = next(rest, None)
        if more is None:
            break
        taken.append(more)
        size += len(more)
    return b"".join(taken)


def _parses(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _lines(head: bytes, rest: Iterator[bytes]) -> Iterator[Item]:
    """NDJSON: one item a line; blank lines skipped; a last line without a newline counts."""
    line = number = 0
    pending = head
    for chunk in _chain(rest):
        data = pending + chunk if pending else chunk
        lines = data.split(b"\n")
        pending = lines.pop()
        for raw in lines:
            line += 1
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                if not raw.strip(WHITESPACE):
                    continue
                number += 1
                yield Item(number, line, error=_why(error, raw), raw=raw)
                continue
            number += 1
            yield Item(number, line, value)
    if pending.strip(WHITESPACE):
        line += 1
        number += 1
        try:
            yield Item(number, line, orjson.loads(pending))
        except orjson.JSONDecodeError as error:
            yield Item(number, line, error=_why(error, pending, last=True), raw=pending)


def _pieces(head: bytes, rest: Iterator[bytes]) -> Iterator[Item]:
    """Arrays and back-to-back objects: cut where one item ends and the next begins."""
    cutter = _Cutter()
    data = head.lstrip(WHITESPACE + b"[")
    cutter.line += head[: len(head) - len(data)].count(b"\n")
    for chunk in _chain(rest):
        data = data + chunk if data else chunk
        yield from cutter.cut(data, final=False)
        data = data[cutter.consumed :]
    yield from cutter.cut(data.rstrip(WHITESPACE + b"],"), final=True)


def _chain(rest: Iterator[bytes]) -> Iterator[bytes]:
    yield b""
    yield from rest


class _Cutter:
    """Cuts a buffer into items at ``BETWEEN_ITEMS``, joining pieces that do not parse alone."""

    def __init__(self) -> None:
        self.number = 0
        self.line = 1
        self.consumed = 0  # bytes of the last buffer given that are done with
        self._data = b""
        self._counted = 0

    def cut(self, data: bytes, *, final: bool) -> Iterator[Item]:
        ends = [(match.start() + 1, match.end() - 1) for match in BETWEEN_ITEMS.finditer(data)]
        if final and data.strip(WHITESPACE):
            ends.append((len(data), len(data)))
        self._data, self._counted, start, index = data, 0, 0, 0
        while True:
            while index < len(ends) and ends[index][0] <= start:
                index += 1
            following = ends[index : index + MERGE_LIMIT]
            if not following:
                break
            found = self._parse(start, following, final=final or index + MERGE_LIMIT < len(ends))
            if found is None:
                break  # the rest may complete with the next chunk
            item, start = found
            yield item
        self.line += data.count(b"\n", self._counted, start)
        self.consumed = start
        self._data = b""

    def _parse(
        self, start: int, following: list[tuple[int, int]], *, final: bool
    ) -> tuple[Item, int] | None:
        """The item from ``start`` and where the next begins; None to wait for more data."""
        data = self._data
        for tried, (end, after) in enumerate(following, 1):
            try:
                value = orjson.loads(data[start:end])
            except orjson.JSONDecodeError:
                if tried < MERGE_LIMIT and end - start < ITEM_LIMIT:
                    continue
                break
            return self._item(start, value=value), after
        else:
            if not final:
                return None
        # Nothing from ``start`` parses: its first piece alone is the bad item.
        end, after = following[0]
        piece = data[start:end]
        return self._item(start, error=_why_piece(piece), raw=piece), after

    def _item(self, start: int, **found: Any) -> Item:
        data = self._data
        while data[start : start + 1] in _LEADING:  # blank lines before the first item
            start += 1
        self.line += data.count(b"\n", self._counted, start)
        self._counted = start
        self.number += 1
        return Item(self.number, self.line, **found)


_BAD = object()
_LEADING = {b" ", b"\t", b"\r", b"\n", b",", b"[", b"]"}


def _why(error: orjson.JSONDecodeError, raw: bytes, *, last: bool = False) -> str:
    where = f"at character {error.pos + 1}" if error.pos is not None else ""
    cut = " (the file ends inside it: cut short?)" if last else ""
    return f"not JSON: {error.msg} {where}{cut}".strip()


def _why_piece(piece: bytes) -> str:
    try:
        orjson.loads(piece)
    except orjson.JSONDecodeError as error:
        return _why(error, piece)
    return "not JSON"
