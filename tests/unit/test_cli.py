"""The command line's parsing, through click's CliRunner with the job swapped out (``obj=``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from backfill.cli import main
from backfill.run.job import JobRequest
from backfill.run.report import Counts, Report

ENV = {
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_CLIENT_ID": "client",
    "AUTH0_CLIENT_SECRET": "secret",
    "TINYBIRD_TOKEN": "p.token",
}


class Recorder:
    """Stands in for the job: keeps the requests, answers with the reports it is given."""

    def __init__(self, *exit_codes: int) -> None:
        self.requests: list[JobRequest] = []
        self.exit_codes = exit_codes or (0,)

    async def __call__(self, requests: list[JobRequest], single: bool) -> list[Report]:
        self.requests.extend(requests)
        return [
            Report.build(
                tenant=request.settings.tenant_name or "tenant.eu.auth0.com",
                datasource=request.settings.datasource,
                state_path=str(request.settings.state),
                outcome="caught_up" if code == 0 else "failed",
                exit_code=code,
                counts=Counts(rows_sent=12, batches=1, records_read=12),
                seconds=1.0,
            )
            for request, code in zip(requests, self.exit_codes, strict=False)
        ]


def invoke(recorder: Recorder, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), obj=recorder, env={**ENV, **(env or {})})


def test_run_options_reach_the_job(tmp_path: Path) -> None:
    recorder = Recorder()
    result = invoke(
        recorder,
        "run",
        "--from-date",
        "2026-10-01T10:30:00+02:00",
        "--until-date",
        "2026-10-03",
        "--state",
        str(tmp_path / "s.json"),
        "--types",
        "s,auth.login.fail",
        "--concurrency",
        "3",
        "--restart",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    (request,) = recorder.requests
    settings = request.settings
    assert settings.from_date is not None and settings.from_date.isoformat() == (
        "2026-10-01T08:30:00+00:00"
    )
    assert settings.until_date is not None and settings.until_date.day == 3
    assert settings.state == tmp_path / "s.json"
    assert settings.types == ("s", "auth.login.fail")
    assert settings.concurrency == 3
    assert request.restart and request.quiet and not request.dry_run
    assert result.stdout.startswith("auth0-backfill tenant.eu.auth0.com -> auth0: caught up")


def test_the_summary_as_json_keeps_its_keys() -> None:
    result = invoke(Recorder(), "run", "--json", "--quiet")
    summary = json.loads(result.stdout)
    assert summary["rows_sent"] == 12 and summary["outcome"] == "caught_up"
    assert set(summary) >= {"already_in_tinybird", "logs_per_second", "exactly_once", "notes"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "x.ndjson"], "--output goes with --dry-run"),
        (["--until-stream-start", "--until-date", "2026-10-01"], "sets the end itself"),
        (["--resume-from-tinybird", "--restart"], "keeps no checkpoint to restart"),
        (["--concurrency", "0"], "0 is not in the range"),
    ],
)
def test_conflicting_or_invalid_flags_are_usage_errors(args: list[str], message: str) -> None:
    recorder = Recorder()
    result = invoke(recorder, "run", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not recorder.requests


def test_a_bad_date_is_a_configuration_error_naming_it() -> None:
    result = invoke(Recorder(), "run", "--from-date", "yesterday")
    assert result.exit_code == 2
    assert "--from-date 'yesterday' is not an ISO 8601 date" in result.stderr
    assert "Traceback" not in result.output


def test_several_tenants_some_failing_exit_11(tmp_path: Path) -> None:
    config = tmp_path / "tenants.toml"
    config.write_text(
        '[[tenants]]\nname = "a"\ndomain = "a.eu.auth0.com"\nclient_id = "x"\n'
        'client_secret_env = "SECRET"\n'
        '[[tenants]]\nname = "b"\ndomain = "b.eu.auth0.com"\nclient_id = "x"\n'
        'client_secret_env = "SECRET"\ndatasource = "other"\n'
    )
    recorder = Recorder(0, 7)
    result = invoke(recorder, "run", "--config", str(config), env={"SECRET": "s"})
    assert [request.settings.tenant_name for request in recorder.requests] == ["a", "b"]
    assert all(request.progress == "lines" for request in recorder.requests)
    assert result.exit_code == 11
    assert len(result.stdout.splitlines()) == 2


def test_a_dry_run_to_stdout_keeps_its_summary_off_stdout() -> None:
    result = invoke(Recorder(), "run", "--dry-run", "--quiet")
    assert result.stdout == "" and "caught up" in result.stderr


def test_shards_of_a_tenants_file_run_each_tenant_once(tmp_path: Path) -> None:
    config = tmp_path / "tenants.toml"
    config.write_text(
        "".join(
            f'[[tenants]]\nname = "t{index}"\ndomain = "t{index}.eu.auth0.com"\nclient_id = "x"\n'
            f'client_secret_env = "SECRET"\ndatasource = "d{index}"\n'
            for index in range(12)
        )
    )
    seen: list[str] = []
    for part in ("0/2", "1/2"):
        recorder = Recorder(*[0] * 12)
        result = invoke(
            recorder, "run", "--config", str(config), "--shard", part, env={"SECRET": "s"}
        )
        assert result.exit_code == 0, result.output
        seen += [str(request.settings.tenant_name) for request in recorder.requests]
    assert sorted(seen) == sorted(f"t{index}" for index in range(12))
    # More parts than tenants: a part may hold none, and that process has nothing to do.
    empty = [
        invoke(
            Recorder(), "run", "--config", str(config), "--shard", f"{k}/40", env={"SECRET": "s"}
        )
        for k in range(40)
    ]
    assert {result.exit_code for result in empty} == {0}
    assert any("tenants=0" in result.stderr for result in empty)
    bad = invoke(Recorder(), "run", "--config", str(config), "--shard", "2/2", env={"SECRET": "s"})
    assert bad.exit_code == 2 and "K runs from 0 to N-1" in bad.stderr
