"""Thread-safe counters behind the `/__sandbox/stats` control endpoints."""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_route: dict[str, Counter[str]] = {}
        self._totals: Counter[str] = Counter()
        self._groups: dict[str, Counter[str]] = {}

    def request(self, route: str, status: str) -> None:
        with self._lock:
            self._by_route.setdefault(route, Counter())[status] += 1

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._totals[name] += amount

    def add_to(self, group: str, key: str, amount: int = 1) -> None:
        with self._lock:
            self._groups.setdefault(group, Counter())[key] += amount

    def total(self, name: str) -> int:
        with self._lock:
            return self._totals[name]

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            snapshot: dict[str, object] = {
                "requests": {route: dict(counts) for route, counts in self._by_route.items()}
            }
            snapshot.update(dict(self._totals))
            for group, counts in self._groups.items():
                snapshot[group] = dict(counts)
            return snapshot
