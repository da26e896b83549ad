"""An import's checkpoint: bound to its sources and flags, refused when foreign or damaged, and a
run's checkpoint told apart from an import's."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from backfill.archive.checkpoint import ImportState, check_binding, load, save
from backfill.archive.rejects import Rejects, Where
from backfill.errors import DataError, StateError

BOUND: dict[str, Any] = {"sources": ["archive/"], "from_date": None, "types": [], "tenant": None}


def state() -> ImportState:
    return ImportState(
        datasource="auth0", tinybird_host="https://api.tinybird.co", started_with=dict(BOUND)
    )


def test_saved_private_and_loaded_back(tmp_path: Path) -> None:
    path = tmp_path / "import.json"
    saved = state()
    saved.cursor = ["2026-01", "900"]
    save(path, saved)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load(path)
    assert loaded is not None and loaded.cursor == ["2026-01", "900"]


def test_other_flags_or_sources_are_refused_naming_them() -> None:
    check_binding(
        state(),
        Path("s"),
        datasource="auth0",
        tinybird_host="https://api.tinybird.co/",
        binding=BOUND,
    )
    with pytest.raises(StateError, match="sources or flags: sources was") as raised:
        check_binding(
            state(), Path("s"), datasource="auth0", tinybird_host="https://api.tinybird.co",
            binding={**BOUND, "sources": ["other/"]},
        )  # fmt: skip
    assert "--restart" in str(raised.value) and raised.value.exit_code == 5
    with pytest.raises(StateError, match="data source"):
        check_binding(state(), Path("s"), datasource="other", tinybird_host="x", binding=BOUND)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "auth0-backfill-state", "version": 2}', "checkpoint of a `run`"),
        ("{not json", "damaged"),
        ('{"format": "auth0-backfill-import-state", "version": 99}', "newer"),
        ('{"format": "auth0-backfill-import-state", "version": 1, "datasource": 5, '
         '"tinybird_host": "h", "started_with": {}}', "damaged: datasource is"),
    ],
)  # fmt: skip
def test_unusable_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "import.json"
    path.write_text(content)
    with pytest.raises(StateError, match=message):
        load(path)


def test_rejects_up_to_the_limit_then_stop(tmp_path: Path) -> None:
    rejects = Rejects(tmp_path / "rejects.ndjson", limit=1)
    rejects.add(Where("a.gz", 3, 2), "not JSON", b'{"cut')
    with pytest.raises(DataError, match=r"More than 1 items.*b.gz, line 9 \(item 8\)"):
        rejects.add(Where("b.gz", 9, 8), "not an Auth0 log: no log_id", b"{}")
    rejects.close()
    entry = json.loads((tmp_path / "rejects.ndjson").read_text())
    assert entry == {
        "source": "a.gz", "line": 3, "item": 2, "reason": "not JSON", "text": '{"cut',
        "truncated": False,
    }  # fmt: skip
    assert stat.S_IMODE((tmp_path / "rejects.ndjson").stat().st_mode) == 0o600
