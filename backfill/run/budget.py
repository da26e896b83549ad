"""One memory budget for the whole process: the bytes that batches hold (being filled, waiting
for a sender, in flight; an acknowledged batch keeps no rows while it waits for its commit),
shared fairly by the tenants reading at the time (``[run] memory_budget_mib``).

Each tenant reading may hold an equal share, the budget over the tenants reading now: a tenant
that Tinybird acknowledges slowly fills its own share and waits, and takes nothing from the
others. At its share, a tenant's readers send what they hold and wait for acknowledgements
before reading on. A reader finds the share full only after a page, so the accounting can pass
a tenant's share by what one page per cursor adds: that is its whole slack.

What is counted is what a batch keeps in memory: its rows compressed as they arrive (``Batch``
compresses a chunk at a time), plus the chunk not compressed yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

MIB = 1024 * 1024
RECHECK_SECONDS = 0.5  # a waiting tenant looks again this often: shares grow as tenants finish


class MemoryBudget:
    """The process's budget, and the tenants reading under it."""

    def __init__(self, total_bytes: int) -> None:
        self.total = total_bytes
        self._reading: set[TenantBudget] = set()

    def tenant(self, name: str) -> TenantBudget:
        return TenantBudget(self, name)

    @property
    def share(self) -> int:
        """Each tenant reading may hold this much."""
        return self.total // max(1, len(self._reading))

    def held(self) -> int:
        return sum(tenant.held for tenant in self._reading)

    def _join(self, tenant: TenantBudget) -> None:
        self._reading.add(tenant)

    def _leave(self, tenant: TenantBudget) -> None:
        self._reading.discard(tenant)


class TenantBudget:
    """One tenant's part: what its batches hold, against its share while it reads."""

    def __init__(self, budget: MemoryBudget, name: str) -> None:
        self._budget = budget
        self.name = name
        self.held = 0
        self.most = 0  # the most it held at once: what the tests and the metrics read
        self._released = asyncio.Event()

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """While a pipeline of this tenant runs, it is one of the tenants sharing the budget."""
        self._budget._join(self)
        try:
            yield
        finally:
            self._budget._leave(self)

    @property
    def share(self) -> int:
        return self._budget.share

    def change(self, delta: int) -> None:
        """Bytes taken (positive) or given back (negative)."""
        self.held += delta
        self.most = max(self.most, self.held)
        if delta < 0:
            self._released.set()

    def over(self) -> bool:
        return self.held >= self.share

    async def room(self, outstanding: Callable[[], int]) -> None:
        """Wait until this tenant is under its share again, or has nothing out whose
        acknowledgement would give bytes back (then waiting would never end)."""
        while self.over() and outstanding() > 0:
            self._released.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), timeout=RECHECK_SECONDS)
