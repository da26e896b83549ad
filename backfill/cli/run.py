"""``auth0-backfill run``: parse, resolve the settings of each tenant, call the job, print the
summary, exit with its code."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
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
    quiet_option,
    state_option,
    tenant_option,
)
from backfill.config.parse import log_id
from backfill.config.settings import environment
from backfill.config.tenants import parse_shard, resolve_tenants
from backfill.errors import ConfigError
from backfill.run.job import JobRequest, Runner, run_requests
from backfill.run.stopper import Stopper, on_signals
from backfill.state import file as state_file

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
@json_option
@quiet_option
@log_format_option
@click.pass_obj
def run(
    runner: Runner | None,
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
    skip_log_ids: tuple[str, ...],
    until_stream_start: bool,
    resume_from_tinybird: bool,
    pii: str | None,
    skip_existing: bool,
    allow_duplicates: bool,
    tenants: tuple[str, ...],
    shard: str | None,
    as_json: bool,
    quiet: bool,
    log_format: str | None,
) -> None:
    """Copy logs from Auth0 into Tinybird, resuming from the checkpoint if there is one."""
    runner = runner or run_requests
    logsetup.configure(log_format=log_format or "text", quiet=quiet)
    with errors():
        if output is not None and not dry_run:
            raise click.UsageError("--output goes with --dry-run.")
        if until_stream_start and (until_date or resume_from_tinybird):
            raise click.UsageError(
                "--until-stream-start sets the end itself: not with --until-date or "
                "--resume-from-tinybird."
            )
        if skip_existing and allow_duplicates:
            raise click.UsageError("--skip-existing and --allow-duplicates exclude each other.")
        if until_stream_start and dry_run:
            raise click.UsageError(
                "--until-stream-start asks Tinybird where the stream began, and --dry-run does "
                "not talk to Tinybird: preview with --until-date set to that moment instead."
            )
        skipped = tuple(log_id(value, "--skip-log-id") for value in skip_log_ids)
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
                "pii": pii,
            },
            environment(),
            config_path,
            only=tenants,
            shard=parse_shard(shard) if shard is not None else None,
        )
        if not everyone:  # a part of fewer tenants than parts: nothing for this process
            log.warning(
                "shard=%s tenants=0 note='no tenant of %s is in this part'", shard, config_path
            )
            finish([], as_json=as_json, single=False)
        logsetup.configure(log_format=everyone[0].log_format, quiet=quiet)
        single = len(everyone) == 1 and everyone[0].tenant_name is None
        if dry_run and not single:
            raise click.UsageError("--dry-run works on one tenant: pick it with --tenant.")
        stoppers = [Stopper() for _ in everyone]
        with on_signals(stoppers), _output(output) as stream:
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
                    skip_existing=skip_existing,
                    allow_duplicates=allow_duplicates,
                    skip_log_ids=skipped,
                )
                for settings, stopper in zip(everyone, stoppers, strict=True)
            ]
            reports = runner(requests, single)
        # A dry run to stdout keeps stdout pure NDJSON: its summary goes to stderr.
        finish(reports, as_json=as_json, single=single, to_stderr=dry_run and output is None)


@contextmanager
def _output(path: Path | None) -> Iterator[Any]:
    if path is None:
        yield None
        return
    try:
        stream = state_file.open_private(path)  # it holds records: private, as the state is
    except OSError as error:
        folder = path.parent if str(path.parent) else Path(".")
        raise ConfigError(
            f"--output {path} cannot be written: {error.strerror}.",
            hint=f"Create {folder} first, or give a file in a folder that exists and is writable.",
        ) from None
    with stream:
        yield stream
