"""``auth0-backfill status``: where a checkpoint stands, read off the state file alone."""

from __future__ import annotations

import json
from pathlib import Path

import click

from backfill import logsetup
from backfill.checks.status import render_status, status_summary
from backfill.cli.common import config_option, errors, json_option, state_option
from backfill.config.settings import environment, resolve
from backfill.state import file as state_file


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
