"""Settings: resolved flag > environment > TOML file > default, validated once, secrets kept apart.

Secrets (client secret, tokens) come only from the environment, or from a file named by a
``*_FILE`` variable (as container secrets are mounted); a settings file that holds one is refused.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from backfill.errors import ConfigError
from backfill.timeutil import parse_when

DEFAULT_TINYBIRD_HOST = "https://api.tinybird.co"
DEFAULT_DATASOURCE = "auth0"
DEFAULT_STATE = "auth0-backfill-state.json"

TINYBIRD_REGION_HOSTS = (
    "https://api.tinybird.co",
    "https://api.europe-west2.gcp.tinybird.co",
    "https://api.us-east.tinybird.co",
    "https://api.northamerica-northeast2.gcp.tinybird.co",
    "https://api.eu-central-1.aws.tinybird.co",
    "https://api.eu-west-1.aws.tinybird.co",
    "https://api.us-east.aws.tinybird.co",
    "https://api.us-west-2.aws.tinybird.co",
    "https://api.ap-east.aws.tinybird.co",
    "https://api.ap-southeast-2.aws.tinybird.co",
)

# Secret environment variables; each may instead name a file through <NAME>_FILE.
SECRET_VARIABLES = (
    "AUTH0_CLIENT_SECRET",
    "AUTH0_TOKEN",
    "TINYBIRD_TOKEN",
    "TINYBIRD_READ_TOKEN",
)


@dataclass(frozen=True)
class _Option:
    """One setting: where it lives in the TOML file, its environment variable, how to parse it."""

    name: str
    section: str
    key: str
    env: str | None
    parse: Callable[[Any, str], Any]
    default: Any = None


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be a non-empty string, not {value!r}.")
    return value.strip()


def _positive_int(value: Any, where: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a whole number, not {value!r}.") from None
    if isinstance(value, float) and value != number:
        raise ConfigError(f"{where} must be a whole number, not {value!r}.")
    if number < 1:
        raise ConfigError(f"{where} must be at least 1, not {number}.")
    return number


def _seconds(*, zero_allowed: bool) -> Callable[[Any, str], float]:
    def parse(value: Any, where: str) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number of seconds, not {value!r}.") from None
        if number < 0 or (number == 0 and not zero_allowed):
            bound = "negative" if zero_allowed else "0 or less"
            raise ConfigError(f"{where} must not be {bound}, not {number}.")
        return number

    return parse


_positive_float = _seconds(zero_allowed=False)
_non_negative_float = _seconds(zero_allowed=True)


def _when(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return parse_when(value.isoformat(), name=where)
    if not isinstance(value, str):  # TOML dates arrive as datetime.date
        value = str(value)
    return parse_when(value, name=where)


def _codes(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part for part in value.replace(",", " ").split() if part]
    elif isinstance(value, list | tuple):
        items = [str(part).strip() for part in value if str(part).strip()]
    else:
        raise ConfigError(f"{where} must be a list of event type codes or categories.")
    return tuple(items)


def _choice(*allowed: str) -> Callable[[Any, str], str]:
    def parse(value: Any, where: str) -> str:
        text = _text(value, where)
        if text not in allowed:
            raise ConfigError(f"{where} must be one of {', '.join(allowed)}, not {text!r}.")
        return text

    return parse


_OPTIONS = (
    _Option("auth0_domain", "auth0", "domain", "AUTH0_DOMAIN", _text),
    _Option("auth0_client_id", "auth0", "client_id", "AUTH0_CLIENT_ID", _text),
    _Option("auth0_audience", "auth0", "audience", "AUTH0_AUDIENCE", _text),
    _Option("tinybird_host", "tinybird", "host", "TINYBIRD_HOST", _text, DEFAULT_TINYBIRD_HOST),
    _Option(
        "datasource", "tinybird", "datasource", "TINYBIRD_DATASOURCE", _text, DEFAULT_DATASOURCE
    ),
    _Option("state", "run", "state", "AUTH0_BACKFILL_STATE", _text, DEFAULT_STATE),
    _Option("from_date", "run", "from_date", None, _when),
    _Option("from_log_id", "run", "from_log_id", None, _text),
    _Option("until_date", "run", "until_date", None, _when),
    _Option("types", "run", "types", None, _codes, ()),
    _Option("exclude_types", "run", "exclude_types", None, _codes, ()),
    _Option("concurrency", "run", "concurrency", None, _positive_int, 8),
    _Option("late_margin_seconds", "run", "late_margin_seconds", None, _positive_float, 60.0),
    _Option("log_format", "run", "log_format", None, _choice("text", "json"), "text"),
    _Option("progress_interval", "run", "progress_interval", None, _positive_float, 30.0),
    _Option("max_rows", "batch", "max_rows", None, _positive_int, 10_000),
    _Option("max_bytes", "batch", "max_bytes", None, _positive_int, 8 * 1024 * 1024),
    _Option("max_months", "batch", "max_months", None, _positive_int, 2),
    _Option("in_flight", "batch", "in_flight", None, _positive_int, 4),
    _Option("flush_seconds", "batch", "flush_seconds", None, _positive_float, 60.0),
    _Option("http_timeout", "http", "timeout_seconds", None, _positive_float, 30.0),
    _Option("retry_attempts", "retry", "max_attempts", None, _positive_int, 8),
    _Option("retry_seconds", "retry", "max_seconds", None, _positive_float, 600.0),
    _Option("shutdown_grace", "run", "shutdown_grace_seconds", None, _positive_float, 30.0),
    _Option("resume_settle", "run", "resume_settle_seconds", None, _non_negative_float, 5.0),
)
_SECRET_KEYS = {"client_secret", "token", "read_token", "secret", "password"}
_TENANT_KEYS = {
    "name",
    "domain",
    "audience",
    "client_id",
    "client_id_env",
    "client_secret_env",
    "token_env",
    "tinybird_token_env",
    "tinybird_read_token_env",
    "tinybird_host",
    "datasource",
    "state",
}


@dataclass(frozen=True)
class Settings:
    auth0_base_url: str | None
    auth0_client_id: str | None
    auth0_audience: str | None
    tinybird_host: str
    datasource: str
    state: Path
    from_date: datetime | None
    from_log_id: str | None
    until_date: datetime | None
    types: tuple[str, ...]
    exclude_types: tuple[str, ...]
    concurrency: int
    late_margin_seconds: float
    log_format: str
    progress_interval: float
    max_rows: int
    max_bytes: int
    max_months: int
    in_flight: int
    flush_seconds: float
    http_timeout: float
    retry_attempts: int
    retry_seconds: float
    shutdown_grace: float
    resume_settle: float
    auth0_client_secret: str | None = field(default=None, repr=False)
    auth0_token: str | None = field(default=None, repr=False)
    tinybird_token: str | None = field(default=None, repr=False)
    tinybird_read_token: str | None = field(default=None, repr=False)
    tenant_name: str | None = None

    @property
    def auth0_domain(self) -> str:
        """The tenant as people write it: host[:port], no scheme."""
        assert self.auth0_base_url is not None
        return urllib.parse.urlsplit(self.auth0_base_url).netloc

    def require_auth0(self) -> None:
        missing = []
        if not self.auth0_base_url:
            missing.append("AUTH0_DOMAIN (the tenant's domain, e.g. your-tenant.us.auth0.com)")
        if not self.auth0_token:
            if not self.auth0_client_id:
                missing.append("AUTH0_CLIENT_ID (a Machine to Machine application's client id)")
            if not self.auth0_client_secret:
                missing.append("AUTH0_CLIENT_SECRET (that application's client secret)")
        _raise_missing(missing, "or set AUTH0_TOKEN to an already issued Management API token")

    def require_tinybird(self) -> None:
        if not self.tinybird_token:
            _raise_missing(["TINYBIRD_TOKEN (a token that can append to the data source)"], None)


def _raise_missing(missing: list[str], alternative: str | None) -> None:
    if not missing:
        return
    lines = "\n".join(f"  - {item}" for item in missing)
    tail = f"\n({alternative})" if alternative and len(missing) > 0 else ""
    raise ConfigError(f"Missing settings, set them in the environment:\n{lines}{tail}")


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Settings file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"Settings file {path} is not valid TOML: {error}.") from None
    _check_keys(document, path)
    return document


def _check_keys(document: Mapping[str, Any], path: Path) -> None:
    known: dict[str, set[str]] = {}
    for option in _OPTIONS:
        known.setdefault(option.section, set()).add(option.key)
    problems = []
    for section, body in document.items():
        if section == "tenants":
            problems.extend(_check_tenants(body))
            continue
        if section not in known:
            problems.append(f"unknown section [{section}]{_suggest(section, known)}")
            continue
        if not isinstance(body, dict):
            problems.append(f"[{section}] must be a table")
            continue
        for key in body:
            if key in _SECRET_KEYS:
                problems.append(
                    f"[{section}] {key}: secrets are read only from the environment "
                    "(or a file named by a *_FILE variable), never from the settings file"
                )
            elif key not in known[section]:
                problems.append(f"unknown key [{section}] {key}{_suggest(key, known[section])}")
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"Settings file {path} has problems:\n{lines}")


def _check_tenants(body: Any) -> list[str]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        return ["[[tenants]] must be an array of tables"]
    problems = []
    for index, tenant in enumerate(body):
        label = tenant.get("name", f"#{index + 1}")
        for key in tenant:
            if key in _SECRET_KEYS:
                problems.append(
                    f"[[tenants]] {label}: {key}: name the environment variable that holds it "
                    f"({key}_env), never the secret itself"
                )
            elif key not in _TENANT_KEYS:
                problems.append(
                    f"unknown key [[tenants]] {label}: {key}{_suggest(key, _TENANT_KEYS)}"
                )
    return problems


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from ``NAME``, or from the file ``NAME_FILE`` names; never from anywhere else."""
    value = env.get(name)
    if value:
        return value.strip()
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        text = Path(path).read_text().strip()
    except OSError as error:
        raise ConfigError(
            f"{name}_FILE names {path}, which cannot be read: {error.strerror}."
        ) from None
    if not text:
        raise ConfigError(f"{name}_FILE names {path}, which is empty.")
    return text


