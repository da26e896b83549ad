"""The one retry policy both clients share: what is retried, how long we wait, when we give up.

Clients turn every answer into either a result, a permanent ``BackfillError`` (never retried), or a
``TransientError`` (retried here). tenacity is the engine; the policy is ours: jittered exponential
backoff, capped in attempts and in total time, and a wait the server asked for (``Retry-After``,
a rate-limit reset) wins over the computed one, clamped so a bad header cannot park the job.
``max_seconds`` bounds each attempt in progress too (``asyncio.timeout``), not only the waits.

A host that never answered, whose name does not resolve or that refuses connections, is most
likely a wrong setting: one quick retry, then a ``HostUnreachableError`` that names the host, the
system's reason and the setting, instead of minutes of backoff.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import tenacity

from backfill.errors import HostUnreachableError, RetriesExhaustedError

log = logging.getLogger("backfill.http.retry")

T = TypeVar("T")

# HTTP answers that mean "not done, try again": rate limited, or the server failed.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


# An unreachable host is tried this many times in all, this long apart.
UNREACHABLE_ATTEMPTS = 2
UNREACHABLE_PAUSE = 0.5


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or 520 <= status <= 599


@dataclass(frozen=True)
class Unreachable:
    """A host that never answered: its name does not resolve, or it refused the connection."""

    host: str
    reason: str  # the system's words
    setting: str  # where the operator set it, e.g. "AUTH0_DOMAIN (the tenant's domain)"


class TransientError(Exception):
    """A failure worth another attempt.

    ``wait_hint``: seconds the server asked us to wait; ``binding``: it said so as a duration
    (``Retry-After``), so a wait longer than the retry budget ends the retries at once instead of
    a retry the server refuses (a wait computed from a reset time on our clock is clamped
    instead). ``ambiguous``: the request may have taken effect although we saw no success (a lost
    acknowledgement). ``immediate``: retry without waiting (after a token refresh).
    ``network``: no answer came (a failure on the way, not a status), and ``reason`` the
    system's words for it when it has some. ``unreachable``: a host that never answered could not
    be reached (one quick retry only).
    """

    def __init__(
        self,
        description: str,
        *,
        wait_hint: float | None = None,
        binding: bool = False,
        ambiguous: bool = False,
        immediate: bool = False,
        network: bool = False,
        reason: str | None = None,
        unreachable: Unreachable | None = None,
    ) -> None:
        super().__init__(description)
        self.network = network or unreachable is not None
        self.reason = reason or (unreachable.reason if unreachable else None)
        self.description = description
        self.wait_hint = wait_hint
        self.binding = binding and wait_hint is not None
        self.ambiguous = ambiguous
        self.immediate = immediate
        self.unreachable = unreachable


def wait_from_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After``: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(moment.timestamp() - current, 0.0)


def wait_from_reset_epoch(value: str | None, *, now: float | None = None) -> float | None:
    """Auth0's ``x-ratelimit-reset``: UNIX epoch seconds when tokens are added."""
    if not value:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    current = time.time() if now is None else now
    return max(reset - current, 0.0)


def wait_from_reset_seconds(value: str | None) -> float | None:
    """Tinybird's ``X-RateLimit-Reset``: seconds until the window resets."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) else None


@dataclass
class RetryPolicy:
    """Jittered exponential backoff, capped in attempts and total seconds; injectable clock."""

    max_attempts: int = 8
    max_seconds: float = 600.0
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_server_wait: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    retries: int = 0  # counted across calls, for the summary

    def backoff(self, attempt: int) -> float:
        """Equal jitter: half the exponential step fixed, half random."""
        step = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return step / 2 + self.rng.uniform(0.0, step / 2)

    async def call(self, attempt: Callable[[], Awaitable[T]], *, service: str, action: str) -> T:
        started = self.clock()

        def left() -> float:
            return self.max_seconds - (self.clock() - started)

        def stop(state: tenacity.RetryCallState) -> bool:
            error = _transient(state)
            if state.attempt_number >= self.max_attempts:
                return True
            if error.unreachable and state.attempt_number >= UNREACHABLE_ATTEMPTS:
                return True
            if _beyond_budget(error, left()):
                return True  # the server will refuse every retry the budget leaves time for
            return left() <= 0

        def wait(state: tenacity.RetryCallState) -> float:
            error = _transient(state)
            if error.immediate:
                return 0.0
            if error.unreachable:
                return UNREACHABLE_PAUSE
            if error.wait_hint is not None:
                # The server's word wins (clamped when it is a reset time read on our clock),
                # with a little jitter so cursors do not stampede.
                asked = (
                    error.wait_hint if error.binding else min(error.wait_hint, self.max_server_wait)
                )
                chosen = asked + self.rng.uniform(0, 0.25)
            else:
                chosen = self.backoff(state.attempt_number)
            return max(0.0, min(chosen, left()))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.retries += 1
            error = _transient(state)
            pause = float(state.next_action.sleep) if state.next_action else 0.0
            log.warning(
                "retrying service=%s action=%s attempt=%d/%d wait=%.1fs reason=%r",
                service,
                action,
                state.attempt_number + 1,
                self.max_attempts,
                pause,
                error.description,
            )

        async def bounded() -> T:
            # What is left of max_seconds also bounds the attempt in progress.
            try:
                async with asyncio.timeout(max(left(), 0.0)):
                    return await attempt()
            except TimeoutError:
                raise TransientError(
                    f"the attempt outlasted what was left of [retry] max_seconds "
                    f"({self.max_seconds:,.0f}s)",
                    network=True,
                ) from None

        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            stop=stop,
            wait=wait,
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return await retrying(bounded)
        except TransientError as error:
            elapsed = self.clock() - started
            attempts = retrying.statistics.get("attempt_number", "?")
            if error.unreachable is not None:
                raise unreachable_error(service, error.unreachable, attempts) from None
            if _beyond_budget(error, left()):
                raise RetriesExhaustedError(
                    f"{service} answered {error.description} and asks to wait "
                    f"{error.wait_hint:,.0f}s before another try, more than the retry budget "
                    f"has left ({max(left(), 0):,.0f}s of [retry] max_seconds "
                    f"{self.max_seconds:,.0f}s): stopped at once instead of waiting.",
                    hint="Nothing was lost: the checkpoint is at the last acknowledged batch. "
                    "Run the same command again once that wait is over (or raise [retry] "
                    "max_seconds to wait it out).",
                ) from None
            raise RetriesExhaustedError(
                f"{service} kept failing while trying to {action}: {error.description} "
                f"(gave up after {retrying.statistics.get('attempt_number', '?')} attempts "
                f"over {elapsed:.0f}s).",
                hint="Nothing was lost: the checkpoint is at the last acknowledged batch. "
                "Run the same command again later.",
            ) from None


def _beyond_budget(error: TransientError, left: float) -> bool:
    return error.binding and error.wait_hint is not None and error.wait_hint > left


def unreachable_error(service: str, where: Unreachable, attempts: object) -> HostUnreachableError:
    return HostUnreachableError(
        f"{service} at {where.host} cannot be reached: {where.reason} (tried {attempts} times).",
        hint=f"This is most likely a setting: check {where.setting}. If it is right, check "
        "this machine's network (DNS, firewall, HTTPS_PROXY).",
    )


def _transient(state: tenacity.RetryCallState) -> TransientError:
    assert state.outcome is not None
    error = state.outcome.exception()
    assert isinstance(error, TransientError)
    return error
