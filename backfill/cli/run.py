"""``auth0-backfill run``: parse, resolve the settings of each tenant, call the job, print the
summary, exit with its code."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import click

from backfill import logsetup
from backfill.cli.common import (
    WHEN,
    config_option,
    errors,
    finish,
    json_option,
    log_format_option,
    output_file,
    quiet_option,
    state_option,
    tenant_option,
)
from backfill.config.settings import environment
from backfill.config.tenants import parse_shard, resolve_tenants
from backfill.run.budget import MIB, MemoryBudget
from backfill.run.command import RunCommand
from backfill.run.job import Report, Runner, run_requests
from backfill.run.stopper import Stopper, on_signals

log = logging.getLogger("backfill.cli")


@click.command()
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
    "--skip-log-id",
    "skip_log_ids",
    multiple=True,
    metavar="ID",
    help="Leave this log out knowingly (one Tinybird refused as too large: exit 9 names it); "
    "recorded in the state and shown by status. Repeatable.",
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
@click.option(
    "--pii",
    type=click.Choice(["drop", "keep"]),
    help="When the Log Stream masks or hashes personal data: drop those values (null; they "
    "never leave this machine) or keep them raw. Without it such a run is refused.",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Send only logs the data source (or its quarantine) does not hold yet, asked batch by "
    "batch: to fill the holes a stream left. Needs read access.",
)
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="A new checkpoint over a window the data source already holds rows in: send anyway.",
)
@tenant_option
@click.option(
    "--shard",
    metavar="K/N",
    help="With a [[tenants]] settings file: only the K-th of N disjoint parts of it (K from 0). "
    "A tenant's part depends only on its name: N processes given K = 0 to N-1 process each "
    "tenant exactly once.",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Once caught up, keep reading new logs, a poll every --poll-interval, until SIGTERM or "
    "SIGINT (then exit 0).",
)
@click.option(
    "--poll-interval",
    type=float,
    metavar="SECONDS",
    help="With --follow: seconds between polls (default 30; a poll is one request when idle).",
)
@click.option(
    "--rate-share",
    type=float,
    metavar="FRACTION",
    help="Use at most this share of the tenant's Management API rate limit, burst included "
    "(default 1); the rest is left to the tenant's own applications.",
)
@click.option(
    "--metrics-port",
    type=int,
    metavar="PORT",
    help="With --follow: serve Prometheus metrics at :PORT/metrics.",
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write Prometheus metrics to this file when the run ends (a node_exporter textfile).",
)
@json_option
@quiet_option
@log_format_option
@click.pass_obj
def run(runner: Runner | None, /, **options: Any) -> None:
    """Copy logs from Auth0 into Tinybird, resuming from the checkpoint if there is one."""
    command = RunCommand(**options)
    runner = runner or run_requests
    logsetup.configure(log_format=command.log_format or "text", quiet=command.quiet)
    with errors():
        command.check()
        everyone = resolve_tenants(
            command.settings_flags(),
            environment(),
            command.config_path,
            only=command.tenants,
            shard=parse_shard(command.shard) if command.shard is not None else None,
        )
        if not everyone:  # a part of fewer tenants than parts: nothing for this process
            log.warning(
                "shard=%s tenants=0 note='no tenant of %s is in this part'",
                command.shard,
                command.config_path,
            )
            finish([], as_json=command.as_json, single=False)
        logsetup.configure(log_format=everyone[0].log_format, quiet=command.quiet)
        single = command.check_tenants(everyone)
        first = everyone[0]
        metrics = None
        if first.metrics_port or first.metrics_file:
            from backfill.run.metrics import Metrics  # prometheus_client: only when asked for

            if first.metrics_file:
                Metrics.check_writable(first.metrics_file)
            metrics = Metrics()
        if metrics is not None and first.metrics_port:
            metrics.serve(first.metrics_port)

        async def every_tenant() -> list[Report]:
            stoppers = [Stopper() for _ in everyone]
            with on_signals(stoppers), output_file(command.output) as stream:
                budget = MemoryBudget(first.memory_budget_mib * MIB)
                requests = command.job_requests(
                    everyone, stoppers, stream, single=single, metrics=metrics, budget=budget
                )
                return await runner(requests, single)

        try:
            reports = asyncio.run(every_tenant())
        finally:
            if metrics is not None and first.metrics_file:
                metrics.write(first.metrics_file)
        # A dry run to stdout keeps stdout pure NDJSON: its summary goes to stderr.
        to_stderr = command.dry_run and command.output is None
        finish(reports, as_json=command.as_json, single=single, to_stderr=to_stderr)
