"""Issue 14: every bad input answered clearly, before anything is sent: ids, dates, secrets,
values that carry secrets, settings and state files that cannot be used, the dry run's flags,
the sandbox's missing extra. The real CLI against the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.clean import assert_clean, assert_says
from tests.e2e.conftest import Harness, Result

pytestmark = pytest.mark.e2e

SMALL = {"logs": 1500, "days": 2.0, "seed": 63, "profile": "unlimited"}
# 900 and a date in ARABIC-INDIC digits, which str.isdigit() takes for digits.
ARABIC_LOG_ID = "".join(chr(0x660 + int(digit)) for digit in "9002026112607595812" + "0" * 37)


def nothing_happened(h: Harness, result: Result, code: int, *words: str) -> None:
    """Refused before anything was read or sent, with the code and the words given."""
    assert result.returncode == code, result.stderr[-2000:]
    assert_says(result, *words)
    assert not h.state.exists() and h.received() == []
    assert h.auth0("/__sandbox/stats").json().get("requests", {}).get("/api/v2/logs", {}) in (
        {},
        None,
    )
    assert_clean(h, result)


def write(path: Path, content: str | bytes) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


def test_a_log_id_is_ascii_digits_only(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    for args in (
        ("--from-log-id", ARABIC_LOG_ID),
        ("--skip-log-id", ARABIC_LOG_ID),
        ("--config", write(tmp_path / "s.toml", f'[run]\nfrom_log_id = "{ARABIC_LOG_ID}"\n')),
    ):
        result = h.run("run", *args)
        nothing_happened(h, result, 2, "is not an Auth0 log_id", "ASCII digits 0-9 only")


def test_dates_out_of_range_and_starts_after_now(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    future_id = "900" + "20990101000000" + "000000" + "0" * 33
    for args, words in (
        (("--from-date", "2099-01-01"), ("--from-date starts at 2099-01-01", "after now")),
        (("--from-log-id", future_id), ("--from-log-id starts at 2099-01-01", "clock skew")),
        (("--until-date", "9999-12-31"), ("out of range", "--until-date out to copy until")),
        (("--from-date", "0001-01-01T00:00:00+01:00"), ("out of range", "1970-01-01")),
    ):
        result = h.run("run", *args)
        nothing_happened(h, result, 2, *words)
    verify = h.run("verify", "--until-date", "9999-12-31")
    assert verify.returncode == 2 and "out of range" in verify.stderr
    assert "Traceback" not in verify.stderr
    # Within the documented clock skew (5 minutes) a start just ahead is accepted.
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    accepted = h.run("run", "--from-date", soon)
    assert accepted.returncode == 0, accepted.stderr


def test_the_dry_run_refuses_what_the_run_refuses(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    first = h.records()[100]["date"]
    assert h.run("run", "--from-date", first).returncode == 0
    before = h.state.read_bytes()
    other = h.records()[500]["date"]
    real = h.run("run", "--from-date", other)
    preview = h.run("run", "--dry-run", "--from-date", other)
    for result in (real, preview):
        assert result.returncode == 5, result.stderr
        assert_says(result, "started with other settings", "--restart")
        assert_clean(h, result)
    assert preview.stdout == "" and h.state.read_bytes() == before
    same = h.run("run", "--dry-run", "--from-date", first)  # same flags: previews the resume
    assert same.returncode == 0 and h.state.read_bytes() == before
    stream = h.run("run", "--dry-run", "--until-stream-start")
    assert stream.returncode == 2 and "--until-date" in stream.stderr


def test_secrets_that_cannot_be_sent_are_named_not_shown(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    env = h.sandbox.env()
    two_lines = write(tmp_path / "token", env["TINYBIRD_TOKEN"] + "\nsecond-line-of-the-file\n")
    token, secret = env["TINYBIRD_TOKEN"], env["AUTH0_CLIENT_SECRET"]
    cases = [
        ({"TINYBIRD_TOKEN": token[:9] + "\r\n" + token[9:]}, "TINYBIRD_TOKEN holds a line break"),
        ({"AUTH0_CLIENT_SECRET": secret + "\nx"}, "AUTH0_CLIENT_SECRET holds a line break"),
        ({"AUTH0_TOKEN": "eyJhbGciOi.ünïcødé.sig"}, "AUTH0_TOKEN holds a non-ASCII character"),
        ({"TINYBIRD_TOKEN": "", "TINYBIRD_TOKEN_FILE": two_lines}, "(from TINYBIRD_TOKEN_FILE"),
    ]
    for extra, message in cases:
        started = time.monotonic()
        result = h.run("run", env=extra)
        assert time.monotonic() - started < 10  # no 52 s of retries
        nothing_happened(h, result, 2, message, "the value is not shown", "Set it again")
        for value in extra.values():
            if value and not value.startswith("/"):
                assert value not in result.stderr and value.strip() not in result.stdout
        assert "second-line-of-the-file" not in result.stderr


def test_a_value_that_carries_a_secret_is_repeated_redacted(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    token = h.sandbox.env()["TINYBIRD_TOKEN"]
    events = "https://api.tinybird.co/v0/events?name=auth0&token="
    cases = [
        ({"TINYBIRD_HOST": events + token}, "token=***"),  # the stream's URL, as the guide has it
        ({"TINYBIRD_HOST": "https://api.tinybird.co/?token=p.hidden-value-1"}, "token=***"),
        ({"AUTH0_DOMAIN": "https://admin:hidden-value-2@tenant.auth0.com"}, "credentials"),
        (
            {"AUTH0_DOMAIN": "https://t.auth0.com/?client_secret=hidden-value-3"},
            "client_secret=***",
        ),
        ({"TINYBIRD_DATASOURCE": token}, "***"),  # a secret pasted into the wrong variable
    ]
    for extra, shown in cases:
        result = h.run("run", env=extra)
        nothing_happened(h, result, 2, shown)
        for hidden in ("hidden-value", token):
            assert hidden not in result.stderr + result.stdout


def test_settings_and_state_files_that_cannot_be_used(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    latin1 = write(
        tmp_path / "latin1.toml", "[tinybird]\ndatasource = 'caf\xe9'\n".encode("latin-1")
    )
    result = h.run("run", "--config", latin1)
    nothing_happened(h, result, 2, "is not UTF-8 text", "save it as UTF-8")

    boolean = write(tmp_path / "bool.toml", "[run]\nconcurrency = true\n")
    result = h.run("run", "--config", boolean)
    nothing_happened(h, result, 2, "concurrency", "must be a whole number, not true (a boolean)")

    folder = tmp_path / "states"
    folder.mkdir()
    for result in (
        h.run("run", env={"AUTH0_BACKFILL_STATE": str(folder)}),
        h.run("run", "--state", str(folder)),
    ):
        nothing_happened(h, result, 2, "which is a directory", "Give a file in it")

    blocker = h.workdir / "not-a-folder"
    blocker.write_text("")
    result = h.run("run", "--state", str(blocker / "state.json"))
    assert result.returncode == 5, result.stderr
    assert_says(result, "cannot be written", "writable")
    assert h.received() == []
    assert_clean(h, result)

    result = h.run("run", "--dry-run", "--output", str(tmp_path / "missing" / "out.ndjson"))
    nothing_happened(h, result, 2, "--output", "cannot be written", "Create")

    empty = {
        name: ""
        for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "TINYBIRD_TOKEN")
    }
    result = h.run("run", env=empty)
    nothing_happened(h, result, 2, *empty)  # every missing one named, TINYBIRD_TOKEN included


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rows_sent": "many"}, "rows_sent is a string 'many', not a whole number"),
        ({"ranges": [{"id": 0, "start": 7, "end": None, "start_after": "900"}]}, "ranges[0].start"),
        ({"pending": [{"range": "zero"}]}, "pending[0]"),
        ({"ledger": ["2026-11-01"]}, "ledger is a list"),
    ],
)
def test_a_state_file_with_fields_of_the_wrong_type(harness, change, field) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    assert h.run("run", "--until-date", h.records()[300]["date"]).returncode == 0
    document = json.loads(h.state.read_text())
    document.update(change)
    h.state.write_text(json.dumps(document))
    before, received = h.state.read_bytes(), len(h.received())
    result = h.run("run")
    assert result.returncode == 5, result.stderr
    assert_says(result, "is damaged", field, "--restart")
    assert h.state.read_bytes() == before and len(h.received()) == received
    assert_clean(h, result)


def test_the_sandbox_command_names_the_extra_it_needs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # chdb hidden, as after `pip install .` without the sandbox extra.
    hide = "import sys; sys.modules['chdb'] = None; from backfill.cli import main; main()"
    for args in (["sandbox"], ["sandbox", "--logs", "100"]):
        done = subprocess.run(
            [sys.executable, "-c", hide, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert "pip install '.[sandbox]'" in done.stderr and "Traceback" not in done.stderr
    # Its help needs no extra, and says which it needs to run.
    helped = subprocess.run(
        [sys.executable, "-c", hide, "sandbox", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert helped.returncode == 0 and "--profile" in helped.stdout, helped.stderr
    assert "pip install '.[sandbox]'" in " ".join(helped.stdout.split())
    listing = subprocess.run(
        [sys.executable, "-c", hide, "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert listing.returncode == 0 and "sandbox" in listing.stdout


def test_a_checkpoint_in_the_future_is_refused(harness) -> None:  # type: ignore[no-untyped-def]
    """A state written by a version that took --from-date 2099: refused, not a silent no-op."""
    h: Harness = harness(**SMALL)
    assert h.run("run", "--until-date", h.records()[300]["date"]).returncode == 0
    document = json.loads(h.state.read_text())
    document["started_with"]["until_date"] = None
    document["ranges"] = [
        {"id": 0, "start": "2099-01-01T00:00:00.000Z", "end": None,
         "start_after": "900" + "20981231235900" + "0" * 39, "done": False}
    ]  # fmt: skip
    h.state.write_text(json.dumps(document))
    before, received = h.state.read_bytes(), len(h.received())
    result = h.run("run")
    assert result.returncode == 5, result.stderr
    assert_says(result, "checkpoint at 2099-01-01", "after now", "--restart")
    assert h.state.read_bytes() == before and len(h.received()) == received
    assert_clean(h, result)


def test_a_log_id_that_is_not_one_is_a_usage_error_before_any_request(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    for value, words in (
        ("9" * 5000, ("it has 5,000 digits, and a log_id has 56",)),
        ("letters-not-digits", ("ASCII digits 0-9 only",)),
        ("2026-11-01", ("looks like a date", "--from-date")),
        ("900" + "1" * 60, ("it has 63 digits",)),
    ):
        for flag in ("--from-log-id", "--skip-log-id"):
            result = h.run("run", flag, value)
            nothing_happened(h, result, 2, "is not an Auth0 log_id", *words)
            assert len(result.stderr) < 700
            assert len(value) < 80 or value[:200] not in result.stderr


LONG = "x" * 4000


@pytest.mark.parametrize(
    ("args", "env", "toml"),
    [
        (("--from-date", LONG), {}, ""),
        (("--until-date", "2026-" + LONG), {}, ""),
        (("--types", LONG), {}, ""),
        (("--exclude-types", "s," + LONG), {}, ""),
        (("--pii", LONG), {}, ""),
        (("--concurrency", LONG), {}, ""),
        (("--shard", LONG), {}, ""),
        (("--tenant", LONG), {}, "[[tenants]]\nname = 'a'\ndomain = 'a.us.auth0.com'\n"),
        ((LONG,), {}, ""),
        (("--" + LONG,), {}, ""),
        ((), {"AUTH0_DOMAIN": LONG}, ""),
        ((), {"TINYBIRD_HOST": "https://" + LONG}, ""),
        ((), {"TINYBIRD_DATASOURCE": LONG}, ""),
        ((), {"AUTH0_BACKFILL_STATE": "/nonexistent/" + LONG}, ""),
        ((), {}, f"[run]\nfrom_date = '{LONG}'\n"),
        ((), {}, f"[batch]\nmax_rows = {'9' * 4000}\n"),
        ((), {}, f"[{LONG}]\nx = 1\n"),
    ],
    ids=[
        "from-date",
        "until-date",
        "types",
        "exclude-types",
        "pii",
        "concurrency",
        "shard",
        "tenant",
        "command",
        "option",
        "AUTH0_DOMAIN",
        "TINYBIRD_HOST",
        "TINYBIRD_DATASOURCE",
        "AUTH0_BACKFILL_STATE",
        "toml-value",
        "toml-number",
        "toml-section",
    ],
)
def test_an_overlong_value_never_floods_a_message(harness, tmp_path, args, env, toml) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    extra = list(args)
    if toml:
        extra = ["--config", write(tmp_path / "s.toml", toml), *extra]
    command = extra if args[:1] == (LONG,) else ["run", *extra]
    result = h.run(*command, env=env)
    assert result.returncode == 2, result.stderr[-600:]
    assert len(result.stderr) <= 800, result.stderr[:800]
    assert LONG[:200] not in result.stderr and "Traceback" not in result.stderr
    assert not h.state.exists() and h.received() == []
