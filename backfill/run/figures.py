"""What a monitor reads of one tenant: its live objects (services, the pipeline running now,
its budget, its state) and what accumulates over a follow's polls. ``run.metrics`` shows them
through prometheus_client, imported only when a run is asked for metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backfill.run.budget import TenantBudget
from backfill.run.report import Counts


@dataclass
class TenantFigures:
    """One tenant's live objects, and what accumulates over a follow's polls."""

    name: str
    auth0_origin: str = ""
    tinybird_origin: str = ""
    services: Any = None  # clients.Services, once open
    pipeline: Any = None  # the pipeline running now (its counts grow as it goes)
    done: Counts = field(default_factory=Counts)  # the pipelines' before it (earlier polls)
    polls: int = 0
    failures: int = 0  # transient failures a follow backed off from
    caught_up_through: datetime | None = None
    last_poll: float | None = None  # UNIX time the last poll ended
    state: Any = None  # the run's state (its caught_up_through, kept across runs)
    budget: TenantBudget | None = None  # what its batches hold

    def rows(self) -> int:
        running = self.pipeline.counts.rows_sent if self.pipeline is not None else 0
        return self.done.rows_sent + running

    def counts(self) -> Counts:
        """Every pipeline's counts so far, the running one's included."""
        total = Counts()
        total += self.done
        if self.pipeline is not None:
            total += self.pipeline.counts
        return total

    def pipeline_done(self) -> None:
        """The pipeline's counts join the total; the next poll's start at nought."""
        if self.pipeline is not None:
            self.done += self.pipeline.counts
            self.pipeline = None
