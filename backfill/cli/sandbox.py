"""`auth0-backfill sandbox`: run both emulators until SIGINT/SIGTERM and print how to reach them.

stdout carries only the environment (`export NAME=value` lines, or one JSON object with `--json`),
flushed once both servers accept connections, so a script or test can read it and start the job.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shlex
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from backfill.cli.common import fail
from backfill.errors import ConfigError
from backfill.sandbox.faults import ALL_KINDS
from backfill.sandbox.latency import LatencyRange
from backfill.sandbox.livestream import STATUSES, STREAM_TYPES
from backfill.sandbox.obfuscation import METHODS
from backfill.sandbox.profiles import PROFILES
from backfill.sandbox.runner import Sandbox, SandboxConfig
from backfill.sandbox.timelines import SHAPES
from backfill.sandbox.timeparse import parse_when

logger = logging.getLogger(__name__)


def require_extra() -> None:
    """The emulated Tinybird stores rows in chdb, the sandbox extra: without it, say how to get
    it (``--help`` works without it)."""
    if importlib.util.find_spec("chdb") is None:
        install = "pip install '.[sandbox]'"
        fail(
            ConfigError.exit_code,
            "`auth0-backfill sandbox` needs the 'sandbox' extra (chdb), which is not installed. "
            f"Install it with: {install} (or pipx install '.[sandbox]', or pipx inject "
            "auth0-backfill chdb).",
        )


def _instant(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError:
        raise click.BadParameter("use an ISO date/date-time, 'now', or e.g. -3d, -12h") from None


def _latency(context: click.Context, parameter: click.Parameter, value: str) -> str:
    try:
        LatencyRange.parse(value)
    except ValueError as problem:
        raise click.BadParameter(str(problem)) from None
    return value


@click.command("sandbox")
@click.option(
    "--profile",
    type=click.Choice(list(PROFILES)),
    default="enterprise",
    show_default=True,
    help="Auth0 plan: rate limit and retention.",
)
@click.option(
    "--logs",
    type=click.IntRange(min=0),
    default=10_000,
    show_default=True,
    help="Logs in the synthetic tenant.",
)
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=7.0,
    show_default=True,
    help="Days the logs are spread over.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the tenant, credentials, latencies and faults.",
)
@click.option("--end", callback=_instant, help="When the logs end (default: now).")
@click.option(
    "--shape",
    type=click.Choice(SHAPES),
    default="even",
    show_default=True,
    help="How the logs spread over the days: even, uneven (day/night 10:1, a silent day, a "
    "two-hour burst of 30%), quiet (all on the first day).",
)
@click.option(
    "--retention-days",
    type=click.FloatRange(min=0, min_open=True),
    help="Override the profile's log retention.",
)
@click.option(
    "--faults",
    "fault_rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of API requests that fail, on both services.",
)
@click.option(
    "--fault-kinds",
    default=",".join(ALL_KINDS),
    show_default=True,
    help="Comma-separated fault kinds to draw from.",
)
@click.option(
    "--slow-seconds",
    type=click.FloatRange(min=0),
    default=35.0,
    show_default=True,
    help="Delay of a 'slow' fault (longer than the client timeout).",
)
@click.option(
    "--auth0-latency",
    callback=_latency,
    default="0",
    show_default=True,
    help="Auth0 round trip, MS or LO-HI milliseconds.",
)
@click.option(
    "--tinybird-latency",
    callback=_latency,
    default="0",
    show_default=True,
    help="Tinybird round trip, MS or LO-HI milliseconds.",
)
@click.option(
    "--tinybird-ack-latency",
    callback=_latency,
    default="0",
    show_default=True,
    help="Extra wait before a wait=true append is acknowledged, MS or LO-HI.",
)
@click.option(
    "--token-ttl",
    type=click.IntRange(min=1),
    default=86_400,
    show_default=True,
    help="Lifetime of Auth0 access tokens, seconds.",
)
@click.option(
    "--stream-from",
    callback=_instant,
    help="Simulate a Log Stream live since then (its rows are in the data source).",
)
@click.option(
    "--stream-filters",
    default="",
    help="Log Streams categories that stream sends, comma-separated (default: all).",
)
@click.option(
    "--stream-pii",
    default="",
    help="Personal data it obfuscates: first_name,last_name,username,email,phone,address.",
)
@click.option(
    "--stream-pii-method",
    type=click.Choice(METHODS),
    default="mask",
    show_default=True,
    help="How it obfuscates them.",
)
@click.option(
    "--stream-status",
    type=click.Choice(STATUSES),
    default="active",
    show_default=True,
    help="Its status: a paused or suspended stream delivers nothing until resumed.",
)
@click.option(
    "--stream-paused-at",
    callback=_instant,
    help="A paused or suspended stream stopped then (it delivered what was written before).",
)
@click.option(
    "--other-stream",
    "other_streams",
    type=click.Choice(STREAM_TYPES),
    multiple=True,
    help="Another stream Auth0 lists, sending elsewhere (repeatable): datadog, http ...",
)
@click.option(
    "--datasource", default="auth0", show_default=True, help="Name of the Tinybird data source."
)
@click.option(
    "--datasource-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Another .datasource file (default: the seed's schema).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep Tinybird's tables on disk here (default: in memory).",
)
@click.option(
    "--record-raw/--no-record-raw",
    default=False,
    show_default=True,
    help="Keep every appended line for GET /__sandbox/received.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of exports.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--auth0-port", type=click.IntRange(0, 65535), default=0, show_default=True)
@click.option("--tinybird-port", type=click.IntRange(0, 65535), default=0, show_default=True)
def sandbox(as_json: bool, **options: Any) -> None:
    """Run local Auth0 and Tinybird emulators for demos, tests and benchmarks (needs the
    sandbox extra: pip install '.[sandbox]')."""
    require_extra()
    try:
        config = SandboxConfig.from_options(**options)
    except ValueError as problem:  # options that do not go together, each named
        raise click.UsageError(str(problem)) from None
    stop = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        running_sandbox = Sandbox(config)
    except ValueError as problem:  # a stream the options describe inconsistently
        raise click.UsageError(str(problem)) from None
    with running_sandbox as running:
        click.echo(_ready_text(running, as_json))
        sys.stdout.flush()
        click.echo(
            f"sandbox ready: auth0 {running.auth0_url}, tinybird {running.tinybird_url}, "
            f"{config.logs} logs ({config.shape}), profile {config.profile}; Ctrl-C to stop",
            err=True,
        )
        while not stop.wait(0.5):
            pass
    click.echo("sandbox stopped", err=True)


def _ready_text(running: Sandbox, as_json: bool) -> str:
    variables = {**running.env(), **running.extras()}
    if as_json:
        return json.dumps(variables)
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())
