"""Several tenants in one run: a ``[[tenants]]`` table each, on top of the shared settings.

Shared sections ([run], [batch] ...) and flags apply to every tenant; each tenant names its
domain, data source, state file, and the environment variables that hold its secrets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from backfill.config.parse import (
    datasource_name,
    file_path,
    nonempty,
    normalize_base_url,
    share,
)
from backfill.config.secrets import read_secret
from backfill.config.settings import Settings, load_toml, resolve, tinybird_host_choice
from backfill.errors import ConfigError, given


@dataclass(frozen=True)
class Shard:
    """The ``index``-th of ``count`` disjoint parts of a ``[[tenants]]`` file (``--shard K/N``).

    A tenant's part depends only on its name (a hash of it), so several processes given the
    same file and K = 0 .. N-1 process each tenant exactly once, whatever the file's order, and
    a tenant stays in its part when others are added or removed.
    """

    index: int
    count: int

    def holds(self, name: str) -> bool:
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``K/N``: the K-th of N parts, K from 0."""
    index, slash, count = text.strip().partition("/")
    if not (slash and index.isascii() and index.isdigit() and count.isascii() and count.isdigit()):
        raise ConfigError(f"--shard {given(text)} is not K/N (e.g. 0/3: the first of three parts).")
    shard = Shard(int(index), int(count))
    if shard.count < 1:
        raise ConfigError(f"--shard {text}: N, the number of parts, is at least 1.")
    if shard.index >= shard.count:
        raise ConfigError(
            f"--shard {text}: K runs from 0 to N-1 (0/{shard.count} to "
            f"{shard.count - 1}/{shard.count})."
        )
    return shard


def resolve_tenants(
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config_path: Path | None,
    *,
    only: tuple[str, ...] = (),
    shard: Shard | None = None,
    secrets: bool = True,
) -> list[Settings]:
    """One Settings per tenant of a ``[[tenants]]`` file, or the single one otherwise.

    Shared sections ([run], [batch] ...) and flags apply to every tenant; each tenant names its
    domain, data source, state file, and the environment variables that hold its secrets.
    ``only``: these tenants (``--tenant``); ``shard``: those of its part (``--shard``);
    ``secrets=False``: none read (``status`` reads state files only, wherever it runs).
    """
    base = resolve(flags, env, config_path)
    document = load_toml(config_path) if config_path else {}
    tenants = document.get("tenants")
    if not tenants:
        if only:
            raise ConfigError("--tenant needs a settings file with [[tenants]] tables.")
        if shard is not None:
            raise ConfigError("--shard needs a settings file with [[tenants]] tables.")
        return [base]
    named = [(_name(tenant, index), tenant) for index, tenant in enumerate(tenants)]
    unknown = set(only) - {tenant.get("name") for tenant in tenants}
    if unknown:
        raise ConfigError(
            f"--tenant: no tenant named {', '.join(sorted(unknown))} in {config_path}."
        )
    chosen = [
        (name, tenant)
        for name, tenant in named
        if (not only or tenant.get("name") in only) and (shard is None or shard.holds(name))
    ]
    resolved = [_tenant(base, tenant, env, name, secrets) for name, tenant in chosen]
    _check_distinct(resolved)
    return resolved


def _name(tenant: Mapping[str, Any], index: int) -> str:
    return str(tenant.get("name") or f"tenant{index + 1}")


def _tenant(
    base: Settings, tenant: Mapping[str, Any], env: Mapping[str, str], name: str, secrets: bool
) -> Settings:
    where = f"[[tenants]] {name}"
    if "domain" not in tenant:
        raise ConfigError(f"{where} has no domain.")
    domain = nonempty(tenant["domain"], f"{where} domain")
    base_url = normalize_base_url(domain, name=f"{where} domain")

    def secret(key: str, default_variable: str | None) -> str | None:
        variable = tenant.get(key, default_variable)
        if variable is None or not secrets:
            return None
        value = read_secret(env, nonempty(variable, f"{where} {key}"))
        if value is None and key in tenant:
            raise ConfigError(f"{where}: {key} names ${variable}, which is not set.")
        return value

    client_id = tenant.get("client_id")
    if "client_id_env" in tenant:
        variable = nonempty(tenant["client_id_env"], f"{where} client_id_env")
        client_id = env.get(variable)
        if not client_id and secrets:
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
    rate = tenant.get("rate_share")
    return replace(
        base,
        tenant_name=name,
        rate_share=share(rate, f"{where} rate_share") if rate is not None else base.rate_share,
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
