"""What goes with what in ``run``, decided by the request object alone: no click, no process."""

from __future__ import annotations

from pathlib import Path

import pytest

from backfill.config.settings import resolve
from backfill.errors import ConfigError, UsageError
from backfill.run.command import RunCommand
from backfill.run.stopper import Stopper

LOG_ID = "900" + "20261101000000" + "0" * 39
ENV = {"AUTH0_DOMAIN": "t.eu.auth0.com", "AUTH0_TOKEN": "a-token", "TINYBIRD_TOKEN": "p.token"}


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"output": Path("out.ndjson")}, "--output goes with --dry-run"),
        ({"until_stream_start": True, "until_date": "2026-11-01"}, "sets the end itself"),
        ({"until_stream_start": True, "resume_from_tinybird": True}, "sets the end itself"),
        ({"skip_existing": True, "allow_duplicates": True}, "exclude each other"),
        ({"until_stream_start": True, "dry_run": True}, "does not talk to Tinybird"),
        ({"resume_from_tinybird": True, "restart": True}, "keeps no checkpoint"),
        ({"resume_from_tinybird": True, "dry_run": True}, "keeps no checkpoint"),
    ],
)
def test_flags_that_do_not_go_together(flags: dict[str, object], words: str) -> None:
    with pytest.raises(UsageError, match=words) as refused:
        RunCommand(**flags).check()  # type: ignore[arg-type]
    assert refused.value.exit_code == 2


@pytest.mark.parametrize(
    "flags",
    [
        {},
        {"output": Path("out.ndjson"), "dry_run": True},
        {"until_stream_start": True, "from_date": "2026-11-01"},
        {"skip_existing": True, "until_date": "2026-11-02"},
        {"resume_from_tinybird": True, "from_date": "2026-11-01"},
        {"skip_log_ids": (LOG_ID, LOG_ID[:-1] + "1")},
    ],
)
def test_flags_that_go_together(flags: dict[str, object]) -> None:
    RunCommand(**flags).check()  # type: ignore[arg-type]


def test_every_skip_log_id_is_a_log_id() -> None:
    with pytest.raises(ConfigError, match="--skip-log-id 'nope' is not an Auth0 log_id"):
        RunCommand(skip_log_ids=(LOG_ID, "nope")).check()


def test_settings_flags_and_one_request_per_tenant() -> None:
    command = RunCommand(
        from_date="2026-11-01",
        state=Path("s.json"),
        types="s,f",
        concurrency=3,
        skip_log_ids=(LOG_ID,),
        skip_existing=True,
    )
    flags = command.settings_flags()
    assert flags["state"] == "s.json" and flags["concurrency"] == 3 and flags["types"] == "s,f"
    settings = resolve(flags, ENV, None)
    assert command.check_tenants([settings]) is True
    (request,) = command.job_requests([settings], [Stopper()], None, single=True)
    assert request.skip_log_ids == (LOG_ID,) and request.skip_existing
    assert request.progress == "auto" and request.settings is settings


def test_a_dry_run_is_for_one_tenant() -> None:
    one = resolve({}, ENV, None)
    several = [
        resolve({}, ENV, None).__class__(**{**one.__dict__, "tenant_name": name})
        for name in ("a", "b")
    ]
    with pytest.raises(UsageError, match="--dry-run works on one tenant"):
        RunCommand(dry_run=True).check_tenants(several)
    assert RunCommand().check_tenants(several) is False
    requests = RunCommand().job_requests(several, [Stopper(), Stopper()], None, single=False)
    assert [request.progress for request in requests] == ["lines", "lines"]
