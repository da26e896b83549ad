"""The run's figures for a monitor, through the official Prometheus client (prometheus_client):
served over HTTP while following (``--metrics-port``), or written where batch jobs put theirs,
a node_exporter textfile (``--metrics-file``).

Nothing is counted twice: each figure is read, when scraped, from the object that keeps it (the
pipeline's counts, the pacer, the retry policy, the client's answers, the state), per tenant.
The HTTP server runs in one thread of its own and only reads.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backfill.errors import ConfigError
from backfill.run.figures import TenantFigures
from backfill.timeutil import utcnow

log = logging.getLogger("backfill.metrics")

PREFIX = "auth0_backfill"


@dataclass(eq=False)  # the registry keeps collectors in a set: hashed by identity
class Figures(Collector):
    """Every tenant's figures, as Prometheus metric families."""

    tenants: dict[str, TenantFigures] = field(default_factory=dict)

    def tenant(self, name: str) -> TenantFigures:
        return self.tenants.setdefault(name, TenantFigures(name))

    def collect(self) -> Iterator[Metric]:
        tenant = ["tenant"]
        rows = CounterMetricFamily(
            f"{PREFIX}_rows_delivered",
            "Rows Tinybird acknowledged (quarantined ones included).",
            labels=tenant,
        )
        requests = CounterMetricFamily(
            f"{PREFIX}_requests", "HTTP requests answered, by service.", labels=[*tenant, "service"]
        )
        throttled = CounterMetricFamily(
            f"{PREFIX}_rate_limited",
            "Auth0 answers 429 (the pacer stays below the limit: a rising count means another "
            "client spends the tenant's budget).",
            labels=tenant,
        )
        retries = CounterMetricFamily(
            f"{PREFIX}_retries", "Requests retried after a failure.", labels=tenant
        )
        failures = CounterMetricFamily(
            f"{PREFIX}_poll_failures",
            "Polls of --follow that failed and were tried again after a pause.",
            labels=tenant,
        )
        lag = GaugeMetricFamily(
            f"{PREFIX}_lag_seconds",
            "Now minus the moment up to which every log was read and acknowledged.",
            labels=tenant,
        )
        through = GaugeMetricFamily(
            f"{PREFIX}_caught_up_through_timestamp_seconds",
            "The moment up to which every log was read and acknowledged (UNIX time).",
            labels=tenant,
        )
        held = GaugeMetricFamily(
            f"{PREFIX}_batch_bytes",
            "Bytes the tenant's batches hold now, against its share of [run] memory_budget_mib.",
            labels=tenant,
        )
        poll = GaugeMetricFamily(
            f"{PREFIX}_last_poll_timestamp_seconds",
            "When the last poll (or run) ended (UNIX time).",
            labels=tenant,
        )
        now = utcnow()
        for figures in list(self.tenants.values()):
            label = [figures.name]
            rows.add_metric(label, figures.rows())
            services = figures.services
            if services is not None:
                answers = dict(services.http.answers)
                for service, origin in (
                    ("auth0", figures.auth0_origin),
                    ("tinybird", figures.tinybird_origin),
                ):
                    requests.add_metric([figures.name, service], answers.get(origin, 0))
                throttled.add_metric(label, services.pacer.throttled)
                retries.add_metric(label, services.retry.retries)
            failures.add_metric(label, figures.failures)
            moment = figures.caught_up_through
            if moment is not None:
                lag.add_metric(label, max((now - moment).total_seconds(), 0.0))
                through.add_metric(label, moment.timestamp())
            if figures.last_poll is not None:
                poll.add_metric(label, figures.last_poll)
            if figures.budget is not None:
                held.add_metric(label, figures.budget.held)
        yield from (rows, requests, throttled, retries, failures, lag, through, poll, held)


class Metrics:
    """The registry of a run's figures, and where it shows them."""

    def __init__(self) -> None:
        self.figures = Figures()
        self.registry = CollectorRegistry()
        self.registry.register(self.figures)

    def serve(self, port: int) -> None:
        """Serve ``/metrics`` on every interface at ``port`` (a thread of its own)."""
        try:
            start_http_server(port, registry=self.registry)
        except OSError as error:
            raise ConfigError(
                f"--metrics-port {port} cannot be served: {error.strerror or error}.",
                hint="Pick a free port (another process may hold this one).",
            ) from None
        log.info("metrics serving=:%d path=/metrics", port)

    @staticmethod
    def check_writable(path: Path) -> None:
        """Refused before the run (exit 2), not found unwritable once it is over: the textfile
        is written beside itself and renamed, so its folder must exist and be writable."""
        folder = path.parent if str(path.parent) else Path(".")
        if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(
                f"--metrics-file {path} cannot be written"
                + (
                    ": it is a directory."
                    if path.is_dir()
                    else f": {folder} is not a writable folder."
                ),
                hint="Give a file in a folder that exists and this user can write, such as "
                "node_exporter's --collector.textfile.directory.",
            )

    def write(self, path: Path) -> None:
        """The figures as a Prometheus textfile (node_exporter's textfile collector), written
        atomically."""
        try:
            write_to_textfile(str(path), self.registry)
        except OSError as error:
            log.warning("metrics_file=%s unwritten reason=%r", path, error.strerror or str(error))
