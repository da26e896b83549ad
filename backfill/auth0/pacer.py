"""One pacer shared by every cursor, so the whole run stays inside the tenant's rate limit.

Auth0 rate-limits ``/api/v2/logs`` with a token bucket and reports it on every answer:
``x-ratelimit-limit`` (bucket size), ``x-ratelimit-remaining`` and ``x-ratelimit-reset``. The pacer
keeps its own estimate of the bucket: the server's last word, minus the requests sent since that
the server may not have counted yet, plus the refill since. It learns the refill rate from the
same headers (how much ``remaining`` recovered over a window, given how many requests we made), so
it adapts when other clients share the tenant's budget. The free plan's bucket is the exception:
learning its refill from a bucket of two costs a tenth of its pace for the first tens of seconds,
which is all of a small tenant's run, so it starts from the documented 2/s (``_DOCUMENTED_REFILL``)
until a window or a 429 rules that out. A request leaves only when the estimate holds a token
beyond a small reserve, so the steady state draws no 429.

A share (``--rate-share``, below 1) leaves the rest of the limit to the tenant's own
applications, which spend the same bucket: a request leaves only when the bucket holds, beyond
it, the others' part of its size ((1 - share) x size tokens), and no faster than the share of
the refill (a bucket of its own, share x size deep, refilled at share x rate).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from backfill.http.retry import header, wait_from_reset_epoch


class PacerStopped(Exception):
    """The run is stopping; no more requests."""


@dataclass(frozen=True)
class _Sample:
    at: float  # estimated moment the server counted the request (monotonic clock)
    remaining: int
    seq: int


_MIN_LEARNING_WINDOW = 2.0  # seconds: shorter windows see the refill in too few steps
_MAX_LEARNING_WINDOW = 30.0
_MAX_RESET_WAIT = 60.0
_SPARE_CURSORS = 1.1  # cursors beyond rate x round trip: round trips vary, pages take CPU
_SATURATION_WINDOW = 0.5  # seconds: held back this recently, the limit sets the pace
_PRECISE_TOKENS = 10  # a window this many tokens of refill long gives the rate within a tenth
# Bucket size -> the refill (requests/s) Auth0 documents for it, where one plan alone has that
# size (reference/auth0-logs-api.md): the free plan's 2 and 2/s. Professional and enterprise
# non-production share 10 (100/min, 2/s), so it is learned; enterprise's 50 and 16/s is learned
# too: its bucket's size stands in for the rate when choosing cursors, and taking 16/s at once
# cut the opening to six cursors (the even shape took 0.3 s longer).
_DOCUMENTED_REFILL = {2: 2.0}
# A bucket this small has no token to spare for a guess at when the server counted a request.
_SMALL_BUCKET = 2
_OPENING_PROBES = 2  # requests at once before the first answer: the smallest bucket of any plan


class Pacer:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        reserve: int = 1,
        safety: float = 0.98,
        share: float = 1.0,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._reserve = reserve
        self._safety = safety
        self._changed = asyncio.Event()  # an answer, a forgotten request, a stop
        self._turnstile = asyncio.Lock()
        self._limit: int | None = None
        self._rate: float | None = None
        self._tokens = 1.0
        self._updated = clock()
        self._blocked_until = 0.0
        self._next_seq = 0
        self._in_flight: dict[int, float] = {}
        self._freshest = float("-inf")  # server time of the answer the estimate rests on
        self._last_answer_at = float("-inf")  # when the latest answer arrived (monotonic clock)
        self._reset_at = 0.0  # when the server said tokens are next added (monotonic clock)
        self._samples: deque[_Sample] = deque()  # since the bucket was last full
        self._history: deque[_Sample] = deque()  # the last _MAX_LEARNING_WINDOW seconds
        self._rejected: deque[int] = deque(maxlen=1024)
        self._unlimited = False
        self._stopped = False
        self._round_trip: float | None = None  # seconds, smoothed over recent answers
        self._trip_spread = 0.0  # how much round trips vary (mean deviation, smoothed)
        self._held_at = float("-inf")  # when the limit last held a request back
        self._exact_seen = False  # a window since the bucket was last full gave the rate
        self._learned = False  # a window has measured the refill: the opening burst is over
        self._anchored = False  # the estimate rests on an answer (before: one probe at a time)
        self._documented: float | None = None  # the refill Auth0 documents, until ruled out
        self._share = share
        self._allowance: float | None = None  # our part of the bucket, with a share below 1
        self._allowance_at = clock()
        self.throttled = 0  # 429s, for the summary
        self.waiting = 0  # callers blocked right now: the limit, not the cursors, sets the pace

    # -- what the clients call ------------------------------------------------------------

    async def acquire(self) -> int:
        """Wait until a request may leave; returns a ticket for ``observe``/``forget``.

        Callers queue on a turnstile, so only the one at the head polls the bucket: eight
        cursors waking on every answer and every refill would cost more CPU than the requests.
        """
        self.waiting += 1
        try:
            async with self._turnstile:
                while True:
                    if self._stopped:
                        raise PacerStopped
                    ticket, wait = self._try_acquire()
                    if ticket is not None:
                        return ticket
                    if self._limit is not None:
                        self._held_at = self._clock()
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout=min(wait, 1.0))
        finally:
            self.waiting -= 1

    def observe(self, ticket: int, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer: the server's view of the bucket."""
        self._observe(ticket, status, headers)
        self._changed.set()

    def forget(self, ticket: int) -> None:
        """The request got no answer (network error): it may or may not have been counted."""
        self._in_flight.pop(ticket, None)
        self._changed.set()

    def stop(self) -> None:
        self._stopped = True
        self._changed.set()

    @property
    def saturated(self) -> bool:
        """The rate limit held a request back just now, or let one through with the last
        token there was: more cursors would not read faster."""
        return self._clock() - self._held_at < _SATURATION_WINDOW

    @property
    def limit(self) -> int | None:
        """The bucket's size, once an answer has told it."""
        return self._limit

    @property
    def rate(self) -> float | None:
        """Requests per second the bucket refills, once learned."""
        return self._rate

    @property
    def round_trip(self) -> float | None:
        """Seconds from a request leaving to its answer, smoothed over recent answers."""
        return self._round_trip

    def cursors_needed(self, most: int) -> int:
        """How many requests in flight keep up with the limit, at most ``most``.

        Rate x round trip, with a tenth spare for round trips that vary. Before the rate is
        learned, the bucket's size stands in for it: every Auth0 plan's bucket holds at least
        a second of its refill (free 2 and 2/s, enterprise 50 and 16/s), so that many a second
        is an upper bound. Without a limit or a round trip yet: ``most``.
        """
        rate = self._rate or (float(self._limit) if self._limit is not None else None)
        trip = self._round_trip
        if self._unlimited or rate is None or trip is None:
            return most
        rate *= self._share
        return max(1, min(most, math.ceil(rate * trip * _SPARE_CURSORS)))

    # -- the model --------------------------------------------------

    def _try_acquire(self) -> tuple[int | None, float]:
        """A ticket if a request may leave now, else how long to wait before asking again."""
        now = self._clock()
        if self._unlimited:
            return self._issue(now), 0.0
        if now < self._blocked_until:
            return None, self._blocked_until - now
        if self._limit is None:
            # No answer yet: probes until the first one tells us the limits. Two at once with
            # the whole limit (every plan's bucket holds two: the Log Streams listing and the
            # first page leave together); one with a share, which may be a single request.
            if len(self._in_flight) >= (_OPENING_PROBES if self._share >= 1.0 else 1):
                return None, 0.05
            return self._issue(now), 0.0
        self._refill(now)
        reserve = max(
            self._reserve if self._limit > self._reserve + 1 else 0,
            (1.0 - self._share) * self._limit,  # the tenant's own applications' part
        )
        needed = 1.0 + reserve
        if self._tokens >= needed:
            ours = self._our_part(now)
            if ours > 0:
                self._held_at = now
                return None, ours
            if self._tokens < needed + 1.0:
                self._held_at = now  # the last token there is: the limit sets the pace
            self._tokens -= 1.0
            if self._allowance is not None:
                self._allowance -= 1.0
            return self._issue(now), 0.0
        if self._rate:
            return None, (needed - self._tokens) / (self._rate * self._safety)
        # Rate not learned yet: an answer in flight will tell us more; with none in flight,
        # one probe once the server said tokens are added again.
        if self._in_flight:
            return None, 0.1
        if now >= self._reset_at:
            return self._issue(now), 0.0
        return None, self._reset_at - now

    def _our_part(self, now: float) -> float:
        """Seconds before the share lets another request leave; 0 now (always, without one)."""
        if self._share >= 1.0 or self._limit is None:
            return 0.0
        size = max(1.0, self._share * self._limit)
        refill = self._share * (self._rate or float(self._limit)) * self._safety
        if self._allowance is None:
            self._allowance = size
        self._allowance = min(size, self._allowance + refill * (now - self._allowance_at))
        self._allowance_at = now
        return 0.0 if self._allowance >= 1.0 else (1.0 - self._allowance) / refill

    def _issue(self, now: float) -> int:
        ticket = self._next_seq
        self._next_seq += 1
        self._in_flight[ticket] = now
        return ticket

    def _refill(self, now: float) -> None:
        if self._rate and self._limit is not None:
            self._tokens = min(
                float(self._limit), self._tokens + self._rate * self._safety * (now - self._updated)
            )
        self._updated = now

    def _observe(self, ticket: int, status: int, headers: Mapping[str, str]) -> None:
        sent_at = self._in_flight.pop(ticket, None)
        now = self._clock()
        if sent_at is not None and status != 429:
            trip = now - sent_at
            previous = self._round_trip
            if previous is None:
                self._round_trip, self._trip_spread = trip, trip / 4
            else:  # smoothed as TCP smooths its round trip and that round trip's variation
                self._trip_spread += 0.25 * (abs(trip - previous) - self._trip_spread)
                self._round_trip = previous + 0.125 * (trip - previous)
        last_answer_at, self._last_answer_at = self._last_answer_at, now
        limit = _int(header(headers, "x-ratelimit-limit"))
        remaining = _int(header(headers, "x-ratelimit-remaining"))
        if limit is None or remaining is None:
            if self._limit is None and status < 400:
                self._unlimited = True  # this endpoint reports no limit: nothing to pace
            return
        self._unlimited = False
        if self._limit is None and self._rate is None:
            self._rate = self._documented = _DOCUMENTED_REFILL.get(limit)
        self._limit = limit
        server_at = now if sent_at is None else sent_at + (now - sent_at) / 2
        reset_in = wait_from_reset_epoch(header(headers, "x-ratelimit-reset"), now=self._wall())
        if reset_in is not None:
            self._reset_at = now + min(reset_in, _MAX_RESET_WAIT)
        if status == 429:
            self.throttled += 1
            self._rejected.append(ticket)
            self._tokens = 0.0
            self._updated = now
            self._blocked_until = max(self._blocked_until, self._reset_at)
            if self._rate:
                self._rate *= 0.9  # we overestimated: back off for good, the window re-learns
            self._documented = None  # not all ours (another client spends it too): learn it
            return
        if server_at > self._freshest:
            # The freshest word from the server. Requests sent after this one are not in it.
            # Those sent shortly before may not be either (round trips vary): count them too.
            # Only those sent well before (half a round trip) reached the server first.
            self._freshest = server_at
            settled = sent_at - (now - sent_at) / 2 if sent_at is not None else now
            uncounted = sum(1 for sent in self._in_flight.values() if sent > settled)
            # A small bucket: count no refill since the answer's "remaining" was taken.
            counted_at = now if limit <= _SMALL_BUCKET else server_at
            refill_since = (self._rate or 0.0) * self._safety * (now - counted_at)
            # Never below empty: a request that finds the bucket empty is refused, not owed.
            estimate = max(0.0, min(float(limit), remaining + refill_since - uncounted))
            if not self._learned and sent_at is not None and sent_at < last_answer_at:
                # Before the refill rate is known (the opening burst), answers to requests in
                # flight together arrive in any order, and the middle of a round trip is only
                # a guess at when the server counted one: a stale "remaining" would raise the
                # estimate above the truth. Let such an answer lower it, never raise it.
                self._refill(now)
                estimate = min(estimate, self._tokens)
            elif self._rate and sent_at is not None and not self._in_flight:
                estimate = self._lone_estimate(remaining, sent_at, now)
            self._tokens = estimate
            self._updated = now
            self._anchored = True
        self._learn(_Sample(server_at, remaining, ticket))

    def _lone_estimate(self, remaining: int, sent_at: float, now: float) -> float:
        """The bucket after the answer to the only request in flight: a lone cursor's case
        (a small bucket, or a quiet tenant), where nothing else keeps the limit busy.

        "remaining" is the bucket's floor, and the server counted the request somewhere in its
        round trip: guessing the middle may count refill that was not there yet (a 429), and
        believing only the floor makes every request leave late, up to a token late, until the
        bucket fills and loses refill. Our own count, carried from the last answer, knows the
        fraction as long as the server's word allows it; when it does not, another client spent
        tokens too: then the floor, counted as late as it can have been, is what is sure. And
        while the request was on its way the bucket held its token too: a full bucket lost the
        refill (a request slow to arrive, on a loaded machine), so the count stays a token
        short of full.
        """
        assert self._limit is not None
        floor = float(remaining)  # counted just now, no refill since
        ceiling = remaining + 1.0 + (self._rate or 0.0) * (now - sent_at)  # counted when sent
        self._refill(now)
        carried = self._tokens if self._anchored and self._tokens < ceiling else floor
        return max(floor, min(carried, self._limit - 1.0))

    def _learn(self, sample: _Sample) -> None:
        """Refill rate = (tokens regained + requests counted) / time, over recent windows.

        A window since the bucket was last full is exact. A window across a moment it was full
        undercounts (refill beyond the bucket's size is lost): a lower bound only, so it can
        only raise the estimate. And a full bucket means tokens went unused, so the estimate
        was low: nudge it up; a 429 takes a tenth off again. A documented refill stands until a
        window rules it out (``_DOCUMENTED_REFILL``).
        """
        assert self._limit is not None
        full = sample.remaining >= self._limit - 1
        if full:
            self._samples.clear()  # the bucket was full just before this request
        for window in (self._samples, self._history):
            window.append(sample)
            while len(window) > 2 and sample.at - window[0].at > _MAX_LEARNING_WINDOW:
                window.popleft()
        exact = self._estimate(self._samples)
        lower = self._estimate(self._history)
        self._learned |= exact is not None or lower is not None
        if self._documented is not None:
            # "remaining" is a whole number: a window gives the rate to within a token over
            # it. The documented refill stands until a window rules it out: an exact one
            # either way, one across a full bucket (a lower bound) only upwards.
            exact_span = sample.at - self._samples[0].at
            lower_span = sample.at - self._history[0].at
            long_enough = _PRECISE_TOKENS / self._documented
            if (
                exact is not None
                and exact_span >= long_enough
                and abs(exact - self._documented) * exact_span > 1.0
            ) or (
                lower is not None
                and lower_span >= long_enough
                and (lower - self._documented) * lower_span > 1.0
            ):
                self._documented = None
            else:
                exact = lower = None
        if exact is not None:
            self._rate = exact
            self._exact_seen |= exact * (sample.at - self._samples[0].at) >= _PRECISE_TOKENS
        elif lower is not None:
            self._rate = max(lower, self._rate or 0.0)
        if full and self._rate and self._documented is None:
            # Until a window has shown the exact refill the rate is only a lower bound, and a
            # full bucket means it lost refill: raise it by a tenth, up to the bucket's size a
            # second (every Auth0 bucket holds at least a second of its refill). After, 2%.
            self._rate *= 1.02 if self._exact_seen else 1.1
        if self._rate:
            self._rate = min(self._rate, float(self._limit))

    def _estimate(self, window: deque[_Sample]) -> float | None:
        first, last = window[0], window[-1]
        span = last.at - first.at
        if span < _MIN_LEARNING_WINDOW or last.seq <= first.seq:
            return None
        rejected = sum(1 for seq in self._rejected if first.seq < seq <= last.seq)
        counted = (last.seq - first.seq) - rejected
        refilled = last.remaining - first.remaining + counted
        return refilled / span if refilled > 0 else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None
