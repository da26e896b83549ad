"""Artificial round-trip latency: a fixed delay or a uniform range, in milliseconds."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyRange:
    low_ms: float = 0.0
    high_ms: float = 0.0

    @classmethod
    def parse(cls, text: str | float | int) -> LatencyRange:
        """`250` (fixed) or `100-400` (uniform). Raises ValueError."""
        if isinstance(text, int | float):
            return cls(float(text), float(text))
        low_text, _, high_text = text.strip().partition("-")
        low = float(low_text)
        high = float(high_text) if high_text else low
        if low < 0 or high < low:
            raise ValueError(f"latency must be MS or LO-HI with 0 <= LO <= HI, got {text!r}")
        return cls(low, high)

    def describe(self) -> str:
        if self.low_ms == self.high_ms:
            return f"{self.low_ms:g}"
        return f"{self.low_ms:g}-{self.high_ms:g}"


class Latency:
    """Draws delays (seconds) from a seeded generator; the range can change at run time."""

    def __init__(self, spec: LatencyRange, seed: int) -> None:
        self.spec = spec
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def sample(self) -> float:
        spec = self.spec
        if spec.high_ms <= 0:
            return 0.0
        with self._lock:
            millis = self._random.uniform(spec.low_ms, spec.high_ms)
        return millis / 1000.0