def resolve(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config_path: Path | None,
) -> Settings:
    """Every setting from the first source that has it: flag, environment, file, default."""
    document = load_toml(config_path) if config_path else {}
    values: dict[str, Any] = {}
    for option in _OPTIONS:
        where: str
        raw: Any = flags.get(option.name)
        if raw is not None and raw != ():
            where = "--" + option.name.replace("_", "-")
        elif option.env and env.get(option.env):
            raw, where = env[option.env], option.env
        elif option.key in document.get(option.section, {}):
            raw = document[option.section][option.key]
            where = f"[{option.section}] {option.key} in {config_path}"
        else:
            values[option.name] = option.default
            continue
        values[option.name] = option.parse(raw, where)
    return _build(values, env)


def _build(values: dict[str, Any], env: Mapping[str, str]) -> Settings:
    auth0_base = (
        normalize_base_url(values["auth0_domain"], name="AUTH0_DOMAIN")
        if values["auth0_domain"]
        else None
    )
    audience = values["auth0_audience"] or (f"{auth0_base}/api/v2/" if auth0_base else None)
    settings = Settings(
        auth0_base_url=auth0_base,
        auth0_client_id=values["auth0_client_id"],
        auth0_audience=audience,
        tinybird_host=normalize_base_url(values["tinybird_host"], name="TINYBIRD_HOST"),
        datasource=_datasource_name(values["datasource"]),
        state=Path(values["state"]).expanduser(),
        from_date=values["from_date"],
        from_log_id=values["from_log_id"],
        until_date=values["until_date"],
        types=values["types"],
        exclude_types=values["exclude_types"],
        concurrency=values["concurrency"],
        late_margin_seconds=values["late_margin_seconds"],
        log_format=values["log_format"],
        progress_interval=values["progress_interval"],
        max_rows=values["max_rows"],
        max_bytes=values["max_bytes"],
        max_months=values["max_months"],
        in_flight=values["in_flight"],
        flush_seconds=values["flush_seconds"],
        http_timeout=values["http_timeout"],
        retry_attempts=values["retry_attempts"],
        retry_seconds=values["retry_seconds"],
        shutdown_grace=values["shutdown_grace"],
        resume_settle=values["resume_settle"],
        auth0_client_secret=read_secret(env, "AUTH0_CLIENT_SECRET"),
        auth0_token=read_secret(env, "AUTH0_TOKEN"),
        tinybird_token=read_secret(env, "TINYBIRD_TOKEN"),
        tinybird_read_token=read_secret(env, "TINYBIRD_READ_TOKEN"),
    )
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    if settings.from_date and settings.from_log_id:
        raise ConfigError("Give --from-date or --from-log-id, not both.")
    if settings.from_log_id is not None and not settings.from_log_id.isdigit():
        raise ConfigError(
            f"--from-log-id {settings.from_log_id!r} is not an Auth0 log_id (decimal digits)."
        )
    if settings.from_date and settings.until_date and settings.until_date <= settings.from_date:
        raise ConfigError(
            f"--until-date {settings.until_date.isoformat()} is not after --from-date "
            f"{settings.from_date.isoformat()}: the range would be empty.",
            hint="--until-date is exclusive; give a later one.",
        )


