"""Deadlines for whatever runs in this thread: ``limit(seconds)`` bounds the code inside it, and
nested limits keep the earliest. The HTTP transport (``transport``) reads ``remaining()`` before
every connect, read and write, so a deadline bounds a whole request, not each read; the retry
policy puts its ``max_seconds`` around each attempt, so a request in progress is bounded too.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


class _Deadlines(threading.local):
    def __init__(self) -> None:
        self.stack: list[float] = []


_deadlines = _Deadlines()


@contextlib.contextmanager
def limit(seconds: float) -> Iterator[None]:
    """Within this block, ``remaining()`` counts down from ``seconds`` (or less, when an outer
    limit ends sooner)."""
    stack = _deadlines.stack
    ends = time.monotonic() + max(seconds, 0.0)
    stack.append(min(ends, stack[-1]) if stack else ends)
    try:
        yield
    finally:
        stack.pop()


def remaining() -> float | None:
    """Seconds left before the innermost deadline of this thread; None when there is none."""
    stack = _deadlines.stack
    return stack[-1] - time.monotonic() if stack else None
