"""Secrets as the job reads them: from ``NAME`` in the environment, or from the file ``NAME_FILE``
names (as container secrets are mounted); checked once to be sendable, never shown, and hidden
from every message from then on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from backfill import redact
from backfill.errors import ConfigError


def read_secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from ``NAME``, or from the file ``NAME_FILE`` names; never from anywhere else.

    It is checked here, once, to be usable in an HTTP header (it is never printed), and hidden
    from every message and log line from then on (``redact.register``).
    """
    value = env.get(name)
    if value:
        return _usable_secret(value.strip(), name, name)
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(
            f"{name}_FILE names {path}, which cannot be read: {error.strerror}."
        ) from None
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        raise ConfigError(
            f"{name}_FILE names {path}, which is not text (it is not UTF-8).",
            hint="The file must hold the secret alone, as text.",
        ) from None
    if not text:
        raise ConfigError(f"{name}_FILE names {path}, which is empty.")
    return _usable_secret(text, name, f"{name} (from {name}_FILE {path})")


def _usable_secret(value: str, name: str, where: str) -> str:
    """A secret travels in an HTTP header or a JSON body: visible ASCII only. Named, not shown."""
    redact.register(value)
    for position, character in enumerate(value, start=1):
        if "!" <= character <= "~":
            continue
        if character in "\r\n":
            what = "a line break"
        elif character in " \t":
            what = "a space or tab"
        elif not character.isascii():
            what = "a non-ASCII character"
        else:
            what = "a control character"
        raise ConfigError(
            f"{where} holds {what} at character {position} of {len(value)}: it cannot be sent "
            "as a credential (the value is not shown).",
            hint="Set it again without it: a value pasted from a file often keeps the file's "
            f"line breaks (e.g. {name}=\"$(tr -d '\\r\\n' < the-file)\").",
        )
    return value
