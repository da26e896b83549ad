"""Watching the job run: the emulators' counters, the job's `/proc` entry and its state files."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backfill.sandbox import MultiTenantSandbox, Sandbox
from bench.landing import ServedTenant

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.25
LOGS_ROUTE = "/api/v2/logs"


@dataclass
class Sample:
    t: float  # seconds since launch
    logs_ok: int  # /api/v2/logs answers 200 so far, every tenant
    logs_429: int
    records_served: int  # log records Auth0 put in its answers so far
    rows_stored: int  # rows Tinybird acknowledged so far
    rss_mib: float | None  # the job's resident memory now, when it could be read
    job_cpu: float | None = None  # the job's CPU seconds so far (/proc/<pid>/stat)
    threads: int | None = None  # the job's threads now (/proc/<pid>/status)
    sandbox_threads: int = 0  # this process's: the emulators' connection threads, mostly
    checkpointed: int = 0  # tenants whose state file records rows sent


COLUMNS = [
    "t", "logs_200", "logs_429", "records_served", "rows_stored", "job_rss_mib", "job_cpu",
    "job_threads", "sandbox_threads", "tenants_checkpointed",
]  # fmt: skip


class Sampler:
    """Reads the emulators' counters, the job's `/proc` entry and its state files, every 0.25 s,
    from `start` to `stop`."""

    def __init__(
        self,
        sandbox: Sandbox | MultiTenantSandbox,
        tenants: list[ServedTenant],
        launcher_pid: int,
        started: float,
    ) -> None:
        self._sandbox = sandbox
        self._tenants = tenants
        self._launcher_pid = launcher_pid
        self._started = started
        self._job_pid: int | None = None
        self._stop = threading.Event()
        self.samples: list[Sample] = []
        self.first_checkpoint: dict[str, float | None] = {item.name: None for item in tenants}
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """The last sample, once: further calls do nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._take()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._take()

    def _take(self) -> None:
        ok = throttled = served = 0
        for item in self._tenants:
            snapshot = item.auth0.counters.snapshot()
            counts = logs_counts(snapshot)
            ok, throttled = ok + counts.get("200", 0), throttled + counts.get("429", 0)
            served += int(snapshot.get("records_served", 0))  # type: ignore[call-overload]
        now = round(time.monotonic() - self._started, 3)
        self._poll_checkpoints(now)
        status = self._job_status()
        self.samples.append(
            Sample(
                t=now,
                logs_ok=ok,
                logs_429=throttled,
                records_served=served,
                rows_stored=self._sandbox.tinybird.counters.total("rows_stored"),
                rss_mib=_kib_to_mib(status.get("VmRSS")),
                job_cpu=self._job_cpu(),
                threads=status.get("Threads"),
                sandbox_threads=threading.active_count(),
                checkpointed=sum(1 for t in self.first_checkpoint.values() if t is not None),
            )
        )

    def _poll_checkpoints(self, now: float) -> None:
        """The first moment each state file records rows sent (a state file is replaced whole,
        by rename, so a read sees one version or the next)."""
        for item in self._tenants:
            if self.first_checkpoint[item.name] is not None:
                continue
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if int(json.loads(item.state.read_bytes()).get("rows_sent") or 0) > 0:
                    self.first_checkpoint[item.name] = now

    def _job_cpu(self) -> float | None:
        """utime + stime of the job, from /proc: its CPU over any stretch of the run."""
        if self._job_pid is None:
            return None
        try:
            fields = Path(f"/proc/{self._job_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def _job_status(self) -> dict[str, int]:
        """VmRSS (kiB) and Threads of the job: the launcher's child, not the launcher."""
        if self._job_pid is None:
            self._job_pid = job_pid(self._launcher_pid)
            if self._job_pid is None:
                return {}
        try:
            return proc_status(Path(f"/proc/{self._job_pid}/status"), ("VmRSS", "Threads"))
        except (OSError, ValueError):
            return {}


def job_pid(launcher_pid: int) -> int | None:
    """The job's process id: the launcher's one child, once it is spawned."""
    try:
        children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
        return int(children[0]) if children else None
    except (OSError, ValueError):
        return None


def proc_status(path: Path, keys: tuple[str, ...]) -> dict[str, int]:
    """Integer fields of a /proc status-like file (`VmRSS:  1234 kB`, `Threads:  9`)."""
    found: dict[str, int] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        if name in keys:
            found[name] = int(value.split()[0])
    return found


def _kib_to_mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


def logs_counts(snapshot: dict[str, Any]) -> dict[str, int]:
    """Answers to /api/v2/logs by status, from an Auth0 emulator's counters."""
    counts: dict[str, int] = snapshot.get("requests", {}).get(LOGS_ROUTE, {})
    return counts


def merged_stats(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Several emulators' counters added up (nested counts of the same shape)."""
    total: dict[str, Any] = {}
    for snapshot in snapshots:
        _add_into(total, snapshot)
    return total


def _add_into(total: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict):
            _add_into(total.setdefault(key, {}), value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value
