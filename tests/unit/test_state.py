from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from backfill.errors import StateError, StateLockedError
from backfill.state import file as state_file
from backfill.state.model import STATE_VERSION, RangeState, RunState, new_state


def sample() -> RunState:
    current = new_state(
        tenant="t.auth0.com",
        datasource="auth0",
        tinybird_host="https://api.tinybird.co",
        started_with={"from_date": "2026-11-01T00:00:00.000Z"},
    )
    current.ranges = [
        RangeState(id=0, start=None, end=None, start_after="900", cursor="901", end_id="905")
    ]
    current.ledger = {"2026-11-01": 5}
    return current


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state_file.save(path, sample())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = state_file.load(path)
    assert loaded is not None
    assert loaded.ranges[0].cursor == "901" and loaded.ledger == {"2026-11-01": 5}
    assert loaded.ranges[0].end_id == "905" and loaded.ranges[0].bounded
    document = json.loads(path.read_text())
    # Version 2: ranges may end at a log_id, which a version 1 job would read past.
    assert document["format"] == "auth0-backfill-state"
    assert document["version"] == STATE_VERSION == 2
    assert not list(tmp_path.glob("*.tmp"))  # no temp file left behind


def test_missing_is_none(tmp_path: Path) -> None:
    assert state_file.load(tmp_path / "absent.json") is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"format": "auth0-backfill-state", "version": 1, "tena', "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"some": "other file"}', "not an auth0-backfill state file"),
        (b"[1, 2]", "not an auth0-backfill state file"),
        (b'{"format": "auth0-backfill-state", "version": 99, "written_by": "9.0"}', "newer"),
        (b'{"format": "auth0-backfill-state", "version": 1}', "damaged"),
        (b'{"format": "auth0-backfill-state", "version": 3, "written_by": "9.0"}', "newer"),
        (
            b'{"format": "auth0-backfill-state", "version": 2, "tenant": "t", "datasource": "a",'
            b' "tinybird_host": "h", "started_with": {}, "ranges": [{"id": 0, "start": null,'
            b' "end": null, "start_after": "900", "end_id": "soon"}]}',
            "end_id 'soon' is not a log_id",
        ),
    ],
)
def test_untrustworthy_files_are_errors_and_left_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(StateError, match=message):
        state_file.load(path)
    assert path.read_bytes() == content


def test_binding_to_tenant_datasource_and_tinybird_host(tmp_path: Path) -> None:
    bound = {
        "tenant": "t.auth0.com",
        "datasource": "auth0",
        "tinybird_host": "https://api.tinybird.co",
    }
    state_file.check_binding(sample(), path=tmp_path, **bound)  # its own: accepted
    with pytest.raises(StateError, match=r"belongs to tenant t\.auth0\.com"):
        state_file.check_binding(sample(), path=tmp_path, **{**bound, "tenant": "other.auth0.com"})
    with pytest.raises(StateError, match="data source auth0"):
        state_file.check_binding(sample(), path=tmp_path, **{**bound, "datasource": "auth0_2"})
    elsewhere = "https://api.eu-central-1.aws.tinybird.co"
    with pytest.raises(StateError) as refused:
        state_file.check_binding(sample(), path=tmp_path, **{**bound, "tinybird_host": elsewhere})
    message = str(refused.value)
    assert "made for the Tinybird host https://api.tinybird.co, not " + elsewhere in message
    assert "TINYBIRD_HOST=https://api.tinybird.co" in message and "--restart" in message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows_sent": "12"}, "rows_sent is a string '12', not a whole number"),
        ({"rows_sent": True}, "rows_sent is a boolean True, not a whole number"),
        ({"ranges": {"0": {}}}, "ranges is an object"),
        (
            {"ranges": [{"id": 0, "start": 5, "end": None, "start_after": "900"}]},
            r"ranges\[0\]\.start is a number 5",
        ),
        (
            {"ranges": [{"id": 0, "start": "soon", "end": None, "start_after": "900"}]},
            "start 'soon' is not a date",
        ),
        ({"ranges": ["x"]}, r"ranges is a list \['x'\], not a list of objects"),
        ({"ledger": {"2026-11-01": "5"}}, "ledger is an object"),
        ({"pending": [{"range": 0}]}, "missing"),
        ({"tinybird_host": None}, "tinybird_host is null, not a string"),
        (
            {"refused": [{"log_id": 9, "date": None, "reason": "x", "at": "y"}]},
            r"refused\[0\]\.log_id",
        ),
    ],
)
def test_fields_of_the_wrong_type_are_named(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "state.json"
    state_file.save(path, sample())
    document = json.loads(path.read_text())
    document.update(change)
    content = json.dumps(document).encode()
    path.write_bytes(content)
    with pytest.raises(StateError, match=message) as refused:
        state_file.load(path)
    assert "is damaged" in str(refused.value) and "--restart" in str(refused.value)
    assert path.read_bytes() == content


def test_an_unwritable_place_is_a_state_error(tmp_path: Path) -> None:
    # A file where the state's directory should be: no user can write there, root included.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(StateError, match=r"cannot be written: (File exists|Not a directory)"):
        state_file.save(blocker / "state.json", sample())
    with (
        pytest.raises(StateError, match=r"Make .*not-a-directory writable"),
        state_file.exclusive(blocker / "state.json"),
    ):
        pass


def test_no_secret_fields_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state_file.save(path, sample())
    text = path.read_text().lower()
    assert "secret" not in text and "token" not in text


def _hold(
    path: str, ready: multiprocessing.synchronize.Event, release: multiprocessing.synchronize.Event
) -> None:
    with state_file.exclusive(Path(path)):
        ready.set()
        release.wait(10)


def test_a_second_holder_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(StateLockedError, match=f"pid {holder.pid}"), state_file.exclusive(path):
            pass
    finally:
        release.set()
        holder.join(10)
    with state_file.exclusive(path):  # free again once the holder is gone
        pass
