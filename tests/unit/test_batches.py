from __future__ import annotations

import gzip
import json
import zlib

import pytest

from backfill.records import batches as batches_module
from backfill.records.batches import BatchBuilder, BatchLimits
from backfill.records.envelope import serialize


def line(index: int, size: int = 10) -> bytes:
    return serialize({"log_id": f"{index:05d}", "data": {"pad": "x" * size}})


def fill(builder: BatchBuilder, lines: list[tuple[bytes, str]]) -> list:
    batches = []
    for raw, date in lines:
        if not builder.fits(len(raw), date):
            batches.append(builder.close("cursor", seq=len(batches)))
        builder.add_line(raw, json.loads(raw)["log_id"], date)
    batches.append(builder.close("cursor", seq=len(batches)))
    return batches


def test_row_limit() -> None:
    day = "2026-11-01T00:00:00.000Z"
    batches = fill(BatchBuilder(BatchLimits(max_rows=3), 0), [(line(i), day) for i in range(7)])
    assert [batch.rows for batch in batches] == [3, 3, 1]


def test_byte_limit_counts_uncompressed_bytes() -> None:
    day = "2026-11-01T00:00:00.000Z"
    one = len(line(0, 100))
    batches = fill(
        BatchBuilder(BatchLimits(max_bytes=one * 2 + 1), 0), [(line(i, 100), day) for i in range(5)]
    )
    assert [batch.rows for batch in batches] == [2, 2, 1]
    assert all(batch.raw_bytes <= one * 2 + 1 for batch in batches)


def test_at_most_two_calendar_months() -> None:
    dates = [f"2026-{month:02d}-28T00:00:00.000Z" for month in (1, 1, 2, 3, 3, 4)]
    batches = fill(BatchBuilder(BatchLimits(), 0), [(line(i), d) for i, d in enumerate(dates)])
    assert [batch.rows for batch in batches] == [3, 3]


def test_body_is_gzip_ndjson_and_deterministic() -> None:
    day = "2026-11-01T00:00:00.000Z"
    rows = [(line(i), day) for i in range(50)]
    first = fill(BatchBuilder(BatchLimits(), 0), rows)[0]
    second = fill(BatchBuilder(BatchLimits(), 0), rows)[0]
    assert first.body == second.body and first.digest == second.digest
    assert gzip.decompress(first.body) == b"".join(raw for raw, _ in rows)
    assert first.days == {"2026-11-01": 50}
    assert first.first_log_id == "00000" and first.last_log_id == "00049"


def test_halves_and_without() -> None:
    day = "2026-11-01T00:00:00.000Z"
    batch = fill(BatchBuilder(BatchLimits(), 4), [(line(i), day) for i in range(5)])[0]
    first, second = batch.halves()
    assert (first.rows, second.rows) == (2, 3)
    assert first.lines() + second.lines() == batch.lines()
    assert first.range_id == second.range_id == 4 and second.cursor_after == batch.cursor_after
    rest = batch.without({"00001", "00003"})
    assert rest.log_ids() == ["00000", "00002", "00004"]


def test_without_isal_the_standard_library_compresses(monkeypatch: pytest.MonkeyPatch) -> None:
    day = "2026-11-01T00:00:00.000Z"
    rows = [(line(i), day) for i in range(50)]
    fast = fill(BatchBuilder(BatchLimits(), 0), rows)[0]
    monkeypatch.setattr(batches_module, "deflate", zlib)
    monkeypatch.setattr(batches_module, "GZIP_LEVEL", 3)
    fallback = fill(BatchBuilder(BatchLimits(), 0), rows)[0]
    assert (
        gzip.decompress(fallback.body) == gzip.decompress(fast.body) == b"".join(r for r, _ in rows)
    )
    assert fallback.digest == fast.digest  # the digest is of the rows, not of their compression
