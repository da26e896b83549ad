"""The command line: parse, resolve settings, call the job, print the summary, exit with its code.

Only this module knows click. Errors become exit codes in one place (``_fail``); the summary goes
to stdout (one line, or JSON with ``--json``), everything else to stderr.
"""

from __future__ import annotations

import importlib
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
import httpx

from backfill import __version__, logsetup
from backfill import state as state_file
from backfill.errors import (
    BackfillError,
    CheckFailedError,
    ConfigError,
    SomeTenantsFailedError,
    StateError,
)
from backfill.job import (
    JobRequest,
    Report,
    collect_garbage_less_often,
    open_clients,
    run_job,
    run_tenants,
)
from backfill.pipeline import Stopper
from backfill.preflight import CheckResult, Preflight, exit_status
from backfill.settings import Settings, environment, resolve, resolve_tenants
from backfill.verify import verify as verify_counts

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
tenant_option = click.option(
    "--tenant",
    "tenants",
    multiple=True,
    metavar="NAME",
    help="With a [[tenants]] settings file: only this tenant (repeatable).",
)
log_format_option = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Logs on stderr as key=value text (default) or one JSON object per line.",
)


class _Commands(click.Group):
    """The sandbox command is imported only when used: the job itself does not need it."""

    lazy = {"sandbox": "backfill.sandbox.command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            command = getattr(importlib.import_module(self.lazy[name]), name)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, name)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
@click.option(
    "--until-stream-start",
    is_flag=True,
    help="End where the live Log Stream's data begins: the earliest date already in the data "
    "source (asked once, then kept with the checkpoint).",
)
@click.option(
    "--resume-from-tinybird",
    is_flag=True,
    help="Take the resume point from the data source itself (its greatest log_id) instead of a "
    "state file: for a data source only this job writes, e.g. cron in a throwaway container.",
)
@tenant_option
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
    until_stream_start: bool,
    resume_from_tinybird: bool,
    tenants: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    log_format: str | None,
) -> None:
    """Copy logs from Auth0 into Tinybird, resuming from the checkpoint if there is one."""
    logsetup.configure(log_format=log_format or "text", quiet=quiet)
    with _errors():
        if output is not None and not dry_run:
            raise click.UsageError("--output goes with --dry-run.")
        if until_stream_start and (until_date or resume_from_tinybird):
            raise click.UsageError(
                "--until-stream-start sets the end itself: not with --until-date or "
                "--resume-from-tinybird."
            )
        if resume_from_tinybird and (restart or dry_run):
            raise click.UsageError(
                "--resume-from-tinybird keeps no checkpoint to restart and sends for real: not "
                "with --restart or --dry-run."
            )
        everyone = resolve_tenants(
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
            only=tenants,
        )
        logsetup.configure(log_format=everyone[0].log_format, quiet=quiet)
        single = len(everyone) == 1 and everyone[0].tenant_name is None
        if dry_run and not single:
            raise click.UsageError("--dry-run works on one tenant: pick it with --tenant.")
        stoppers = [Stopper() for _ in everyone]
        with _signals(stoppers), _output(output) as stream:
            requests = [
                JobRequest(
                    settings=settings,
                    stopper=stopper,
                    restart=restart,
                    restart_from_oldest=restart_from_oldest,
                    dry_run=dry_run,
                    output=stream,
                    quiet=quiet,
                    progress="auto" if single else "lines",
                    until_stream_start=until_stream_start,
                    resume_from_tinybird=resume_from_tinybird,
                )
                for settings, stopper in zip(everyone, stoppers, strict=True)
            ]
            collect_garbage_less_often()
            reports = [run_job(requests[0])] if single else run_tenants(requests)
        # A dry run to stdout keeps stdout pure NDJSON: its summary goes to stderr.
        _finish(reports, as_json=as_json, single=single, to_stderr=dry_run and output is None)


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


