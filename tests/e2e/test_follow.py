"""Issue 25: ``run --follow`` beside a tenant's production: the history, then new logs as they
come (one visible late included), stopped by SIGTERM and restarted without loss or duplicate;
idle at a request a poll; through an outage; a share of the rate limit left to the tenant's own
application; the freshness a monitor reads (``status --max-lag``, Prometheus metrics). The real
CLI as a subprocess against the sandbox."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from backfill.tinybird.datafile import seed_datafile_text
from tests.e2e.conftest import Harness, assert_exactly, wait_for

pytestmark = pytest.mark.e2e

SMALL = {"logs": 1200, "days": 1.0, "seed": 81, "profile": "unlimited"}
FAST = ("--poll-interval", "0.3")


class Following:
    """A ``run --follow`` process, its stderr read as it comes."""

    def __init__(self, h: Harness, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = h.start("run", "--follow", *args, env=env)
        self.lines: list[str] = []
        assert self.process.stderr is not None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def wait_said(self, text: str, timeout: float = 60.0) -> None:
        try:
            wait_for(lambda: self.said(text) or self.process.poll() is not None, timeout)
        finally:
            assert self.said(text), "".join(self.lines[-30:])

    def wait(self, timeout: float = 60.0) -> int:
        """It ended on its own: its exit code."""
        self._finish(timeout)
        return self.process.returncode

    def _finish(self, timeout: float) -> str:
        """Wait for the exit; its stdout (a summary: small). stderr is the reader thread's alone:
        ``communicate`` would take lines from it."""
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, str, str]:
        """Signal it; its exit code, stdout and stderr. Bounded: the drain is under 10 s."""
        started = time.monotonic()
        self.process.send_signal(signum)
        stdout = self._finish(timeout)
        assert time.monotonic() - started < 10.0, "the stop took longer than its bound"
        return self.process.returncode, stdout, "".join(self.lines)


def test_history_then_new_logs_then_a_stop_and_a_restart_lose_and_double_nothing(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    following = Following(h, *FAST, "--json")
    following.wait_said("follow caught_up=yes")
    assert len(h.table_log_ids()) == 1200, "the history first"
    # New logs land within the poll interval and a few seconds.
    added = h.append_logs(25)
    started = time.monotonic()
    wait_for(lambda: added["last_log_id"] in h.table_log_ids(), timeout=30)
    assert time.monotonic() - started < 0.3 + 5.0
    # A log visible only after newer ones, its log_id behind theirs, lands too: once.
    late = h.auth0(
        "/__sandbox/append", method="POST", json={"count": 3, "late_seconds": 2.0}
    ).json()
    hidden = late["first_log_id"]
    wait_for(lambda: late["last_log_id"] in h.table_log_ids(), timeout=30)
    assert hidden not in h.table_log_ids(), "the sandbox hides it for two seconds"
    wait_for(lambda: hidden in h.table_log_ids(), timeout=30)
    code, stdout, stderr = following.stop()
    assert code == 0, stderr[-3000:]
    assert json.loads(stdout)["outcome"] == "stopped" and "Traceback" not in stderr
    # Restarted: more logs, another late one, another clean stop.
    again = Following(h, *FAST)
    again.wait_said("follow caught_up=yes")
    h.append_logs(40)
    late = h.auth0(
        "/__sandbox/append", method="POST", json={"count": 2, "late_seconds": 1.5}
    ).json()
    wait_for(lambda: late["first_log_id"] in h.table_log_ids(), timeout=30)
    code, _, stderr = again.stop(signal.SIGINT)
    assert code == 0, stderr[-3000:]
    assert_exactly(h.received(), h.records())  # every log once: none lost, none twice


def test_sigkill_then_the_same_command_loses_and_doubles_nothing(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL, tinybird_ack_latency="50-150")
    for _ in range(3):
        following = Following(h, *FAST)
        following.wait_said("follow caught_up=yes")
        h.append_logs(30)
        h.auth0("/__sandbox/append", method="POST", json={"count": 2, "late_seconds": 1.0})
        time.sleep(0.5)  # the moment of the kill: while the new logs are read or sent
        following.process.kill()
        following.wait(timeout=30)
    final = Following(h, *FAST)
    final.wait_said("follow caught_up=yes")
    wait_for(lambda: len(h.table_log_ids()) == len(h.records()), timeout=30)
    assert final.stop()[0] == 0
    assert_exactly(h.received(), h.records())


def test_idle_it_costs_a_request_a_poll(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    following = Following(h, "--poll-interval", "0.5")
    following.wait_said("follow caught_up=yes")

    def logs_requests() -> int:
        stats = h.auth0("/__sandbox/stats").json()
        return sum(stats.get("requests", {}).get("/api/v2/logs", {}).values())

    before, started = logs_requests(), time.monotonic()
    time.sleep(6.0)  # the measurement: six seconds of an idle tenant
    asked, elapsed = logs_requests() - before, time.monotonic() - started
    following.stop()
    polls = elapsed / 0.5
    assert 0.7 * polls <= asked <= 1.3 * polls, f"{asked} requests in {polls:.0f} polls"


def test_an_outage_pauses_a_follow_and_the_next_poll_goes_on(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    settings = tmp_path / "short.toml"
    settings.write_text("[retry]\nmax_attempts = 2\nmax_seconds = 20\n")
    following = Following(h, *FAST, "--config", str(settings))
    following.wait_said("follow caught_up=yes")
    faults = {"faults": {"rate": 1.0, "kinds": ["503"]}}
    h.auth0("/__sandbox/config", method="POST", json=faults).raise_for_status()
    following.wait_said("follow poll_failed", timeout=30)
    h.auth0("/__sandbox/config", method="POST", json={"faults": {"rate": 0.0}}).raise_for_status()
    added = h.append_logs(10)
    wait_for(lambda: added["last_log_id"] in h.table_log_ids(), timeout=60)
    assert following.process.poll() is None, "a transient fault never ends a follow"
    assert following.stop()[0] == 0


def test_an_outage_at_the_start_or_during_the_history_pauses_the_follow_too(
    harness, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=1200, days=0.5, seed=83, profile="free")
    settings = tmp_path / "short.toml"
    settings.write_text("[retry]\nmax_attempts = 2\nmax_seconds = 20\n")
    down = {"faults": {"rate": 1.0, "kinds": ["503"]}}
    up = {"faults": {"rate": 0.0}}
    # Tinybird down from the start: the follow cannot even plan, and waits.
    h.tinybird("/__sandbox/config", method="POST", json=down).raise_for_status()
    following = Following(h, *FAST, "--config", str(settings))
    following.wait_said("follow start_failed")
    planned = following.count("plan ranges=")  # the Auth0 side may have planned meanwhile
    h.tinybird("/__sandbox/config", method="POST", json=up).raise_for_status()
    # Auth0 down while the history is read (12 pages at the free plan's 2 a second).
    wait_for(lambda: following.count("plan ranges=") > planned, timeout=60)
    h.auth0("/__sandbox/config", method="POST", json=down).raise_for_status()
    following.wait_said("follow history_failed")
    h.auth0("/__sandbox/config", method="POST", json=up).raise_for_status()
    wait_for(lambda: len(h.table_log_ids()) == len(h.records()), timeout=90)
    assert following.process.poll() is None, "a transient fault never ends a follow"
    assert following.stop()[0] == 0
    assert_exactly(h.received(), h.records())


def test_a_stream_that_starts_feeding_the_data_source_ends_the_follow(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    following = Following(h, "--poll-interval", "0.2")
    following.wait_said("follow caught_up=yes")
    stream = {"status": "paused", "since": h.records()[-1]["date"]}
    h.tinybird("/__sandbox/stream", method="POST", json=stream).raise_for_status()
    code = following.wait()
    assert code == 5, "".join(following.lines[-20:])
    assert following.said("Log Stream") and following.said("feeds auth0")


def test_status_max_lag_says_fresh_and_stale(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    nothing = h.run("status", "--max-lag", "15m")
    assert nothing.returncode == 10 and "stale" in nothing.stderr
    following = Following(h, *FAST)
    following.wait_said("follow caught_up=yes")
    fresh = h.run("status", "--max-lag", "15m")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "Caught up:       through" in fresh.stdout
    following.stop()
    # Stopped, the state ages: within a few seconds it is more than 1s behind.
    wait_for(lambda: h.run("status", "--max-lag", "1s").returncode == 10, timeout=15)
    stale = h.run("status", "--max-lag", "1s")
    assert "more than --max-lag 1s" in stale.stderr
    wrong = h.run("status", "--max-lag", "soon")
    assert wrong.returncode == 2 and "not a duration" in wrong.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_metrics_are_served_while_following_and_written_by_a_run(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    port = free_port()
    following = Following(h, *FAST, "--metrics-port", str(port))
    following.wait_said("follow caught_up=yes")
    h.append_logs(5)
    wait_for(lambda: len(h.table_log_ids()) >= 1205, timeout=30)

    def scraped() -> str:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text

    wait_for(lambda: "auth0_backfill_rows_delivered_total" in scraped(), timeout=10)
    text = scraped()
    tenant = h.sandbox.auth0_url.removeprefix("http://")
    assert f'auth0_backfill_rows_delivered_total{{tenant="{tenant}"}} 1205.0' in text
    for name in (
        "auth0_backfill_lag_seconds",
        "auth0_backfill_last_poll_timestamp_seconds",
        "auth0_backfill_requests_total",
        "auth0_backfill_rate_limited_total",
        "auth0_backfill_retries_total",
    ):
        assert f"{name}{{tenant=" in text or f'{name}{{service="' in text, name
    lag = next(line for line in text.splitlines() if line.startswith("auth0_backfill_lag_seconds"))
    assert float(lag.split()[-1]) < 30
    following.stop()
    written = tmp_path / "auth0_backfill.prom"
    h.append_logs(5)
    run = h.run("run", "--metrics-file", str(written))
    assert run.returncode == 0, run.stderr
    assert f'auth0_backfill_rows_delivered_total{{tenant="{tenant}"}} 5.0' in written.read_text()


def test_a_share_of_the_rate_limit_leaves_the_tenants_application_free_of_429s(harness) -> None:  # type: ignore[no-untyped-def]
    """A free tenant: a backfill of 3,000 logs with --rate-share 0.5 while the tenant's own
    application calls the Management API every two seconds."""
    h: Harness = harness(logs=3000, days=0.5, seed=82, profile="free")
    token = application_token(h)
    refused: list[int] = []
    answered: list[int] = []
    stop = threading.Event()

    def application() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.wait(2.0):
                status = client.get(
                    f"{h.sandbox.auth0_url}/api/v2/log-streams",
                    headers={"Authorization": f"Bearer {token}"},
                ).status_code
                (refused if status == 429 else answered).append(status)

    caller = threading.Thread(target=application, daemon=True)
    caller.start()
    try:
        result = h.run("run", "--rate-share", "0.5", "--json")
    finally:
        stop.set()
        caller.join(timeout=10)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(answered) >= 8, "the application called all along the backfill"
    assert not refused, f"the application got {len(refused)} 429s of {len(refused + answered)}"
    assert result.summary()["rate_limited"] == 0


def application_token(h: Harness) -> str:
    env = h.sandbox.env()
    answer = httpx.post(
        f"{h.sandbox.auth0_url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": env["AUTH0_CLIENT_ID"],
            "client_secret": env["AUTH0_CLIENT_SECRET"],
            "audience": f"{h.sandbox.auth0_url}/api/v2/",
        },
        timeout=10,
    )
    answer.raise_for_status()
    token: Any = answer.json()["access_token"]
    return str(token)


def test_follow_refuses_what_would_end_it(harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    for args, words in (
        (("--until-date", "2026-11-01"), "--follow is not for --until-date"),
        (("--dry-run",), "--follow is not for --dry-run"),
        (("--resume-from-tinybird",), "--follow is not for --resume-from-tinybird"),
    ):
        result = h.run("run", "--follow", *args)
        assert result.returncode == 2 and words in result.stderr, result.stderr
    lonely = h.run("run", "--poll-interval", "5")
    assert lonely.returncode == 2 and "--poll-interval goes with --follow" in lonely.stderr
    nowhere = h.run("run", "--metrics-file", str(tmp_path / "missing" / "x.prom"))
    assert nowhere.returncode == 2 and "not a writable folder" in nowhere.stderr
    tiny = h.run("run", "--follow", "--rate-share", "0.001")
    assert tiny.returncode == 2 and "from 0.01 to 1" in tiny.stderr


def test_status_max_lag_reads_every_tenant_of_a_tenants_file(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A probe on a follow of many tenants: stale when any one is; secrets not needed."""
    h: Harness = harness(**SMALL)
    fresh = tmp_path / "fresh.json"
    assert h.run("run", "--state", str(fresh)).returncode == 0
    config = tmp_path / "tenants.toml"
    config.write_text(
        "[[tenants]]\nname = 'fresh'\ndomain = 'a.us.auth0.com'\n"
        f"client_secret_env = 'UNSET_SECRET_A'\nstate = '{fresh}'\ndatasource = 'a'\n"
        "[[tenants]]\nname = 'new'\ndomain = 'b.us.auth0.com'\n"
        f"client_secret_env = 'UNSET_SECRET_B'\nstate = '{tmp_path / 'new.json'}'\n"
        "datasource = 'b'\n"
    )
    both = h.run("status", "--config", str(config), "--max-lag", "1h")
    assert both.returncode == 10, both.stderr
    assert "[fresh]" in both.stdout and "[new]" in both.stdout
    assert "stale: new: no checkpoint" in both.stderr and "fresh:" not in both.stderr
    one = h.run("status", "--config", str(config), "--tenant", "fresh", "--max-lag", "1h", "--json")
    assert one.returncode == 0, one.stderr
    (summary,) = json.loads(one.stdout)
    assert summary["tenant_name"] == "fresh" and summary["lag_seconds"] < 3600


