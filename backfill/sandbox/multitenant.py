"""Several Auth0 tenants at once, and one Tinybird workspace holding a data source for each.

    with MultiTenantSandbox(SandboxConfig(profile="free", logs=3_000), tenants=40) as sandbox:
        settings = sandbox.write_settings(Path("tenants.toml"), state_dir=Path("state"))
        env = {**os.environ, **sandbox.env()}   # TINYBIRD_*, and each tenant's client secrets
        # auth0-backfill run --config tenants.toml

Each tenant is what a `Sandbox` of the same config would serve, with a seed of its own (so its
logs, credentials, latencies and faults differ from the others'): its own Auth0 emulator on its
own port, with its own token bucket, retention and client credentials. Tinybird is one emulator
(chdb allows one session per process) whose data sources are named `<datasource>_<tenant>`;
its admin token appends to any of them, as a workspace token does. There is no simulated Log
Stream here.

The settings file is the job's `[[tenants]]` format (docs/configuration.md, "Several tenants"):
each table names the domain, the environment variables holding the client id and secret, the
data source and a state file; `env()` holds those variables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from backfill.sandbox.auth0_server import Auth0Emulator
from backfill.sandbox.credentials import Auth0Credentials, TinybirdCredentials
from backfill.sandbox.generator import Tenant
from backfill.sandbox.httpbase import SandboxHTTPServer, Service
from backfill.sandbox.mixing import mix64
from backfill.sandbox.runner import (
    SandboxConfig,
    Served,
    auth0_emulator,
    datasource_schema,
    tinybird_emulator,
)
from backfill.sandbox.timeparse import to_us
from backfill.sandbox.tinybird_store import TinybirdStore


@dataclass(frozen=True)
class TenantEndpoint:
    """One emulated Auth0 tenant and where its logs go."""

    name: str
    seed: int
    datasource: str
    tenant: Tenant
    credentials: Auth0Credentials
    auth0: Auth0Emulator
    auth0_url: str

    @property
    def env_prefix(self) -> str:
        return self.name.upper()

    def state_path(self, state_dir: Path) -> Path:
        return state_dir / f"{self.name}.json"


class MultiTenantSandbox(Served):
    def __init__(self, config: SandboxConfig, tenants: int) -> None:
        if tenants < 1:
            raise ValueError("a multi-tenant sandbox needs at least one tenant")
        if config.stream_from is not None or config.data_dir is not None:
            raise ValueError("stream_from and data_dir are for the single-tenant Sandbox")
        self.config = config
        super().__init__(TinybirdStore(None))
        self.tenants: list[TenantEndpoint] = []
        self.tinybird_credentials = TinybirdCredentials(config.seed, config.datasource)
        try:
            self._start(config, tenants)
        except BaseException:
            self.close()
            raise

    def _start(self, config: SandboxConfig, count: int) -> None:
        self.store.record_raw = config.record_raw
        schema = datasource_schema(config)
        self.tinybird = tinybird_emulator(
            config, self.store, self.tinybird_credentials, self._stopping
        )
        end_us = to_us(config.end) if config.end else None
        servers = []
        width = len(str(count))
        for index in range(count):
            name = f"tenant{index + 1:0{width}d}"
            seed = mix64(config.seed, 0x7E4A47, index)
            tenant = Tenant(seed, config.logs, config.days, end_us, config.shape)
            credentials = Auth0Credentials(seed)
            emulator = auth0_emulator(config, tenant, credentials, seed, self._stopping)
            datasource = f"{config.datasource}_{name}"
            self.store.create_datasource(datasource, schema)
            server = self._serve(emulator)
            emulator.base_url = server.url
            servers.append((name, server))
            self.tenants.append(
                TenantEndpoint(name, seed, datasource, tenant, credentials, emulator, server.url)
            )
        tinybird_server = self._serve(self.tinybird)
        self.tinybird_url = self.tinybird.base_url = tinybird_server.url
        for name, server in servers:
            server.start(f"sandbox-auth0-{name}")
        tinybird_server.start("sandbox-tinybird")

    def _serve(self, service: Service) -> SandboxHTTPServer:
        server = SandboxHTTPServer(self.config.host, 0, service)
        self._servers.append(server)
        return server

    def env(self) -> dict[str, str]:
        """Tinybird's host and token, and each tenant's `<NAME>_AUTH0_CLIENT_ID`/`_SECRET`."""
        variables = {
            "TINYBIRD_HOST": self.tinybird_url,
            "TINYBIRD_TOKEN": self.tinybird_credentials.admin,
        }
        for endpoint in self.tenants:
            client = endpoint.credentials.client
            variables[f"{endpoint.env_prefix}_AUTH0_CLIENT_ID"] = client.client_id
            variables[f"{endpoint.env_prefix}_AUTH0_CLIENT_SECRET"] = client.client_secret
        return variables

    def settings_toml(self, state_dir: Path, concurrency: int | None = None) -> str:
        """The job's settings file: one `[[tenants]]` table per tenant, no secret in it."""
        lines = []
        if concurrency is not None:
            lines += ["[run]", f"concurrency = {concurrency}", ""]
        for endpoint in self.tenants:
            lines += [
                "[[tenants]]",
                f"name = {_toml(endpoint.name)}",
                f"domain = {_toml(endpoint.auth0_url)}",
                f"client_id_env = {_toml(endpoint.env_prefix + '_AUTH0_CLIENT_ID')}",
                f"client_secret_env = {_toml(endpoint.env_prefix + '_AUTH0_CLIENT_SECRET')}",
                f"datasource = {_toml(endpoint.datasource)}",
                f"state = {_toml(str(endpoint.state_path(state_dir)))}",
                "",
            ]
        return "\n".join(lines)

    def write_settings(self, path: Path, state_dir: Path, concurrency: int | None = None) -> Path:
        path.write_text(self.settings_toml(state_dir, concurrency), encoding="utf-8")
        return path


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text)
