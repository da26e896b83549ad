"""``auth0-backfill import``: parse, resolve the settings, run the import, print the summary,
exit with its code."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from backfill import logsetup
from backfill.archive.job import ImportRequest, run_import
from backfill.archive.report import ImportReport
from backfill.cli.common import (
    WHEN,
    config_option,
    errors,
    json_option,
    log_format_option,
    output_file,
    quiet_option,
)
from backfill.config.parse import log_id
from backfill.config.settings import environment, resolve
from backfill.errors import UsageError
from backfill.run.stopper import Stopper, on_signals


@click.command(name="import")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@config_option
@click.option(
    "--state",
    type=click.Path(path_type=Path),
    help="Checkpoint file. Default ./auth0-backfill-import-state.json. "
    "Env: AUTH0_BACKFILL_IMPORT_STATE.",
)
@click.option("--restart", is_flag=True, help="Discard the checkpoint and start over.")
@click.option("--from-date", metavar=WHEN, help="Import logs whose date is at or after WHEN.")
@click.option("--until-date", metavar=WHEN, help="Import logs dated before WHEN (exclusive).")
@click.option(
    "--types",
    metavar="LIST",
    help="Only these event type codes or Log Streams categories, comma-separated.",
)
@click.option("--exclude-types", metavar="LIST", help="Leave out these codes or categories.")
@click.option(
    "--pii",
    type=click.Choice(["drop", "keep"]),
    help="When the Log Stream masks or hashes personal data: drop those values or keep them "
    "raw. Without it such an import is refused.",
)
@click.option(
    "--tenant",
    metavar="NAME",
    help="An archive of several tenants: import the logs whose tenant_name is NAME (and those "
    "without tenant_name).",
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Send only logs the data source (or its quarantine) does not hold yet. Needs read access.",
)
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="The data source already holds rows in the archive's window: send everything anyway.",
)
@click.option(
    "--max-rejects",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Set up to N items that are not JSON or not Auth0 logs aside in the rejects file and "
    "go on (default 0: the first stops the import).",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where rejected items go (default: beside the state file, *.rejects.ndjson).",
)
@click.option(
    "--skip-log-id",
    "skip_log_ids",
    multiple=True,
    metavar="ID",
    help="Leave this log out knowingly (one Tinybird refused as too large). Repeatable.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write the envelopes as NDJSON instead of sending them; no checkpoint, no Tinybird.",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --dry-run: write to this file instead of stdout.",
)
@json_option
@quiet_option
@log_format_option
def import_(**options: Any) -> None:
    """Import archived Auth0 logs (files, directories, - for standard input, s3:// gs:// az://
    URLs) into the data source, as the rows run sends, exactly once and resumably."""
    logsetup.configure(log_format=options["log_format"] or "text", quiet=options["quiet"])
    with errors():
        if options["output"] is not None and not options["dry_run"]:
            raise UsageError("--output goes with --dry-run.")
        if options["skip_existing"] and options["allow_duplicates"]:
            raise UsageError("--skip-existing and --allow-duplicates exclude each other.")
        skipped = tuple(log_id(value, "--skip-log-id") for value in options["skip_log_ids"])
        settings = resolve(_settings_flags(options), environment(), options["config_path"])
        logsetup.configure(log_format=settings.log_format, quiet=options["quiet"])

        async def job() -> ImportReport:
            stopper = Stopper()
            with on_signals([stopper]), output_file(options["output"]) as stream:
                request = ImportRequest(
                    settings=settings,
                    sources=tuple(options["sources"]),
                    stopper=stopper,
                    restart=options["restart"],
                    dry_run=options["dry_run"],
                    output=stream,
                    quiet=options["quiet"],
                    skip_existing=options["skip_existing"],
                    allow_duplicates=options["allow_duplicates"],
                    max_rejects=options["max_rejects"],
                    rejects=options["rejects_path"],
                    tenant=options["tenant"],
                    skip_log_ids=skipped,
                )
                return await run_import(request)

        report = asyncio.run(job())
    to_stderr = options["dry_run"] and options["output"] is None
    if options["as_json"]:
        click.echo(json.dumps(report.to_json(), default=str), err=to_stderr)
    else:
        click.echo(report.line(), err=to_stderr)
    sys.exit(report.exit_code)


def _settings_flags(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "from_date": options["from_date"],
        "until_date": options["until_date"],
        "import_state": str(options["state"]) if options["state"] else None,
        "types": options["types"],
        "exclude_types": options["exclude_types"],
        "log_format": options["log_format"],
        "pii": options["pii"],
    }
