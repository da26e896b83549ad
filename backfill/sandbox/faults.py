"""Seeded fault schedule: which requests fail, how, and whether before or after the work.

Kinds: `429` (with the service's rate-limit headers), `500` and `503` (HTML bodies, like a proxy),
`reset` (abortive close, RST), `slow` (answer later than a client timeout) and `truncated` (200
whose body is cut mid-way with a matching Content-Length). A fault "after the work" lets the
service do its job first (e.g. rows are stored) and then loses the answer: that is the case that
makes a retry duplicate data, so both timings must occur.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ALL_KINDS: tuple[str, ...] = ("429", "500", "503", "reset", "slow", "truncated")
_ALWAYS_BEFORE = frozenset({"429"})
_ALWAYS_AFTER = frozenset({"truncated"})


@dataclass(frozen=True)
class Fault:
    kind: str
    after_work: bool


@dataclass(frozen=True)
class FaultSettings:
    rate: float = 0.0
    kinds: tuple[str, ...] = ALL_KINDS
    slow_seconds: float = 35.0
    """Default: longer than a typical 30 s client timeout."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        unknown = set(self.kinds) - set(ALL_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be a non-empty subset of {list(ALL_KINDS)}")
        if self.slow_seconds < 0:
            raise ValueError("slow_seconds must be >= 0")

    def updated(self, payload: Mapping[str, object]) -> FaultSettings:
        """Settings changed by a control payload such as `{"rate": 0.1, "kinds": ["500"]}`."""
        rate = payload.get("rate", self.rate)
        kinds = payload.get("kinds", self.kinds)
        slow = payload.get("slow_seconds", self.slow_seconds)
        if not isinstance(rate, int | float) or not isinstance(slow, int | float):
            raise ValueError("faults.rate and faults.slow_seconds must be numbers")
        if isinstance(kinds, str) or not isinstance(kinds, Iterable):
            raise ValueError("faults.kinds must be a list of kinds")
        return FaultSettings(float(rate), tuple(str(kind) for kind in kinds), float(slow))

    def describe(self) -> dict[str, object]:
        return {"rate": self.rate, "kinds": list(self.kinds), "slow_seconds": self.slow_seconds}


@dataclass
class FaultSchedule:
    settings: FaultSettings
    seed: int
    _random: random.Random = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self) -> Fault | None:
        settings = self.settings
        with self._lock:
            if settings.rate <= 0.0 or self._random.random() >= settings.rate:
                return None
            kind = self._random.choice(settings.kinds)
            coin = self._random.random() < 0.5
        if kind in _ALWAYS_BEFORE:
            return Fault(kind, after_work=False)
        if kind in _ALWAYS_AFTER:
            return Fault(kind, after_work=True)
        return Fault(kind, after_work=coin)
