"""``auth0-backfill status``: where a checkpoint stands, read off the state file alone."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from backfill import logsetup
from backfill.checks.status import render_status, status_summary
from backfill.cli.common import config_option, errors, json_option, state_option, tenant_option
from backfill.config.parse import duration
from backfill.config.settings import Settings, environment
from backfill.config.tenants import resolve_tenants
from backfill.errors import CheckFailedError
from backfill.state import file as state_file
from backfill.timeutil import humanize


@click.command()
@config_option
@state_option
@tenant_option
@click.option(
    "--max-lag",
    metavar="DURATION",
    help="Exit 10 unless the state is caught up to within DURATION of now (15m, 2h ...): "
    "for a monitor, a cron job or a Kubernetes probe. With [[tenants]], every tenant's.",
)
@json_option
def status(
    config_path: Path | None,
    state: Path | None,
    tenants: tuple[str, ...],
    max_lag: str | None,
    as_json: bool,
) -> None:
    """Where the checkpoint stands: newest log_id and date, rows sent, last run, how far behind
    (with --max-lag, exit 10 when further behind than that)."""
    logsetup.configure()
    with errors():
        flags = {"state": str(state) if state else None}
        everyone = resolve_tenants(flags, environment(), config_path, only=tenants, secrets=False)
        allowed = duration(max_lag, "--max-lag") if max_lag is not None else None
        shown: list[dict[str, Any]] = []
        stale: list[str] = []
        for settings in everyone:
            summary, why = _one(settings, allowed, max_lag)
            if why:
                stale.append(f"{settings.tenant_name}: {why}" if settings.tenant_name else why)
            if as_json:
                shown.append({"tenant_name": settings.tenant_name, **summary})
                continue
            if settings.tenant_name:
                click.echo(f"[{settings.tenant_name}]")
            click.echo(
                render_status(summary)
                if summary.get("exists", True)
                else f"No checkpoint at {settings.state}: the next run starts afresh."
            )
        if as_json:
            single = len(shown) == 1 and not shown[0]["tenant_name"]
            body = {key: value for key, value in shown[0].items() if key != "tenant_name"}
            click.echo(json.dumps(body if single else shown, indent=1))
        for why in stale:
            click.echo(f"auth0-backfill: stale: {why}.", err=True)
        if stale:
            sys.exit(CheckFailedError.exit_code)


def _one(
    settings: Settings, allowed: timedelta | None, max_lag: str | None
) -> tuple[dict[str, Any], str | None]:
    """One state's summary, and why it is stale when --max-lag says so (else None)."""
    current = state_file.load(settings.state)
    if current is None:
        missing = {"state": str(settings.state), "exists": False}
        why = f"no checkpoint at {settings.state}: nothing has been caught up yet"
        return missing, why if allowed is not None else None
    summary = status_summary(settings, current)
    lag = summary["lag_seconds"]
    if allowed is None:
        return summary, None
    if lag is None:
        return summary, (
            "the state records no moment it was caught up through (a run that has not "
            "reached the end of its logs yet)"
        )
    if lag > allowed.total_seconds():
        return summary, (
            f"caught up through {summary['caught_up_through']}, {humanize(lag)} ago: "
            f"more than --max-lag {max_lag}"
        )
    return summary, None
