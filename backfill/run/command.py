"""What ``run`` was asked, for every tenant at once (``RunCommand``): its flags, checked once for
what goes with what (``check``), then turned into the settings flags each tenant resolves and one
``JobRequest`` per tenant. Pure: the command line builds it from its options; tests build it
directly, without a subprocess."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from backfill.config.parse import log_id
from backfill.config.settings import Settings
from backfill.errors import UsageError
from backfill.run.budget import MemoryBudget
from backfill.run.request import JobRequest
from backfill.run.stopper import Stopper

if TYPE_CHECKING:  # prometheus_client is imported only when a run is asked for metrics
    from backfill.run.metrics import Metrics


@dataclass(frozen=True)
class RunCommand:
    config_path: Path | None = None
    from_date: str | None = None
    from_log_id: str | None = None
    until_date: str | None = None
    state: Path | None = None
    restart: bool = False
    restart_from_oldest: bool = False
    types: str | None = None
    exclude_types: str | None = None
    dry_run: bool = False
    output: Path | None = None
    concurrency: int | None = None
    skip_log_ids: tuple[str, ...] = ()
    until_stream_start: bool = False
    resume_from_tinybird: bool = False
    pii: str | None = None
    skip_existing: bool = False
    allow_duplicates: bool = False
    tenants: tuple[str, ...] = ()
    shard: str | None = None
    as_json: bool = False
    quiet: bool = False
    log_format: str | None = None
    follow: bool = False
    poll_interval: float | None = None
    rate_share: float | None = None
    metrics_port: int | None = None
    metrics_file: Path | None = None

    def check(self) -> None:
        """Refuse flags that do not go together, each pair with the reason (``UsageError``:
        exit 2, before anything is read)."""
        if self.output is not None and not self.dry_run:
            raise UsageError("--output goes with --dry-run.")
        if self.until_stream_start and (self.until_date or self.resume_from_tinybird):
            raise UsageError(
                "--until-stream-start sets the end itself: not with --until-date or "
                "--resume-from-tinybird."
            )
        if self.skip_existing and self.allow_duplicates:
            raise UsageError("--skip-existing and --allow-duplicates exclude each other.")
        if self.until_stream_start and self.dry_run:
            raise UsageError(
                "--until-stream-start asks Tinybird where the stream began, and --dry-run does "
                "not talk to Tinybird: preview with --until-date set to that moment instead."
            )
        if self.resume_from_tinybird and (self.restart or self.dry_run):
            raise UsageError(
                "--resume-from-tinybird keeps no checkpoint to restart and sends for real: not "
                "with --restart or --dry-run."
            )
        if self.follow:
            self._check_follow()
        elif self.poll_interval is not None or self.metrics_port is not None:
            flag = "--poll-interval" if self.poll_interval is not None else "--metrics-port"
            raise UsageError(f"{flag} goes with --follow (--metrics-file is for a run).")
        self.skipped()  # each --skip-log-id is a log_id

    def _check_follow(self) -> None:
        """--follow goes on for good from a state file: nothing that ends it, or keeps none."""
        for given, flag, why in (
            (self.until_date, "--until-date", "it goes on as logs come: an end would stop it"),
            (self.until_stream_start, "--until-stream-start", "it would end where a stream begins"),
            (self.dry_run, "--dry-run", "it sends as logs come"),
            (
                self.resume_from_tinybird,
                "--resume-from-tinybird",
                "it keeps its place in a state file",
            ),
        ):
            if given:
                raise UsageError(f"--follow is not for {flag}: {why}.")

    def skipped(self) -> tuple[str, ...]:
        return tuple(log_id(value, "--skip-log-id") for value in self.skip_log_ids)

    def settings_flags(self) -> dict[str, Any]:
        """The flags that are settings (flag > environment > file > default), by field name."""
        return {
            "from_date": self.from_date,
            "from_log_id": self.from_log_id,
            "until_date": self.until_date,
            "state": str(self.state) if self.state else None,
            "types": self.types,
            "exclude_types": self.exclude_types,
            "concurrency": self.concurrency,
            "log_format": self.log_format,
            "pii": self.pii,
            "poll_interval": self.poll_interval,
            "rate_share": self.rate_share,
            "metrics_port": self.metrics_port,
            "metrics_file": str(self.metrics_file) if self.metrics_file else None,
        }

    def check_tenants(self, everyone: list[Settings]) -> bool:
        """Whether the run is one tenant of no tenants file (``single``); flags that need one
        tenant are refused for several."""
        single = len(everyone) == 1 and everyone[0].tenant_name is None
        if self.dry_run and not single:
            raise UsageError("--dry-run works on one tenant: pick it with --tenant.")
        return single

    def job_requests(
        self,
        everyone: list[Settings],
        stoppers: list[Stopper],
        output: IO[bytes] | None,
        *,
        single: bool,
        metrics: Metrics | None = None,
        budget: MemoryBudget | None = None,
    ) -> list[JobRequest]:
        skipped = self.skipped()
        return [
            JobRequest(
                settings=settings,
                stopper=stopper,
                restart=self.restart,
                restart_from_oldest=self.restart_from_oldest,
                dry_run=self.dry_run,
                output=output,
                quiet=self.quiet,
                progress="auto" if single else "lines",
                until_stream_start=self.until_stream_start,
                resume_from_tinybird=self.resume_from_tinybird,
                skip_existing=self.skip_existing,
                allow_duplicates=self.allow_duplicates,
                skip_log_ids=skipped,
                follow=self.follow,
                metrics=metrics,
                budget=budget,
            )
            for settings, stopper in zip(everyone, stoppers, strict=True)
        ]
