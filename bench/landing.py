"""What landed: every data source against the logs its tenant holds in Auth0's window."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from backfill.sandbox.auth0_server import Auth0Emulator
from backfill.sandbox.generator import Tenant
from backfill.sandbox.tinybird_store import TinybirdStore


@dataclass(frozen=True)
class ServedTenant:
    """One emulated tenant as the bench sees it: its logs, its Auth0, where they go."""

    name: str
    tenant: Tenant
    auth0: Auth0Emulator
    datasource: str
    state: Path


@dataclass
class Landing:
    """What one data source holds against the logs its tenant has in Auth0's window."""

    tenant: str
    expected: int
    rows: int  # rows in the data source and its quarantine
    quarantined: int
    missing: int
    duplicates: int
    unexpected: int

    @property
    def exactly_once(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and self.unexpected == 0


def check_landing(store: TinybirdStore, item: ServedTenant) -> Landing:
    """Every log in Auth0's window (retention, up to now) against the rows of the data source
    and its quarantine (a quarantined row landed: Tinybird holds it, and it is never resent).

    Both sides in log_id order (ids of one length order as numbers; Auth0's increase with the
    tenant's index), walked together: memory stays flat whatever the tenant's size.
    """
    window = item.auth0.visible_now()
    quarantine = f"{item.datasource}_quarantine"
    quarantined = int(store.query(f"SELECT count() FROM `{quarantine}`", "TSV").strip() or 0)
    landed = store.query(
        f"SELECT log_id FROM (SELECT log_id FROM `{item.datasource}` UNION ALL "
        f"SELECT log_id FROM `{quarantine}`) ORDER BY length(log_id), log_id",
        "TSV",
    )
    rows = missing = duplicates = unexpected = 0
    expected = _expected_ids(item.tenant, window)
    wanted = next(expected, None)
    previous: str | None = None
    for line in io.BytesIO(landed):
        log_id = line.rstrip(b"\n").decode()
        rows += 1
        if log_id == previous:
            duplicates += 1
            continue
        while wanted is not None and _order(wanted) < _order(log_id):
            missing += 1
            wanted = next(expected, None)
        if wanted == log_id:
            wanted = next(expected, None)
        else:
            unexpected += 1
        previous = log_id
    while wanted is not None:
        missing += 1
        wanted = next(expected, None)
    return Landing(item.name, len(window), rows, quarantined, missing, duplicates, unexpected)


def _expected_ids(tenant: Tenant, window: range) -> Iterator[str]:
    return (tenant.log_id(index) for index in window)


def _order(log_id: str) -> tuple[int, str]:
    return (len(log_id), log_id)
