"""Start the whole sandbox in this process: the tenant, both emulators, and the optional stream.

    with Sandbox(SandboxConfig(logs=50_000, profile="enterprise")) as sandbox:
        os.environ.update(sandbox.env())   # AUTH0_DOMAIN, TINYBIRD_HOST ...

Servers run in threads on 127.0.0.1 (ports chosen by the OS unless given) and are ready to
accept connections when the constructor returns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from backfill.sandbox.auth0_server import Auth0Emulator, Auth0Settings
from backfill.sandbox.credentials import Auth0Credentials, TinybirdCredentials
from backfill.sandbox.faults import ALL_KINDS, FaultSchedule, FaultSettings
from backfill.sandbox.generator import Tenant
from backfill.sandbox.httpbase import SandboxHTTPServer, Service
from backfill.sandbox.latency import Latency, LatencyRange
from backfill.sandbox.livestream import LogStreams, StreamSpec
from backfill.sandbox.mixing import mix64
from backfill.sandbox.obfuscation import PiiConfig
from backfill.sandbox.profiles import plan_profile
from backfill.sandbox.timeparse import to_us
from backfill.sandbox.tinybird_server import TinybirdEmulator, TinybirdSettings
from backfill.sandbox.tinybird_store import TinybirdStore
from backfill.tinybird.datafile import Datafile, parse_datafile, seed_datafile_text


@dataclass(frozen=True)
class SandboxConfig:
    profile: str = "enterprise"
    logs: int = 10_000
    days: float = 7.0
    seed: int = 1
    end: datetime | None = None
    """When the generated logs end; default: now, at start."""
    shape: str = "even"
    """How the logs are spread over the days: `even`, `uneven` or `quiet` (`timelines.py`)."""
    retention_days: float | None = None
    """Overrides the profile's retention (free 1, professional 10, enterprise 30 days)."""
    token_ttl: int = 86_400
    auth0_latency: str = "0"
    """Round-trip latency of every Auth0 request: `MS` or `LO-HI` (uniform), milliseconds."""
    tinybird_latency: str = "0"
    """Round-trip latency of every Tinybird request, as above."""
    tinybird_ack_latency: str = "0"
    """Extra wait before a `wait=true` append is acknowledged, as above (e.g. `1000-4000`)."""
    auth0_faults: FaultSettings = field(default_factory=FaultSettings)
    tinybird_faults: FaultSettings = field(default_factory=FaultSettings)
    stream_from: datetime | None = None
    """Simulate a Log Stream live since this instant (its rows are in the data source)."""
    stream_filters: tuple[str, ...] = ()
    """Its category filters (`auth.login.fail` ...); none: it sends every category."""
    stream_pii: tuple[str, ...] = ()
    """The personal data it obfuscates (`email`, `username` ...; see `obfuscation.py`)."""
    stream_pii_method: str = "mask"
    """`mask` or `hash`."""
    stream_status: str = "active"
    """`active`, `paused` or `suspended` (a paused stream delivers nothing until resumed)."""
    stream_paused_at: datetime | None = None
    """A paused or suspended stream stopped then: logs written before it were delivered."""
    streams: tuple[StreamSpec, ...] = ()
    """More streams (other types, other data sources, other filters), after that one."""
    datasource: str = "auth0"
    datasource_file: Path | None = None
    """Another .datasource file for the data source; default: the seed's schema."""
    data_dir: Path | None = None
    """Keep Tinybird's tables on disk here; default: in memory."""
    record_raw: bool = False
    """Keep every appended NDJSON line for `GET /__sandbox/received`."""
    prerender: bool = False
    """Build every record's JSON at start (a record's size per log in memory) so that serving
    pages costs little CPU: for benchmarks of many tenants at once."""
    host: str = "127.0.0.1"
    auth0_port: int = 0
    tinybird_port: int = 0
    max_body_bytes: int = 10 * 1024 * 1024
    requests_per_second: int = 100
    mv_failure_rate: float = 0.0

    @classmethod
    def from_options(
        cls,
        *,
        fault_rate: float = 0.0,
        fault_kinds: str = ",".join(ALL_KINDS),
        slow_seconds: float = 35.0,
        stream_filters: str = "",
        stream_pii: str = "",
        other_streams: tuple[str, ...] = (),
        **settings: Any,
    ) -> SandboxConfig:
        """The configuration ``auth0-backfill sandbox``'s options describe: lists given as
        comma-separated text, the same faults on both emulators, one more stream of each type
        in ``other_streams``. ValueError, naming the option, for what does not go together."""
        kinds = tuple(kind.strip() for kind in fault_kinds.split(",") if kind.strip())
        try:
            faults = FaultSettings(fault_rate, kinds, slow_seconds)
        except ValueError as problem:
            raise ValueError(f"--fault-kinds: {problem}") from None
        others = tuple(
            StreamSpec(
                name=f"{kind} {number}", type=kind, datasource="" if kind == "http" else None
            )
            for number, kind in enumerate(other_streams, 1)
        )
        config = cls(
            auth0_faults=faults,
            tinybird_faults=faults,
            stream_filters=_listed(stream_filters),
            stream_pii=_listed(stream_pii),
            streams=others,
            **settings,
        )
        _stream_specs(config)  # the stream options describe one stream consistently
        return config


