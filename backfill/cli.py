"""The command line: parse, resolve settings, call the job, print the summary, exit with its code.

Only this module knows click. Errors become exit codes in one place (``_fail``); the summary goes
to stdout (one line, or JSON with ``--json``), everything else to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click

from backfill import __version__, logsetup
from backfill import state as state_file
from backfill.errors import BackfillError
from backfill.job import JobRequest, Report, run_job
from backfill.pipeline import Stopper
from backfill.settings import Settings, environment, resolve

log = logging.getLogger("backfill.cli")

WHEN = "WHEN"  # ISO 8601 date or date-time; no offset means UTC

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="AUTH0_BACKFILL_CONFIG",
    help="TOML settings file (see config.example.toml). Env: AUTH0_BACKFILL_CONFIG.",
)
state_option = click.option(
    "--state",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Checkpoint file. Default ./auth0-backfill-state.json. Env: AUTH0_BACKFILL_STATE.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress and no informational logs (warnings stay)."
)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Logs on stderr as key=value text (default) or one JSON object per line.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="auth0-backfill")
def main() -> None:
    """Copy an Auth0 tenant's historical logs into the Tinybird data source its Log Stream fills,
    as the same envelopes the stream sends, resumably."""


@main.command()
@config_option
@click.option("--from-date", metavar=WHEN, help="Copy logs whose date is at or after WHEN.")
@click.option("--from-log-id", metavar="ID", help="Copy logs after this log_id (exclusive).")
@click.option("--until-date", metavar=WHEN, help="Stop before logs dated WHEN (exclusive).")
@state_option
@click.option("--restart", is_flag=True, help="Discard the checkpoint and start over.")
@click.option(
    "--restart-from-oldest",
    is_flag=True,
    help="If the checkpoint aged out of Auth0's retention, accept the gap and go on from the "
    "oldest log Auth0 still has (the gap is recorded and reported).",
)
@click.option(
    "--types",
    metavar="LIST",
    help="Only these event type codes or Log Streams categories, comma-separated "
    "(e.g. s,ss,auth.login.fail).",
)
@click.option("--exclude-types", metavar="LIST", help="Leave out these codes or categories.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write the envelopes as NDJSON instead of sending them; the checkpoint is not touched.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --dry-run: write to this file instead of stdout.",
)
@click.option(
    "--concurrency", type=click.IntRange(min=1), help="Cursors reading Auth0 at once (default 8)."
)
@json_option
@quiet_option
@log_format_option
def run(
    config_path: Path | None,
    from_date: str | None,
    from_log_id: str | None,
    until_date: str | None,
    state: Path | None,
    restart: bool,
    restart_from_oldest: bool,
    types: str | None,
    exclude_types: str | None,
    dry_run: bool,
    output: Path | None,
    concurrency: int | None,
    as_json: bool,
    quiet: bool,
    log_format: str | None,
) -> None:
    """Copy logs from Auth0 into Tinybird, resuming from the checkpoint if there is one."""
    logsetup.configure(log_format=log_format or "text", quiet=quiet)
    with _errors():
        if output is not None and not dry_run:
            raise click.UsageError("--output goes with --dry-run.")
        settings = resolve(
            {
                "from_date": from_date,
                "from_log_id": from_log_id,
                "until_date": until_date,
                "state": str(state) if state else None,
                "types": types,
                "exclude_types": exclude_types,
                "concurrency": concurrency,
                "log_format": log_format,
            },
            environment(),
            config_path,
        )
        logsetup.configure(log_format=settings.log_format, quiet=quiet)
        stopper = Stopper()
        with _signals(stopper), _output(output) as stream:
            report = run_job(
                JobRequest(
                    settings=settings,
                    stopper=stopper,
                    restart=restart,
                    restart_from_oldest=restart_from_oldest,
                    dry_run=dry_run,
                    output=stream,
                    quiet=quiet,
                )
            )
        _finish([report], as_json=as_json, single=True)


@main.command()
@config_option
@state_option
@json_option
def status(config_path: Path | None, state: Path | None, as_json: bool) -> None:
    """Where the checkpoint stands: newest log_id and date, rows sent, last run."""
    logsetup.configure()
    with _errors():
        settings = resolve({"state": str(state) if state else None}, environment(), config_path)
        current = state_file.load(settings.state)
        if current is None:
            if as_json:
                click.echo(json.dumps({"state": str(settings.state), "exists": False}))
            else:
                click.echo(f"No checkpoint at {settings.state}: the next run starts afresh.")
            return
        summary = status_summary(settings, current)
        if as_json:
            click.echo(json.dumps(summary, indent=1))
        else:
            click.echo(render_status(summary))


def status_summary(settings: Settings, current: state_file.RunState) -> dict[str, Any]:
    newest_id, newest_date = current.newest()
    open_ranges = [item for item in current.ranges if item.end is None]
    bounded = [item for item in current.ranges if item.end is not None]
    return {
        "state": str(settings.state),
        "exists": True,
        "tenant": current.tenant,
        "datasource": current.datasource,
        "tinybird_host": current.tinybird_host,
        "started_with": current.started_with,
        "created_at": current.created_at,
        "newest_log_id": newest_id,
        "newest_date": newest_date,
        "rows_sent": current.rows_sent,
        "batches": current.batches,
        "quarantined_rows": current.quarantined_rows,
        "already_in_tinybird": current.already_landed_rows,
        "ranges": len(current.ranges),
        "ranges_done": sum(1 for item in bounded if item.done),
        "ranges_bounded": len(bounded),
        "open_tail": bool(open_ranges),
        "pending_appends": len(current.pending),
        "unclean_stop": current.running,
        "gaps": [gap.__dict__ for gap in current.gaps],
        "gap_seconds": sum(gap.seconds for gap in current.gaps),
        "last_run": current.last_run,
    }


def render_status(summary: dict[str, Any]) -> str:
    started = ", ".join(
        f"{key.replace('_', '-')} {value}"
        for key, value in summary["started_with"].items()
        if value not in (None, [], "")
    )
    last = summary["last_run"] or {}
    lines = [
        f"State file:      {summary['state']}",
        f"Tenant:          {summary['tenant']} -> data source {summary['datasource']} at "
        f"{summary['tinybird_host']}",
        f"Started with:    {started or 'no start flags (oldest retained log)'}",
        f"Newest log_id:   {summary['newest_log_id'] or '-'} ({summary['newest_date'] or '-'})",
        f"Rows sent:       {summary['rows_sent']:,} in {summary['batches']:,} batches "
        f"({summary['quarantined_rows']:,} quarantined, {summary['already_in_tinybird']:,} "
        "already in Tinybird)",
        f"Ranges:          {summary['ranges_done']}/{summary['ranges_bounded']} done"
        + (" + an open tail (until caught up)" if summary["open_tail"] else ""),
        f"Last run:        {last.get('started_at', '-')} -> {last.get('finished_at', '-')}, "
        f"{last.get('outcome', '-')}, {last.get('rows_sent', 0):,} rows",
    ]
    if summary["pending_appends"] or summary["unclean_stop"]:
        lines.append(
            f"Unclean stop:    {summary['pending_appends']} appends in flight; the next run "
            "checks which of their rows landed"
        )
    if summary["gaps"]:
        hours = summary["gap_seconds"] / 3600
        lines.append(f"Gaps:            {len(summary['gaps'])}, {hours:.1f} h of history skipped")
    return "\n".join(lines)


# -- shared plumbing ----------------------------------------------------------------------------


def _finish(reports: list[Report], *, as_json: bool, single: bool) -> NoReturn:
    if as_json:
        body: Any = reports[0].to_json() if single else [item.to_json() for item in reports]
        click.echo(json.dumps(body, indent=None if single else 1, default=str))
    else:
        for report in reports:
            click.echo(report.line())
    for report in reports:
        if report.exit_code:
            log.error("exit code=%d %s", report.exit_code, report.error or report.outcome)
    codes = {report.exit_code for report in reports}
    sys.exit(max(codes) if len(codes) == 1 or single else _mixed_exit(reports))


def _mixed_exit(reports: list[Report]) -> int:
    from backfill.errors import SomeTenantsFailedError

    failed = [report for report in reports if report.exit_code]
    if not failed:
        return 0
    return SomeTenantsFailedError.exit_code if len(failed) < len(reports) else failed[0].exit_code


@contextmanager
def _errors() -> Iterator[None]:
    """The one place failures become messages and exit codes."""
    try:
        yield
    except BackfillError as error:
        _fail(error.exit_code, str(error))
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        _fail(130, "interrupted")


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"auth0-backfill: {message}", err=True)
    sys.exit(code)


@contextmanager
def _signals(stopper: Stopper) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop cleanly. A second: leave at once (the checkpoint stays valid)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stopper.stopping and stopper.signum is not None:
            sys.stderr.write(f"auth0-backfill: {signal.Signals(signum).name} again, leaving now\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        log.warning(
            "stopping signal=%s note='letting appends in flight finish; send it again to leave "
            "at once'",
            signal.Signals(signum).name,
        )
        stopper.request(signum)

    previous: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for which in (signal.SIGINT, signal.SIGTERM):
        previous[which] = signal.signal(which, handle)
    try:
        yield
    finally:
        for which, handler in previous.items():
            signal.signal(which, handler)


@contextmanager
def _output(path: Path | None) -> Iterator[Any]:
    if path is None:
        yield None
        return
    with path.open("wb") as stream:
        yield stream
