"""``auth0-backfill verify``: did everything land?"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from backfill import logsetup
from backfill.checks.verify import verify_state
from backfill.cli.common import WHEN, config_option, errors, json_option, state_option
from backfill.config.settings import environment, resolve
from backfill.errors import CheckFailedError
from backfill.state import file as state_file


@click.command()
@config_option
@state_option
@click.option("--from-date", metavar=WHEN, help="First day to compare (default: the ledger's).")
@click.option("--until-date", metavar=WHEN, help="Day to stop before (default: after the last).")
@click.option(
    "--by",
    type=click.Choice(["day", "hour"]),
    default="day",
    show_default=True,
    help="day: against what the run recorded as sent. hour: against Auth0's own logs, so a "
    "hole of an hour shows (also what verify does without a state file).",
)
@json_option
def verify(
    config_path: Path | None,
    state: Path | None,
    from_date: str | None,
    until_date: str | None,
    by: str,
    as_json: bool,
) -> None:
    """After a run: per day, rows in Tinybird (count, uniqExact(log_id)) against the rows the job
    recorded as sent; quarantined rows since the run began; duplicates and the query that removes
    them at read time. With --by hour (or no state file): Auth0's logs against Tinybird's rows.
    Exits 10 when rows are missing or duplicated."""
    logsetup.configure(quiet=True)
    with errors():
        settings = resolve(
            {
                "state": str(state) if state else None,
                "from_date": from_date,
                "until_date": until_date,
            },
            environment(),
            config_path,
        )
        result = asyncio.run(verify_state(settings, state_file.load(settings.state), by=by))
        if as_json:
            click.echo(json.dumps(result.to_json(), indent=1))
        else:
            click.echo(result.table())
        if result.missing or result.duplicates:
            sys.exit(CheckFailedError.exit_code)