def _datasource_name(value: str) -> str:
    if not value.replace("_", "").isalnum() or value[0].isdigit():
        raise ConfigError(
            f"TINYBIRD_DATASOURCE {value!r} is not a Tinybird data source name "
            "(letters, digits and underscores, not starting with a digit)."
        )
    return value


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
        raise ConfigError(f"{name} {value!r} is not a host name or an http(s) URL.")
    if parts.path or parts.query or parts.fragment:
        raise ConfigError(
            f"{name} {value!r} must be only a scheme and host, like "
            f"{parts.scheme}://{parts.netloc} (no path)."
        )
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not carry credentials in the URL.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{name} {value!r} uses http://, which is accepted only for loopback hosts "
            "(the local sandbox and tests).",
            hint=f"Use https://{parts.netloc}.",
        )
    try:
        parts.port  # noqa: B018 - validates the port number
    except ValueError:
        raise ConfigError(f"{name} {value!r} has an invalid port.") from None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def environment() -> dict[str, str]:
    return dict(os.environ)


def resolve_tenants(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config_path: Path | None,
    *,
    only: tuple[str, ...] = (),
) -> list[Settings]:
    """One Settings per tenant of a ``[[tenants]]`` file, or the single one otherwise.

    Shared sections ([run], [batch] ...) and flags apply to every tenant; each tenant names its
    domain, data source, state file, and the environment variables that hold its secrets.
    """
    base = resolve(flags, env, config_path)
    document = load_toml(config_path) if config_path else {}
    tenants = document.get("tenants")
    if not tenants:
        if only:
            raise ConfigError("--tenant needs a settings file with [[tenants]] tables.")
        return [base]
    chosen = [tenant for tenant in tenants if not only or tenant.get("name") in only]
    unknown = set(only) - {tenant.get("name") for tenant in tenants}
    if unknown:
        raise ConfigError(
            f"--tenant: no tenant named {', '.join(sorted(unknown))} in {config_path}."
        )
    resolved = [_tenant(base, tenant, env, index) for index, tenant in enumerate(chosen)]
    _check_distinct(resolved)
    return resolved


