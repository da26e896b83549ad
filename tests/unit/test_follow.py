"""``run --follow``'s own pieces: the ids a poll must not send twice stay few, and the pause
after failed polls grows to a bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backfill.auth0.log_ids import synthesize, write_time
from backfill.run.follow import MOST_PAUSE, RecentIds, pause_after


def log_id(moment: datetime, serial: int) -> str:
    base = synthesize(moment)
    return base[:-6] + f"{serial:06d}"


def test_recent_ids_keep_only_the_window_behind_the_newest() -> None:
    recent = RecentIds(timedelta(seconds=60))
    start = datetime(2026, 12, 6, tzinfo=UTC)
    for second in range(0, 3600, 5):  # an hour of logs, one every 5 s
        recent.add({log_id(start + timedelta(seconds=second), second)})
    newest = start + timedelta(seconds=3595)
    kept = [write_time(item) for item in recent.ids()]
    assert all(moment is not None and newest - moment <= timedelta(seconds=65) for moment in kept)
    assert len(recent) <= 14  # 65 s of one log every 5 s: it does not grow with the hours


def test_the_pause_after_failed_polls_doubles_up_to_five_minutes() -> None:
    assert pause_after(30, 0) == 30
    assert [pause_after(30, failures) for failures in (1, 2, 3, 4, 5)] == [60, 120, 240, 300, 300]
    assert pause_after(0.3, 5000) == MOST_PAUSE  # a week of failures: no overflow
    assert pause_after(3600, 3) == 3600  # a long interval is never shortened by a failure
