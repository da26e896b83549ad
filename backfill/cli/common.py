"""What the commands share: their common options, and the one place failures become messages and
exit codes (``errors``); the summary goes to stdout (``finish``), everything else to stderr."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from backfill.errors import BackfillError, ConfigError, UsageError, bounded
from backfill.run.report import Report, exit_code_of
from backfill.state import file as state_file

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


def finish(
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
    except UsageError as error:  # shown as click shows its own: usage, then the error
        raise click.UsageError(str(error)) from None
    except BackfillError as error:
        fail(error.exit_code, str(error))
    except click.ClickException:
        raise
    except KeyboardInterrupt:
        fail(130, "interrupted")
    except Exception as error:  # noqa: BLE001 - a bug: said in one line, not a traceback
        if os.environ.get("AUTH0_BACKFILL_DEBUG"):
            traceback.print_exc()
        where = traceback.extract_tb(error.__traceback__)[-1]
        fail(
            1,
            f"internal error: {type(error).__name__} at {Path(where.filename).name}:"
            f"{where.lineno}: {bounded(str(error), 200)}. This is a bug: please report it with "
            "this line (AUTH0_BACKFILL_DEBUG=1 prints the traceback). The checkpoint is at the "
            "last acknowledged batch.",
        )


def fail(code: int, message: str) -> NoReturn:
    click.echo(f"auth0-backfill: {message}", err=True)
    sys.exit(code)


@contextmanager
def output_file(path: Path | None) -> Iterator[Any]:
    """``--output``: a file that holds records, private as the state is (0600); None: stdout."""
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
