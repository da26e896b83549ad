"""Logs: stdlib logging to stderr, one event per line, ``key=value`` text or JSON for collectors.

stdout is kept for the final summary, so cron and scripts can parse it. Every line goes through
``redact``: a message that repeats a user's value never carries a secret.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from backfill.redact import redact

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant", default=None)
_before_each_line: Callable[[], None] | None = None


def before_each_line(hook: Callable[[], None] | None) -> None:
    """Run ``hook`` before each log line (the progress bar erases itself there)."""
    global _before_each_line
    _before_each_line = hook


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    def emit(self, record: logging.LogRecord) -> None:
        hook = _before_each_line
        if hook is not None:
            hook()
        super().emit(record)


def set_tenant(name: str | None) -> None:
    """Tag the log lines of this task (and of the tasks it starts) with a tenant."""
    _tenant.set(name)


def tenant() -> str | None:
    """The tenant this task's log lines are tagged with."""
    return _tenant.get()


class _TenantFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = _tenant.get()
        return True


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        tenant = getattr(record, "tenant", None)
        prefix = f"{stamp} {record.levelname.lower():<7}"
        if tenant:
            prefix += f" tenant={tenant}"
        line = f"{prefix} {record.getMessage()}"
        if record.exc_info and record.levelno >= logging.ERROR:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, and the key=value fields parsed."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        tenant = getattr(record, "tenant", None)
        if tenant:
            document["tenant"] = tenant
        event, fields = split_fields(message)
        document["event"] = event
        document.update(fields)
        return json.dumps(document, ensure_ascii=False, default=str)


def split_fields(message: str) -> tuple[str, dict[str, str]]:
    """``event key=value key='quoted value'`` into the event and its fields."""
    head, _, rest = message.partition(" ")
    fields: dict[str, str] = {}
    if "=" in head:
        return message, fields
    index = 0
    while index < len(rest):
        while index < len(rest) and rest[index] == " ":
            index += 1
        equals = rest.find("=", index)
        if equals < 0:
            break
        key = rest[index:equals]
        index = equals + 1
        if index < len(rest) and rest[index] in "'\"":
            quote = rest[index]
            end = rest.find(quote, index + 1)
            end = len(rest) if end < 0 else end
            fields[key] = rest[index + 1 : end]
            index = end + 1
        else:
            end = rest.find(" ", index)
            end = len(rest) if end < 0 else end
            fields[key] = rest[index:end]
            index = end
    return head, fields


def configure(
    *, log_format: str = "text", quiet: bool = False, stream: TextIO | None = None
) -> None:
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_TenantFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    for noisy in ("httpx", "httpcore", "urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