@main.command()
@config_option
@tenant_option
@json_option
def check(config_path: Path | None, tenants: tuple[str, ...], as_json: bool) -> None:
    """Before a long run: credentials, read:logs, the oldest log Auth0 still has, the Tinybird
    token's region, the data source and its schema, the right to append. One line per check;
    exits 10 when any fails (warnings do not)."""
    logsetup.configure(quiet=True)
    with _errors():
        everyone = resolve_tenants({}, environment(), config_path, only=tenants)
        outcome: list[dict[str, Any]] = []
        failed = False
        for settings in everyone:
            results = run_checks(settings)
            failed = failed or not exit_status(results)
            if as_json:
                outcome.append(
                    {
                        "tenant": settings.tenant_name or settings.auth0_base_url,
                        "checks": [result.__dict__ for result in results],
                    }
                )
                continue
            if settings.tenant_name:
                click.echo(f"[{settings.tenant_name}]")
            for result in results:
                click.echo(result.line())
        if as_json:
            click.echo(json.dumps(outcome[0] if len(outcome) == 1 else outcome, indent=1))
        if failed:
            sys.exit(CheckFailedError.exit_code)


@main.command()
@config_option
@state_option
@click.option("--from-date", metavar=WHEN, help="First day to compare (default: the ledger's).")
@click.option("--until-date", metavar=WHEN, help="Day to stop before (default: after the last).")
@json_option
def verify(
    config_path: Path | None,
    state: Path | None,
    from_date: str | None,
    until_date: str | None,
    as_json: bool,
) -> None:
    """After a run: per day, rows in Tinybird (count, uniqExact(log_id)) against the rows the job
    recorded as sent; quarantined rows since the run began; duplicates and the query that removes
    them at read time. Exits 10 when rows are missing."""
    logsetup.configure(quiet=True)
    with _errors():
        settings = resolve(
            {
                "state": str(state) if state else None,
                "from_date": from_date,
                "until_date": until_date,
            },
            environment(),
            config_path,
        )
        current = state_file.load(settings.state)
        if current is None:
            raise StateError(
                f"No checkpoint at {settings.state}: verify compares Tinybird with what a run "
                "recorded as sent.",
                hint="Point --state at the run's state file.",
            )
        settings.require_tinybird()
        with open_clients(settings, Stopper()) as clients:
            assert clients.query is not None
            result = verify_counts(
                clients.query,
                current,
                from_date=settings.from_date,
                until_date=settings.until_date,
            )
        if as_json:
            click.echo(json.dumps(result.to_json(), indent=1))
        else:
            click.echo(result.table())
        if result.missing:
            sys.exit(CheckFailedError.exit_code)


def run_checks(settings: Settings) -> list[CheckResult]:
    """Every preflight check for one tenant; missing settings are failed checks, not a crash."""
    results: list[CheckResult] = []
    try:
        settings.require_auth0()
    except ConfigError as error:
        results.append(CheckResult("auth0.settings", "fail", error.message))
    try:
        settings.require_tinybird()
    except ConfigError as error:
        results.append(CheckResult("tinybird.settings", "fail", error.message))
    with open_clients(settings, Stopper()) as clients:
        http = clients.http

        def append_probe() -> httpx.Response:
            # An empty body appends nothing: it proves the token, its region and its scope.
            return http.post(
                f"{settings.tinybird_host}/v0/events",
                params={"name": settings.datasource, "wait": "true"},
                content=b"",
                headers={
                    "Authorization": f"Bearer {settings.tinybird_token}",
                    "Content-Type": "application/x-ndjson",
                },
            )

        preflight = Preflight(
            logs=clients.logs,
            query=clients.query,
            append_probe=append_probe if settings.tinybird_token else None,
            host=settings.tinybird_host,
            datasource=settings.datasource,
        )
        results.extend(preflight.run())
    return results


# -- shared plumbing ----------------------------------------------------------------------------


def _finish(
    reports: list[Report], *, as_json: bool, single: bool, to_stderr: bool = False
) -> NoReturn:
    if as_json:
        body: Any = reports[0].to_json() if single else [item.to_json() for item in reports]
        click.echo(json.dumps(body, indent=None if single else 1, default=str), err=to_stderr)
    else:
        for report in reports:
            click.echo(report.line(), err=to_stderr)
    codes = {report.exit_code for report in reports}
    sys.exit(max(codes) if len(codes) == 1 or single else _mixed_exit(reports))


def _mixed_exit(reports: list[Report]) -> int:
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
def _signals(stoppers: list[Stopper]) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop cleanly. A second: leave at once (the checkpoint stays valid)."""
    asked: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        if asked:
            sys.stderr.write(f"auth0-backfill: {signal.Signals(signum).name} again, leaving now\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        log.warning(
            "stopping signal=%s note='letting appends in flight finish; send it again to leave "
            "at once'",
            signal.Signals(signum).name,
        )
        asked.append(signum)
        for stopper in stoppers:
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
