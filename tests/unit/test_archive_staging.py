"""The staging database: each log once (the first copy read), out in (month, log_id) order
after any checkpoint, private on disk, gone when closed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from backfill.archive.staging import Staging
from backfill.errors import StateError


def row(log_id: str, date: str, tenant: str | None = None, line: bytes = b"") -> tuple:  # type: ignore[type-arg]
    return (log_id, date[:7], date, tenant, line or f'{{"log_id":"{log_id}"}}\n'.encode())


def test_dedup_keeps_the_first_copy_and_orders_by_month_then_id(tmp_path: Path) -> None:
    staging = Staging.create(tmp_path / "state.json")
    try:
        staging.add(
            [
                row("9002", "2026-02-01T00:00:01.000Z"),
                row("9003", "2026-01-31T23:59:59.000Z", line=b"first\n"),
                row("9001", "2026-01-05T00:00:00.000Z"),
            ]
        )
        staging.add([row("9003", "2026-01-31T23:59:59.000Z", line=b"second\n")])
        staging.seal()
        assert staging.count() == 3 and staging.copies == 1
        order = [r[0] for rows in staging.rows_after(None, chunk=2) for r in rows]
        assert order == ["9001", "9003", "9002"]  # by month first: a late id stays in its month
        assert staging.line_of("9003") == ("2026-01-31T23:59:59.000Z", b"first\n")
        after = [r[0] for rows in staging.rows_after(("2026-01", "9001")) for r in rows]
        assert after == ["9003", "9002"]
        assert staging.count_after(["2026-01", "9003"]) == 1
        assert staging.span() == ("2026-01-05T00:00:00.000Z", "2026-02-01T00:00:01.000Z")
    finally:
        staging.close()


def test_tenants_are_counted_per_log(tmp_path: Path) -> None:
    staging = Staging.create(tmp_path / "state.json")
    try:
        staging.add(
            [row("1", "2026-01-01T00:00:00.000Z", "a"), row("2", "2026-01-01T00:00:00.000Z", "b")]
        )
        staging.add(
            [row("2", "2026-01-01T00:00:00.000Z", "b"), row("3", "2026-01-01T00:00:00.000Z")]
        )
        staging.seal()
        assert staging.tenants() == {"a": 1, "b": 1, None: 1}
    finally:
        staging.close()


def test_private_on_disk_and_gone_when_closed(tmp_path: Path) -> None:
    stale = tmp_path / ".state.json.staging-old"
    stale.mkdir()  # what a killed run left: removed by the next
    staging = Staging.create(tmp_path / "state.json")
    assert not stale.exists()
    assert stat.S_IMODE(staging.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(staging.path.stat().st_mode) == 0o600
    staging.close()
    assert not staging.folder.exists()


def test_a_place_it_cannot_be_written_is_a_state_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StateError, match="staging database") as raised:
        Staging.create(tmp_path / "file" / "state.json")
    assert raised.value.exit_code == 5 and "--state" in str(raised.value)
