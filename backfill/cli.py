"""The command line: parse, resolve settings, call the job, print the summary, exit with its code.

Only this module and ``commands`` know click. Errors become exit codes in one place
(``errors``); the summary goes to stdout (one line, or JSON with ``--json``), everything else to
stderr.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click

from backfill import __version__, logsetup
from backfill import state as state_file
from backfill.errors import BackfillError, ConfigError, bounded
from backfill.run.job import JobRequest, Report, Runner, run_requests
from backfill.run.report import exit_code_of
from backfill.run.stopper import Stopper, on_signals
from backfill.settings import environment
from backfill.tenants import parse_shard, resolve_tenants
from backfill.values import log_id

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
    type=click.Path(path_type=Path),  # a directory is refused by the settings, with a remedy
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
    """``run`` is here; the operator's other commands (``commands``) and the sandbox are imported
    when used (the job itself does not need the sandbox)."""

    lazy = {
        "status": "backfill.commands",
        "check": "backfill.commands",
        "verify": "backfill.commands",
        "sandbox": "backfill.sandbox.command",
    }
    # What a lazy command needs beyond the job's own dependencies: (module, extra).
    needs = {"sandbox": ("chdb", "sandbox")}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _bounded_usage_errors():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with _bounded_usage_errors():  # a subcommand's options are parsed in here
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, extra = self.needs.get(name, ("click", ""))
            if importlib.util.find_spec(module) is None:
                return _needs_extra(name, module, extra)
            command = getattr(importlib.import_module(self.lazy[name]), name)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, name)


@contextmanager
def _bounded_usage_errors() -> Iterator[None]:
    """click's own messages repeat what they were given (an unknown option, a bad value):
    bounded like every message of ours."""
    try:
        yield
    except click.ClickException as error:
        setattr(error, "message", bounded(error.message))  # noqa: B010 - typed Final in click
        raise


def _needs_extra(name: str, module: str, extra: str) -> click.Command:
    """Stands in for a command whose optional dependency is not installed: says which extra."""
    install = f"pip install '.[{extra}]'"

    def refuse(args: tuple[str, ...]) -> None:
        _fail(
            ConfigError.exit_code,
            f"`auth0-backfill {name}` needs the {extra!r} extra ({module}), which is not "
            f"installed. Install it with: {install} (or pipx install '.[{extra}]', or "
            f"pipx inject auth0-backfill {module}).",
        )

    return click.Command(
        name,
        callback=refuse,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        help=f"Start the local emulators (needs: {install}).",
        context_settings={"ignore_unknown_options": True, "help_option_names": []},
    )


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="auth0-backfill")
def main() -> None:
    """Copy an Auth0 tenant's historical logs into the Tinybird data source its Log Stream fills,
    as the same envelopes the stream sends, resumably."""
    # As PID 1 (a container) a process gets only the signals it handles: every command leaves on
    # SIGTERM with 143 (``run`` installs its own, which lets appends in flight finish).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _leave)


def _leave(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write(f"auth0-backfill: stopped by {signal.Signals(signum).name}\n")
    sys.exit(128 + signum)


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
            _finish([], as_json=as_json, single=False)
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
        _finish(reports, as_json=as_json, single=single, to_stderr=dry_run and output is None)


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
    sys.exit(exit_code_of(reports, single=single))


@contextmanager
def errors() -> Iterator[None]:
    """The one place failures become messages and exit codes."""
    try:
        yield
    except BackfillError as error:
        _fail(error.exit_code, str(error))
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        _fail(130, "interrupted")
    except Exception as error:  # noqa: BLE001 - a bug: said in one line, not a traceback
        if os.environ.get("AUTH0_BACKFILL_DEBUG"):
            traceback.print_exc()
        where = traceback.extract_tb(error.__traceback__)[-1]
        _fail(
            1,
            f"internal error: {type(error).__name__} at {Path(where.filename).name}:"
            f"{where.lineno}: {bounded(str(error), 200)}. This is a bug: please report it with "
            "this line (AUTH0_BACKFILL_DEBUG=1 prints the traceback). The checkpoint is at the "
            "last acknowledged batch.",
        )


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"auth0-backfill: {message}", err=True)
    sys.exit(code)


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
