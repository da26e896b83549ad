"""How each setting's value is read and checked: whole numbers, seconds, dates, lists of event
types, data source names, base URLs. Each parser takes the raw value and where it came from (a
flag, a variable, a key of the settings file), and names that place in its error."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from backfill.errors import ConfigError, given, given_text
from backfill.timeutil import parse_when


def nonempty(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string, not {given(value)}.")
    return value.strip()


def _not_boolean(value: Any, where: str, wanted: str) -> None:
    # int(True) is 1: a TOML ``concurrency = true`` must not pass for a number.
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be {wanted}, not {str(value).lower()} (a boolean).")


def positive_int(value: Any, where: str) -> int:
    _not_boolean(value, where, "a whole number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a whole number, not {given(value)}.") from None
    if isinstance(value, float) and value != number:
        raise ConfigError(f"{where} must be a whole number, not {given(value)}.")
    if number < 1:
        raise ConfigError(f"{where} must be at least 1, not {given(number)}.")
    return number


def whole(at_most: int) -> Callable[[Any, str], int]:
    """A whole number from 1 to ``at_most``: beyond it a setting means nothing but a typo."""

    def parse(value: Any, where: str) -> int:
        number = positive_int(value, where)
        if number > at_most:
            raise ConfigError(f"{where} must be at most {at_most:,}, not {given(number)}.")
        return number

    return parse


MOST_SECONDS = 30 * 86_400  # no wait, margin or timeout of this job means a month


def seconds(*, zero_allowed: bool) -> Callable[[Any, str], float]:
    def parse(value: Any, where: str) -> float:
        _not_boolean(value, where, "a number of seconds")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where} must be a number of seconds, not {given(value)}.") from None
        if number != number or number in (float("inf"), float("-inf")):  # nan, inf
            raise ConfigError(f"{where} must be a finite number of seconds, not {given(value)}.")
        if number < 0 or (number == 0 and not zero_allowed):
            bound = "negative" if zero_allowed else "0 or less"
            raise ConfigError(f"{where} must not be {bound}, not {number}.")
        if number > MOST_SECONDS:
            raise ConfigError(
                f"{where} must be at most {MOST_SECONDS:,} seconds (30 days), not {given(value)}."
            )
        return number

    return parse


positive_float = seconds(zero_allowed=False)
non_negative_float = seconds(zero_allowed=True)


def share(value: Any, where: str) -> float:
    """A fraction from 0.01 to 1 (``0.5``: half); below a hundredth a free tenant would wait
    minutes between two requests."""
    _not_boolean(value, where, "a fraction")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where} must be a fraction such as 0.5, not {given(value)}.") from None
    if not 0.01 <= number <= 1:
        raise ConfigError(
            f"{where} must be from 0.01 to 1 (the share of the rate limit), not {given(value)}."
        )
    return number


def port(value: Any, where: str) -> int:
    number = positive_int(value, where)
    if number > 65535:
        raise ConfigError(f"{where} must be a TCP port, 1 to 65535, not {given(number)}.")
    return number


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])", re.ASCII)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONGEST = timedelta(days=3650)  # a lag beyond ten years is a typo, and beyond timedelta's range


def duration(value: Any, where: str) -> timedelta:
    """``15m``, ``2h``, ``1h30m``, ``90s``, ``1d`` or plain seconds (``900``)."""
    text = str(value).strip().lower().replace(" ", "")
    if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text, re.ASCII):
        parts = [(text, "s")]
    else:
        parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) not in {text, text + "s"}:
        raise ConfigError(
            f"{where} {given(value)} is not a duration.",
            hint="Write it like 15m, 2h, 1h30m, 90s or 1d.",
        )
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds > _LONGEST.total_seconds():
        raise ConfigError(f"{where} {given(value)} is longer than ten years.")
    return timedelta(seconds=seconds)


def when(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return parse_when(value.isoformat(), name=where)
    if not isinstance(value, str):  # TOML dates arrive as datetime.date
        value = str(value)
    return parse_when(value, name=where)


def codes(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part for part in value.replace(",", " ").split() if part]
    elif isinstance(value, list | tuple):
        items = [str(part).strip() for part in value if str(part).strip()]
    else:
        raise ConfigError(f"{where} must be a list of event type codes or categories.")
    return tuple(items)


def choice(*allowed: str) -> Callable[[Any, str], str]:
    def parse(value: Any, where: str) -> str:
        text = nonempty(value, where)
        if text not in allowed:
            raise ConfigError(f"{where} must be one of {', '.join(allowed)}, not {given(text)}.")
        return text

    return parse


def base_url(value: Any, where: str) -> str:
    return normalize_base_url(nonempty(value, where), name=where)


def path(value: Any, where: str) -> Path:
    return Path(nonempty(value, where)).expanduser()


def file_path(value: Any, where: str) -> Path:
    """A file to write (the state file): not an existing directory."""
    found = path(value, where)
    try:
        directory = found.is_dir()
    except OSError as error:  # a name too long for the file system, a loop of links ...
        raise ConfigError(
            f"{where} names {given_text(str(found))}, which cannot be used: {error.strerror}.",
            hint="Give a shorter path to a file in a folder that exists.",
        ) from None
    if directory:
        raise ConfigError(
            f"{where} names {found}, which is a directory: it must name a file.",
            hint=f"Give a file in it, e.g. {found / 'auth0-backfill-state.json'}.",
        )
    return found


LOG_ID_DIGITS = 56  # Auth0's log_ids: 56 decimal digits (900, the write time, 39 more)


def log_id(value: Any, where: str) -> str:
    """An Auth0 log_id: 56 ASCII digits (str.isdigit() also takes other scripts' digits).
    Checked before any request: Auth0 would answer 400 to anything else."""
    text = nonempty(value, where)
    if text.isascii() and text.isdigit() and len(text) == LOG_ID_DIGITS:
        return text
    if not (text.isascii() and text.isdigit()):
        why = "a log_id is ASCII digits 0-9 only"
    else:
        why = f"it has {len(text):,} digits, and a log_id has {LOG_ID_DIGITS}"
    looks_like_a_date = False
    try:
        parse_when(text, name=where)
        looks_like_a_date = not text.isdigit()
    except ConfigError:
        pass
    raise ConfigError(
        f"{where} {given(text)} is not an Auth0 log_id: {why}.",
        hint="That looks like a date: give it as --from-date."
        if looks_like_a_date
        else "Copy it from the log line or the summary that named it "
        "(e.g. 90020261126075958123...).",
    )


DATASOURCE_NAME_LIMIT = 255


def datasource_name(value: Any, where: str = "TINYBIRD_DATASOURCE") -> str:
    name = nonempty(value, where)
    if (
        not (name.isascii() and name.replace("_", "").isalnum())
        or name[0].isdigit()
        or len(name) > DATASOURCE_NAME_LIMIT
    ):
        raise ConfigError(
            f"{where} {given(name)} is not a Tinybird data source name "
            "(letters, digits and underscores, not starting with a digit, at most "
            f"{DATASOURCE_NAME_LIMIT} characters)."
        )
    return name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(value: str, *, name: str) -> str:
    """``scheme://host[:port]``: https unless the host is loopback (the sandbox, tests)."""
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} {given(value)} is not a host name or an http(s) URL.")
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(
            f"{name} {given(value)} must be only a scheme and host, like "
            f"{parts.scheme}://{parts.netloc} (no path, query or fragment)."
        )
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not carry credentials in the URL.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{name} {given(value)} uses http://, which is accepted only for loopback hosts "
            "(the local sandbox and tests).",
            hint=f"Use https://{parts.netloc}.",
        )
    try:
        parts.port  # noqa: B018 - validates the port number
    except ValueError:
        raise ConfigError(f"{name} {given(value)} has an invalid port.") from None
    _check_host_name(parts.hostname, value, name)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _check_host_name(host: str, value: str, name: str) -> None:
    """A name DNS can hold: at most 253 characters, labels of 1 to 63 (a longer one cannot
    even be looked up)."""
    if is_loopback(host) or _is_ip(host):
        return
    try:
        encoded = host.encode("idna")
    except UnicodeError:
        encoded = b""
    labels = encoded.split(b".") if encoded else []
    if not labels or len(encoded) > 253 or not all(0 < len(label) <= 63 for label in labels):
        raise ConfigError(
            f"{name} {given(value)} is not a host name: a name has at most 253 characters, in "
            "labels of 1 to 63 between dots.",
            hint="Give the host alone, e.g. your-tenant.us.auth0.com or api.tinybird.co.",
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
