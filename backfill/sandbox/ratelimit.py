"""Token bucket, as Auth0 and Tinybird describe their rate limits.

The bucket refills continuously; a request takes one token or is refused. The decision is made at
arrival, before any artificial latency, like a real front door.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BucketDecision:
    allowed: bool
    limit: int
    remaining: int
    seconds_to_next_token: float
    """0 when the bucket is full."""


class TokenBucket:
    def __init__(
        self,
        capacity: int,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or per_second <= 0:
            raise ValueError("a token bucket needs capacity >= 1 and a positive refill rate")
        self.capacity = capacity
        self.per_second = per_second
        self._clock = clock
        self._tokens = float(capacity)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> BucketDecision:
        with self._lock:
            now = self._clock()
            self._tokens = min(
                float(self.capacity), self._tokens + (now - self._updated) * self.per_second
            )
            self._updated = now
            allowed = self._tokens >= 1.0
            if allowed:
                self._tokens -= 1.0
            tokens = self._tokens
        if tokens >= self.capacity:
            wait = 0.0
        else:
            wait = (math.floor(tokens) + 1 - tokens) / self.per_second
        return BucketDecision(allowed, self.capacity, math.floor(tokens), wait)
