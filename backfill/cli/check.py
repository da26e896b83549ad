"""``auth0-backfill check``: before a long run, one line per check."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from backfill import logsetup
from backfill.checks.preflight import exit_status, run_checks
from backfill.cli.common import config_option, errors, json_option, tenant_option
from backfill.config.settings import environment
from backfill.config.tenants import resolve_tenants
from backfill.errors import CheckFailedError


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
            results = asyncio.run(run_checks(settings))
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
