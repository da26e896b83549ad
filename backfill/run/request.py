"""What the operator asked for, for one tenant, and the run options it comes to."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from backfill.config.settings import Settings
from backfill.errors import bounded
from backfill.records.batches import BatchLimits
from backfill.run.budget import MemoryBudget
from backfill.run.mirror import Mirror
from backfill.run.options import RunOptions
from backfill.run.stopper import Stopper

if TYPE_CHECKING:  # prometheus_client is imported only when a run is asked for metrics
    from backfill.run.metrics import Metrics

log = logging.getLogger("backfill.job")


@dataclass
class JobRequest:
    """What the operator asked for, for one tenant."""

    settings: Settings
    stopper: Stopper
    restart: bool = False
    restart_from_oldest: bool = False
    dry_run: bool = False
    output: IO[bytes] | None = None
    quiet: bool = False
    progress: str = "auto"  # "auto": a bar on a terminal, else lines; "lines"
    until_stream_start: bool = False
    resume_from_tinybird: bool = False
    skip_existing: bool = False  # send only what the data source (or its quarantine) lacks
    allow_duplicates: bool = False  # a new checkpoint over rows already there: send anyway
    skip_log_ids: tuple[str, ...] = ()  # --skip-log-id: logs to leave out knowingly
    follow: bool = False  # once caught up, keep reading new logs (``run.follow``)
    metrics: Metrics | None = None  # the process's figures, when a monitor reads them
    budget: MemoryBudget | None = None  # the process's memory for batches (``run.budget``)


class Notes(list[str]):
    """What the operator should know about the plan; each is logged as it is made."""

    def add(self, note: str) -> None:
        note = bounded(note)  # a note is a message too: a few lines, whatever it repeats
        self.append(note)
        log.info("note %r", note)


def run_options(
    request: JobRequest,
    mirrored: Mirror,
    *,
    sequential: bool = False,
    max_months: int | None = None,
    cursors_needed: Callable[[int], int] = lambda most: most,
    saturated: Callable[[], bool] = lambda: False,
    horizon: datetime | None = None,
    oldest: dict[str, Any] | None = None,
) -> RunOptions:
    settings = request.settings
    return RunOptions(
        limits=BatchLimits(
            max_rows=settings.max_rows,
            max_bytes=settings.max_bytes,
            max_months=max_months or settings.max_months,
        ),
        concurrency=1 if sequential else settings.concurrency,
        in_flight=1 if sequential else settings.in_flight,
        late_margin=timedelta(seconds=settings.late_margin_seconds),
        keep_type=mirrored.type_filter,
        pii_fields=mirrored.pii_fields or None,
        oldest=oldest,
        restart_from_oldest=request.restart_from_oldest,
        shutdown_grace=settings.shutdown_grace(follow=request.follow),
        resume_settle=settings.resume_settle,
        flush_seconds=settings.flush_seconds,
        first_flush_seconds=settings.first_flush_seconds,
        cursors_needed=cursors_needed,
        saturated=saturated,
        horizon=horizon,
    )