def _tenant(
    base: Settings, tenant: Mapping[str, Any], env: Mapping[str, str], index: int
) -> Settings:
    name = str(tenant.get("name") or f"tenant{index + 1}")
    where = f"[[tenants]] {name}"
    if "domain" not in tenant:
        raise ConfigError(f"{where} has no domain.")
    base_url = normalize_base_url(
        _text(tenant["domain"], f"{where} domain"), name=f"{where} domain"
    )

    def secret(key: str, default_variable: str | None) -> str | None:
        variable = tenant.get(key, default_variable)
        if variable is None:
            return None
        value = read_secret(env, _text(variable, f"{where} {key}"))
        if value is None and key in tenant:
            raise ConfigError(f"{where}: {key} names ${variable}, which is not set.")
        return value

    client_id = tenant.get("client_id")
    if "client_id_env" in tenant:
        variable = _text(tenant["client_id_env"], f"{where} client_id_env")
        client_id = env.get(variable)
        if not client_id:
            raise ConfigError(f"{where}: client_id_env names ${variable}, which is not set.")
    datasource = _datasource_name(str(tenant.get("datasource", base.datasource)))
    host = tenant.get("tinybird_host")
    return replace(
        base,
        tenant_name=name,
        auth0_base_url=base_url,
        auth0_client_id=client_id,
        auth0_audience=tenant.get("audience") or f"{base_url}/api/v2/",
        auth0_client_secret=secret("client_secret_env", None),
        auth0_token=secret("token_env", None),
        tinybird_host=normalize_base_url(host, name=f"{where} tinybird_host")
        if host
        else base.tinybird_host,
        tinybird_token=secret("tinybird_token_env", None) or base.tinybird_token,
        tinybird_read_token=secret("tinybird_read_token_env", None) or base.tinybird_read_token,
        datasource=datasource,
        state=Path(str(tenant.get("state") or f"auth0-backfill-state.{name}.json")).expanduser(),
    )


def _check_distinct(tenants: list[Settings]) -> None:
    checks = {
        "state file": [str(item.state) for item in tenants],
        "tenant and data source": [
            f"{item.auth0_base_url} -> {item.tinybird_host} {item.datasource}" for item in tenants
        ],
        "name": [str(item.tenant_name) for item in tenants],
    }
    for label, values in checks.items():
        repeated = sorted({value for value in values if values.count(value) > 1})
        if repeated:
            raise ConfigError(f"[[tenants]] share a {label}: {', '.join(repeated)}.")
