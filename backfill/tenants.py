"""Several tenants in one run: a ``[[tenants]]`` table each, on top of the shared settings.

Shared sections ([run], [batch] ...) and flags apply to every tenant; each tenant names its
domain, data source, state file, and the environment variables that hold its secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from backfill.errors import ConfigError
from backfill.secret_values import read_secret
from backfill.settings import Settings, load_toml, resolve, tinybird_host_choice
from backfill.values import datasource_name, file_path, nonempty, normalize_base_url


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
    domain = nonempty(tenant["domain"], f"{where} domain")
    base_url = normalize_base_url(domain, name=f"{where} domain")

    def secret(key: str, default_variable: str | None) -> str | None:
        variable = tenant.get(key, default_variable)
        if variable is None:
            return None
        value = read_secret(env, nonempty(variable, f"{where} {key}"))
        if value is None and key in tenant:
            raise ConfigError(f"{where}: {key} names ${variable}, which is not set.")
        return value

    client_id = tenant.get("client_id")
    if "client_id_env" in tenant:
        variable = nonempty(tenant["client_id_env"], f"{where} client_id_env")
        client_id = env.get(variable)
        if not client_id:
            raise ConfigError(f"{where}: client_id_env names ${variable}, which is not set.")
    datasource = datasource_name(str(tenant.get("datasource", base.datasource)))
    host = tenant.get("tinybird_host")
    configured = (
        normalize_base_url(host, name=f"{where} tinybird_host")
        if host
        else base.tinybird_host_configured
    )
    token = secret("tinybird_token_env", None) or base.tinybird_token
    read_token = secret("tinybird_read_token_env", None) or base.tinybird_read_token
    host_choice = tinybird_host_choice(
        configured, {"tinybird_token": token, "tinybird_read_token": read_token}
    )
    return replace(
        base,
        tenant_name=name,
        auth0_base_url=base_url,
        auth0_client_id=client_id,
        auth0_audience=tenant.get("audience") or f"{base_url}/api/v2/",
        auth0_client_secret=secret("client_secret_env", None),
        auth0_token=secret("token_env", None),
        tinybird_token=token,
        tinybird_read_token=read_token,
        datasource=datasource,
        state=file_path(
            tenant.get("state") or f"auth0-backfill-state.{name}.json", f"{where} state"
        ),
        **host_choice,
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
