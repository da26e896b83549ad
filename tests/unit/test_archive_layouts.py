"""Layouts, detected per file: NDJSON, JSON arrays, objects back to back; items numbered with the
line they start on, bad ones named, whatever the chunk boundaries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backfill.archive.layouts import ARRAY, NDJSON, OBJECTS, items

RECORD = {"log_id": "1", "details": {"prompts": [{"a": 1}, {"b": "}{"}]}, "text": "}, {"}


def read(data: bytes, size: int = 5) -> tuple[str, list[tuple[int, int, Any, str | None]]]:
    chunks = iter([data[i : i + size] for i in range(0, len(data), size)])
    layout, found = items(chunks)
    return layout, [(item.number, item.line, item.value, item.error) for item in found]


@pytest.mark.parametrize("size", [1, 3, 7, 1 << 20])
def test_ndjson_with_blank_lines_and_crlf(size: int) -> None:
    data = b'{"a":1}\r\n\n{"b":2}\n' + json.dumps(RECORD).encode() + b"\n"
    layout, found = read(data, size)
    assert layout == NDJSON
    assert found == [(1, 1, {"a": 1}, None), (2, 3, {"b": 2}, None), (3, 4, RECORD, None)]


def test_ndjson_last_line_cut_short_is_named() -> None:
    layout, found = read(b'{"a":1}\n{"b":2}\n{"c":')
    assert layout == NDJSON
    assert found[:2] == [(1, 1, {"a": 1}, None), (2, 2, {"b": 2}, None)]
    number, line, value, error = found[2]
    assert (number, line, value) == (3, 3, None)
    assert error is not None and "not JSON" in error and "cut short" in error


@pytest.mark.parametrize("size", [1, 4, 9, 1 << 20])
def test_json_array_of_records_with_nested_arrays(size: int) -> None:
    data = b"\n[\n" + json.dumps(RECORD).encode() + b',\n{"b": 2}\n]\n'
    layout, found = read(data, size)
    assert layout == ARRAY
    assert [value for _, _, value, _ in found] == [RECORD, {"b": 2}]
    assert [line for _, line, _, _ in found] == [3, 4]


def test_several_arrays_back_to_back_as_webhook_bodies_pile_up() -> None:
    layout, found = read(b'[{"a":1},{"b":2}]\n[{"c":3}][{"d":4}]')
    assert layout == ARRAY
    assert [value for _, _, value, _ in found] == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]


@pytest.mark.parametrize("size", [1, 6, 1 << 20])
def test_objects_back_to_back_as_firehose_writes_them(size: int) -> None:
    data = b'{"a":1}' + json.dumps(RECORD).encode() + b'{"c":3}\n{\n  "d": {"e": 1}\n}'
    layout, found = read(data, size)
    assert layout == OBJECTS
    assert [value for _, _, value, _ in found] == [{"a": 1}, RECORD, {"c": 3}, {"d": {"e": 1}}]
    assert [line for _, line, _, _ in found] == [1, 1, 1, 2]


def test_a_bad_object_is_named_and_reading_goes_on_after_it() -> None:
    layout, found = read(b'{"a":1}{oops}{"c":3}{"d":')
    assert layout == OBJECTS
    assert [(number, value) for number, _, value, _ in found] == [
        (1, {"a": 1}),
        (2, None),
        (3, {"c": 3}),
        (4, None),
    ]
    assert all(error for _, _, value, error in found if value is None)


def test_empty_and_whitespace_files_hold_no_item() -> None:
    assert read(b"")[1] == []
    assert read(b"  \n\n ")[1] == []
    assert read(b"[]")[1] == []


def test_text_that_is_not_json_is_rejected_line_by_line() -> None:
    layout, found = read(b"date,type\n2026-01-01,s\n")
    assert layout == NDJSON
    assert [(number, line, value) for number, line, value, _ in found] == [
        (1, 1, None),
        (2, 2, None),
    ]
