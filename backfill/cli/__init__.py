"""The command line: one module per command (``run``, ``import``, ``status``, ``check``,
``verify``, ``sandbox``), each imported only when it is called; what they share (options, the
one place failures become exit codes) in ``common``. Only this package knows click.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from backfill import __version__
from backfill.errors import bounded


class _Commands(click.Group):
    """Each command's module is imported when the command is called: ``status`` does not load
    the job, and nothing but ``sandbox`` needs the sandbox's extra."""

    lazy = {
        "run": "backfill.cli.run",
        "status": "backfill.cli.status",
        "check": "backfill.cli.check",
        "verify": "backfill.cli.verify",
        "sandbox": "backfill.cli.sandbox",
        "import": "backfill.cli.import_:import_",
    }

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _bounded_usage_errors():
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        with _bounded_usage_errors():  # a subcommand's options are parsed in here
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy:
            return super().get_command(ctx, name)
        module, _, attribute = self.lazy[name].partition(":")  # "import" is a keyword
        command = getattr(importlib.import_module(module), attribute or name)
        assert isinstance(command, click.Command)
        return command


@contextmanager
def _bounded_usage_errors() -> Iterator[None]:
    """click's own messages repeat what they were given (an unknown option, a bad value):
    bounded like every message of ours."""
    try:
        yield
    except click.ClickException as error:
        setattr(error, "message", bounded(error.message))  # noqa: B010 - typed Final in click
        raise


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