def test_a_follow_of_more_tenants_than_run_at_once_follows_them_all(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`tenants_in_flight` bounds the histories read at once; a tenant caught up hands its turn
    on, so three tenants one at a time are all followed."""
    h: Harness = harness(**SMALL)
    for name in ("second", "third"):
        created = httpx.post(
            f"{h.sandbox.tinybird_url}/__sandbox/datasources",
            json={"name": name, "datafile": seed_datafile_text()},
            timeout=10,
        )
        assert created.status_code == 200, created.text
    config = tmp_path / "tenants.toml"
    config.write_text(
        "[run]\ntenants_in_flight = 1\n"
        + "".join(
            f"[[tenants]]\nname = '{name}'\ndomain = '{h.sandbox.auth0_url}'\n"
            f"datasource = '{name}'\nstate = '{tmp_path / name}.json'\n"
            "client_id_env = 'AUTH0_CLIENT_ID'\nclient_secret_env = 'AUTH0_CLIENT_SECRET'\n"
            for name in ("auth0", "second", "third")
        )
    )
    following = Following(h, *FAST, "--config", str(config), "--json")
    wait_for(lambda: "".join(following.lines).count("follow caught_up=yes") == 3, timeout=90)

    def rows(name: str) -> int:
        return int(h.sql(f"SELECT count() AS n FROM {name}")[0]["n"])

    before = rows("auth0")
    assert rows("second") == rows("third") == before > 1000
    h.append_logs(3)
    wait_for(lambda: all(rows(name) == before + 3 for name in ("auth0", "second", "third")), 30)
    code, stdout, _ = following.stop()
    assert code == 0
    assert [report["outcome"] for report in json.loads(stdout)] == ["stopped"] * 3
