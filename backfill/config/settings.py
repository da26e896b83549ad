"""Settings: resolved flag > environment > TOML file > default, validated once, secrets kept apart.

Secrets (client secret, tokens) come only from the environment, or from a file named by a
``*_FILE`` variable (as container secrets are mounted); a settings file that holds one is refused.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from backfill.auth0.log_ids import write_time
from backfill.config import parse, settings_file
from backfill.config.secrets import read_secret
from backfill.errors import ConfigError
from backfill.timeutil import utcnow
from backfill.tinybird.region import choose_host

DEFAULT_TINYBIRD_HOST = "https://api.tinybird.co"
DEFAULT_DATASOURCE = "auth0"
DEFAULT_STATE = "auth0-backfill-state.json"
RUN_GRACE, FOLLOW_GRACE = 30.0, 8.0  # seconds appends in flight may finish after a stop
DEFAULT_IMPORT_STATE = "auth0-backfill-import-state.json"


@dataclass(frozen=True)
class Auth0Access:
    """What reading a tenant takes: its URL, the API audience, and a token or credentials."""

    base_url: str
    audience: str
    token: str | None  # AUTH0_TOKEN, issued elsewhere; else the client credentials
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class Declared:
    """Where a setting lives: its TOML section and key, its environment variable, its parser."""

    section: str
    key: str
    env: str | None
    parse: Callable[[Any, str], Any]


def _setting(
    section: str, key: str, parse: Callable[[Any, str], Any], default: Any = None, *, env: str = ""
) -> Any:
    declared = Declared(section, key, env or None, parse)
    return field(default=default, metadata={"setting": declared})


def _secret(variable: str) -> Any:
    """Only from the environment, or from the file ``<variable>_FILE`` names."""
    return field(default=None, repr=False, metadata={"secret": variable})


@dataclass(frozen=True)
class Settings:
    """Every setting, each declared once: its TOML place, its variable, its parser, its default.

    Resolved flag > environment > TOML file > default (``resolve``); flags are keyed by field name.
    """

    auth0_base_url: str | None = _setting("auth0", "domain", parse.base_url, env="AUTH0_DOMAIN")
    auth0_client_id: str | None = _setting(
        "auth0", "client_id", parse.nonempty, env="AUTH0_CLIENT_ID"
    )
    auth0_audience: str | None = _setting("auth0", "audience", parse.nonempty, env="AUTH0_AUDIENCE")
    # The share of the tenant's Management API rate limit the job may take (burst included);
    # the rest is left to the tenant's own applications (``auth0.pacer``).
    rate_share: float = _setting("auth0", "rate_share", parse.share, 1.0)
    tinybird_host: str = _setting(
        "tinybird", "host", parse.base_url, DEFAULT_TINYBIRD_HOST, env="TINYBIRD_HOST"
    )
    datasource: str = _setting(
        "tinybird",
        "datasource",
        parse.datasource_name,
        DEFAULT_DATASOURCE,
        env="TINYBIRD_DATASOURCE",
    )
    state: Path = _setting(
        "run", "state", parse.file_path, Path(DEFAULT_STATE), env="AUTH0_BACKFILL_STATE"
    )
    import_state: Path = _setting(
        "import",
        "state",
        parse.file_path,
        Path(DEFAULT_IMPORT_STATE),
        env="AUTH0_BACKFILL_IMPORT_STATE",
    )
    from_date: datetime | None = _setting("run", "from_date", parse.when)
    from_log_id: str | None = _setting("run", "from_log_id", parse.log_id)
    until_date: datetime | None = _setting("run", "until_date", parse.when)
    types: tuple[str, ...] = _setting("run", "types", parse.codes, ())
    exclude_types: tuple[str, ...] = _setting("run", "exclude_types", parse.codes, ())
    pii: str | None = _setting("run", "pii", parse.choice("drop", "keep"))
    concurrency: int = _setting("run", "concurrency", parse.whole(100), 8)
    tenants_in_flight: int = _setting("run", "tenants_in_flight", parse.whole(10_000), 50)
    late_margin_seconds: float = _setting("run", "late_margin_seconds", parse.positive_float, 60.0)
    log_format: str = _setting("run", "log_format", parse.choice("text", "json"), "text")
    progress_interval: float = _setting("run", "progress_interval", parse.positive_float, 30.0)
    # How long appends in flight may finish after SIGINT/SIGTERM; unset: 30 s, 8 s with
    # --follow (a service is stopped within a supervisor's grace, Kubernetes' 30 s by default).
    shutdown_grace_seconds: float | None = _setting(
        "run", "shutdown_grace_seconds", parse.positive_float
    )
    poll_interval: float = _setting("run", "poll_interval", parse.positive_float, 30.0)
    # The bytes every tenant's batches may hold at once, shared by the tenants reading
    # (``run.budget``): one figure for the process, whatever the number of tenants.
    memory_budget_mib: int = _setting("run", "memory_budget_mib", parse.whole(65536), 64)
    metrics_port: int | None = _setting("run", "metrics_port", parse.port)
    metrics_file: Path | None = _setting("run", "metrics_file", parse.file_path)
    resume_settle: float = _setting("run", "resume_settle_seconds", parse.non_negative_float, 5.0)
    max_rows: int = _setting("batch", "max_rows", parse.whole(10_000_000), 10_000)
    max_bytes: int = _setting("batch", "max_bytes", parse.whole(1 << 30), 8 * 1024 * 1024)
    max_months: int = _setting("batch", "max_months", parse.whole(1200), 2)
    in_flight: int = _setting("batch", "in_flight", parse.whole(100), 8)
    flush_seconds: float = _setting("batch", "flush_seconds", parse.positive_float, 60.0)
    first_flush_seconds: float = _setting(
        "batch", "first_flush_seconds", parse.positive_float, 10.0
    )
    http_timeout: float = _setting("http", "timeout_seconds", parse.positive_float, 30.0)
    retry_attempts: int = _setting("retry", "max_attempts", parse.whole(1000), 8)
    retry_seconds: float = _setting("retry", "max_seconds", parse.positive_float, 600.0)
    auth0_client_secret: str | None = _secret("AUTH0_CLIENT_SECRET")
    auth0_token: str | None = _secret("AUTH0_TOKEN")
    tinybird_token: str | None = _secret("TINYBIRD_TOKEN")
    tinybird_read_token: str | None = _secret("TINYBIRD_READ_TOKEN")
    tenant_name: str | None = None
    # Which Tinybird host, and why: TINYBIRD_HOST when set (with a warning when the token names
    # another region), else the token's region, else the default (``tinybird.region``).
    tinybird_host_configured: str | None = None
    tinybird_host_reason: str = "the default"
    tinybird_host_warning: str | None = None

    def shutdown_grace(self, *, follow: bool) -> float:
        """Seconds appends in flight may finish after a stop (``shutdown_grace_seconds``)."""
        if self.shutdown_grace_seconds is not None:
            return self.shutdown_grace_seconds
        return FOLLOW_GRACE if follow else RUN_GRACE

    @property
    def auth0_domain(self) -> str:
        """The tenant as people write it: host[:port], no scheme."""
        assert self.auth0_base_url is not None
        return urllib.parse.urlsplit(self.auth0_base_url).netloc

    def missing_auth0(self) -> list[str]:
        missing = []
        if not self.auth0_base_url:
            missing.append("AUTH0_DOMAIN (the tenant's domain, e.g. your-tenant.us.auth0.com)")
        if not self.auth0_token:
            if not self.auth0_client_id:
                missing.append("AUTH0_CLIENT_ID (a Machine to Machine application's client id)")
            if not self.auth0_client_secret:
                missing.append("AUTH0_CLIENT_SECRET (that application's client secret)")
        return missing

    def missing_tinybird(self) -> list[str]:
        if self.tinybird_token:
            return []
        return ["TINYBIRD_TOKEN (a token that can append to the data source)"]

    def require(self, *, tinybird: bool) -> None:
        """Every setting a run needs, each missing one named in one error."""
        missing = self.missing_auth0() + (self.missing_tinybird() if tinybird else [])
        if missing:
            raise _missing_error(missing, _AUTH0_TOKEN_ALTERNATIVE if self._no_auth0() else None)

    def _no_auth0(self) -> bool:
        return not self.auth0_token and not (self.auth0_client_id and self.auth0_client_secret)

    def require_auth0(self) -> Auth0Access:
        """The tenant and its credentials; a ConfigError naming every missing one."""
        base_url, token = self.auth0_base_url, self.auth0_token
        client_id, secret = self.auth0_client_id or "", self.auth0_client_secret or ""
        if base_url and (token or (client_id and secret)):
            audience = self.auth0_audience or f"{base_url}/api/v2/"
            return Auth0Access(base_url, audience, token, client_id, secret)
        raise _missing_error(self.missing_auth0(), _AUTH0_TOKEN_ALTERNATIVE)

    def require_tinybird(self) -> str:
        """``TINYBIRD_TOKEN``; a ConfigError naming it when it is not set."""
        if not self.tinybird_token:
            raise _missing_error(self.missing_tinybird(), None)
        return self.tinybird_token


def declared() -> list[tuple[str, Declared]]:
    """Every setting a flag, the environment or the TOML file can give: (field name, where)."""
    return [
        (item.name, item.metadata["setting"])
        for item in fields(Settings)
        if "setting" in item.metadata
    ]


# Secret environment variables (each may instead name a file through <NAME>_FILE), by field.
_SECRET_FIELDS = {
    item.metadata["secret"]: item.name for item in fields(Settings) if "secret" in item.metadata
}
SECRET_VARIABLES = tuple(_SECRET_FIELDS)


_AUTH0_TOKEN_ALTERNATIVE = "or set AUTH0_TOKEN to an already issued Management API token"


def _missing_error(missing: list[str], alternative: str | None) -> ConfigError:
    lines = "\n".join(f"  - {item}" for item in missing)
    tail = f"\n({alternative})" if alternative else ""
    return ConfigError(f"Missing settings, set them in the environment:\n{lines}{tail}")


def load_toml(path: Path) -> dict[str, Any]:
    """The settings file, read and checked against every key ``Settings`` declares."""
    known: dict[str, set[str]] = {}
    for _, where_from in declared():
        known.setdefault(where_from.section, set()).add(where_from.key)
    return settings_file.load(path, known)


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config_path: Path | None,
) -> Settings:
    """Every setting from the first source that has it: flag, environment, file, default."""
    document = load_toml(config_path) if config_path else {}
    values: dict[str, Any] = {}
    # Secrets first: once read, a message repeating one (a token pasted into the wrong variable)
    # hides it.
    for variable, name in _SECRET_FIELDS.items():
        values[name] = read_secret(env, variable)
    for name, where_from in declared():
        where: str
        raw: Any = flags.get(name)
        if raw is not None and raw != ():
            where = "--" + name.replace("_", "-")
        elif where_from.env and env.get(where_from.env):
            raw, where = env[where_from.env], where_from.env
        elif where_from.key in document.get(where_from.section, {}):
            raw = document[where_from.section][where_from.key]
            where = f"[{where_from.section}] {where_from.key} in {config_path}"
        else:
            continue  # the field's default
        values[name] = where_from.parse(raw, where)
    if values.get("auth0_base_url") and not values.get("auth0_audience"):
        values["auth0_audience"] = f"{values['auth0_base_url']}/api/v2/"
    values.update(tinybird_host_choice(values.get("tinybird_host"), values))
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


def tinybird_host_choice(configured: str | None, secrets: Mapping[str, Any]) -> dict[str, Any]:
    """The host fields of Settings: the configured host, else the one the token names."""
    token = secrets.get("tinybird_token") or secrets.get("tinybird_read_token")
    choice = choose_host(configured, token)
    return {
        "tinybird_host": choice.host,
        "tinybird_host_configured": configured,
        "tinybird_host_reason": choice.reason,
        "tinybird_host_warning": choice.warning,
    }


# How far ahead of this machine's clock a start may lie (clocks differ a little).
CLOCK_SKEW = timedelta(minutes=5)


def _check_consistency(settings: Settings) -> None:
    if settings.from_date and settings.from_log_id:
        raise ConfigError("Give --from-date or --from-log-id, not both.")
    _check_start_not_ahead(settings)
    if settings.from_date and settings.until_date and settings.until_date <= settings.from_date:
        raise ConfigError(
            f"--until-date {settings.until_date.isoformat()} is not after --from-date "
            f"{settings.from_date.isoformat()}: the range would be empty.",
            hint="--until-date is exclusive; give a later one.",
        )


def _check_start_not_ahead(settings: Settings) -> None:
    """A start after now would write a checkpoint in the future: every later run with that
    state would copy nothing until then."""
    now = utcnow()
    starts = [("--from-date", settings.from_date)]
    if settings.from_log_id is not None:
        starts.append(("--from-log-id", write_time(settings.from_log_id)))
    for flag, moment in starts:
        if moment is not None and moment > now + CLOCK_SKEW:
            clock = now.isoformat(timespec="seconds")
            raise ConfigError(
                f"{flag} starts at {moment.isoformat()}, after now ({clock} on this machine, "
                f"allowing {CLOCK_SKEW.seconds // 60} minutes of clock skew): there is nothing "
                "to copy yet.",
                hint="Give a start in the past (or check this machine's clock).",
            )


def environment() -> dict[str, str]:
    return dict(os.environ)
