"""The operator's commands beside ``run``: ``status``, ``check`` and ``verify`` (click, like
``cli``; the group imports this module when one of them is called)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from backfill import logsetup
from backfill import state as state_file
from backfill.cli import WHEN, config_option, errors, json_option, state_option, tenant_option
from backfill.errors import CheckFailedError
from backfill.preflight import exit_status, run_checks
from backfill.settings import environment, resolve
from backfill.status import render_status, status_summary
from backfill.tenants import resolve_tenants
from backfill.verify import verify_state


@click.command()
@config_option
@state_option
@json_option
def status(config_path: Path | None, state: Path | None, as_json: bool) -> None:
    """Where the checkpoint stands: newest log_id and date, rows sent, last run."""
    logsetup.configure()
    with errors():
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


@click.command()
@config_option
@tenant_option
@json_option
def check(config_path: Path | None, tenants: tuple[str, ...], as_json: bool) -> None:
    """Before a long run: credentials, read:logs, the oldest log Auth0 still has, the Tinybird
    token's region, the data source and its schema, the right to append. One line per check;
    exits 10 when any fails (warnings do not)."""
    logsetup.configure(quiet=True)
    with errors():
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
        result = verify_state(settings, state_file.load(settings.state), by=by)
        if as_json:
            click.echo(json.dumps(result.to_json(), indent=1))
        else:
            click.echo(result.table())
        if result.missing or result.duplicates:
            sys.exit(CheckFailedError.exit_code)