def _listed(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _stream_specs(config: SandboxConfig) -> list[StreamSpec]:
    """The streams the configuration describes: `stream_*` (when `stream_from` is set), then
    `streams`."""
    specs = list(config.streams)
    options = (config.stream_filters, config.stream_pii, config.stream_paused_at)
    if config.stream_from is None:
        if any(options) or config.stream_status != "active":
            raise ValueError(
                "--stream-filters, --stream-pii, --stream-status and --stream-paused-at describe "
                "the stream of --stream-from: give it too"
            )
        return specs
    pii = PiiConfig.of(config.stream_pii, config.stream_pii_method) if config.stream_pii else None
    main = StreamSpec(
        status=config.stream_status,
        since=config.stream_from,
        paused_at=config.stream_paused_at,
        filters=config.stream_filters,
        pii=pii,
    )
    return [main.checked(), *specs]


def datasource_schema(config: SandboxConfig) -> Datafile:
    text = (
        config.datasource_file.read_text("utf-8")
        if config.datasource_file
        else seed_datafile_text()
    )
    return parse_datafile(text)


def auth0_emulator(
    config: SandboxConfig,
    tenant: Tenant,
    credentials: Auth0Credentials,
    seed: int,
    stopping: threading.Event,
) -> Auth0Emulator:
    """One tenant's Auth0: its plan's bucket, its retention, faults and latency from `seed`."""
    emulator = Auth0Emulator(
        tenant,
        credentials,
        Auth0Settings(plan_profile(config.profile), config.retention_days, config.token_ttl),
        FaultSchedule(config.auth0_faults, mix64(seed, 0xFA01)),
        Latency(LatencyRange.parse(config.auth0_latency), mix64(seed, 0x1A01)),
        stopping,
    )
    if config.prerender:
        emulator.prerender()
    return emulator


def tinybird_emulator(
    config: SandboxConfig,
    store: TinybirdStore,
    credentials: TinybirdCredentials,
    stopping: threading.Event,
) -> TinybirdEmulator:
    seed = config.seed
    return TinybirdEmulator(
        store,
        credentials,
        TinybirdSettings(config.max_body_bytes, config.requests_per_second, config.mv_failure_rate),
        FaultSchedule(config.tinybird_faults, mix64(seed, 0xFA02)),
        Latency(LatencyRange.parse(config.tinybird_latency), mix64(seed, 0x1A02)),
        Latency(LatencyRange.parse(config.tinybird_ack_latency), mix64(seed, 0x1A03)),
        mix64(seed, 0x422),
        stopping,
    )


class Served:
    """What a sandbox's servers share: started in ``__init__``, stopped once by ``close`` (every
    connection thread ended, the in-memory tables dropped); a context manager."""

    def __init__(self, store: TinybirdStore) -> None:
        self.store = store
        self._stopping = threading.Event()
        self._servers: list[SandboxHTTPServer] = []
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        for server in self._servers:
            server.close()
        self._servers = []
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Sandbox(Served):
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config = config or SandboxConfig()
        self.tenant = Tenant(
            config.seed,
            config.logs,
            config.days,
            to_us(config.end) if config.end else None,
            config.shape,
        )
        self.auth0_credentials = Auth0Credentials(config.seed)
        self.tinybird_credentials = TinybirdCredentials(config.seed, config.datasource)
        super().__init__(TinybirdStore(config.data_dir))  # after what may fail: no store left open
        try:
            self._start(config)
        except BaseException:
            self.close()
            raise

    def _start(self, config: SandboxConfig) -> None:
        seed = config.seed
        self.store.record_raw = config.record_raw
        self.store.create_datasource(config.datasource, datasource_schema(config))
        self.auth0 = auth0_emulator(
            config, self.tenant, self.auth0_credentials, seed, self._stopping
        )
        self.tinybird = tinybird_emulator(
            config, self.store, self.tinybird_credentials, self._stopping
        )
        auth0_server = self._serve(self.auth0, config.auth0_port)
        tinybird_server = self._serve(self.tinybird, config.tinybird_port)
        self.auth0_url = self.auth0.base_url = auth0_server.url
        self.tinybird_url = self.tinybird.base_url = tinybird_server.url
        self.streams = LogStreams(
            self.tenant,
            self.store,
            config.datasource,
            self.auth0.visible_now,
            self.tinybird.counters,
        )
        self.streams.endpoint = self._stream_endpoint
        self.auth0.streams = self.tinybird.streams = self.streams
        for spec in _stream_specs(config):
            self.streams.add(spec)
        auth0_server.start("sandbox-auth0")
        tinybird_server.start("sandbox-tinybird")

    def _stream_endpoint(self, datasource: str) -> str:
        """The Events API URL an http stream posts to, the token in it as the seed's guide has
        users write it (a secret: the job must never log it)."""
        credentials = self.tinybird_credentials
        token = credentials.append if datasource == self.config.datasource else credentials.admin
        return f"{self.tinybird_url}/v0/events?name={datasource}&token={token}"

    def _serve(self, service: Service, port: int) -> SandboxHTTPServer:
        server = SandboxHTTPServer(self.config.host, port, service)
        self._servers.append(server)
        return server

    def env(self) -> dict[str, str]:
        """The job's environment, pointing it at this sandbox."""
        return {
            "AUTH0_DOMAIN": self.auth0_url,
            "AUTH0_CLIENT_ID": self.auth0_credentials.client.client_id,
            "AUTH0_CLIENT_SECRET": self.auth0_credentials.client.client_secret,
            "TINYBIRD_HOST": self.tinybird_url,
            "TINYBIRD_TOKEN": self.tinybird_credentials.admin,
            "TINYBIRD_DATASOURCE": self.config.datasource,
        }

    def extras(self) -> dict[str, str]:
        """The other credentials, for tests of refusals (403, 404) and least-privilege runs."""
        return {
            "SANDBOX_AUTH0_URL": self.auth0_url,
            "SANDBOX_TINYBIRD_URL": self.tinybird_url,
            "SANDBOX_AUTH0_LIMITED_CLIENT_ID": self.auth0_credentials.limited_client.client_id,
            "SANDBOX_AUTH0_LIMITED_CLIENT_SECRET": (
                self.auth0_credentials.limited_client.client_secret
            ),
            "SANDBOX_TINYBIRD_APPEND_TOKEN": self.tinybird_credentials.append,
            "SANDBOX_TINYBIRD_READ_TOKEN": self.tinybird_credentials.read,
            "SANDBOX_TINYBIRD_OTHER_REGION_TOKEN": self.tinybird_credentials.other_region,
        }
