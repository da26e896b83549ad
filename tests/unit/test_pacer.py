"""The pacer in a deterministic simulation: a token-bucket server, cursors with a round trip."""

from __future__ import annotations

import asyncio
import heapq
import math
import random
import time

import pytest

from backfill.auth0.pacer import Pacer, PacerStopped


class Bucket:
    """Auth0's documented behaviour: a token bucket, headers on every answer, 429 when empty."""

    def __init__(self, size: int, rate: float) -> None:
        self.size, self.rate = size, rate
        self.tokens = float(size)
        self.updated = 0.0

    def answer(self, now: float) -> tuple[int, dict[str, str]]:
        self.tokens = min(self.size, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        status = 200
        if self.tokens >= 1:
            self.tokens -= 1
        else:
            status = 429
        missing = 1 - (self.tokens - math.floor(self.tokens))
        headers = {
            "x-ratelimit-limit": str(self.size),
            "x-ratelimit-remaining": str(math.floor(self.tokens)),
            "x-ratelimit-reset": str(math.ceil(now + missing / self.rate)),
        }
        return status, headers


def simulate(
    size: int,
    rate: float,
    *,
    cursors: int = 8,
    latency: float = 0.3,
    seconds: float = 240.0,
    seed: int = 7,
    skewed: bool = False,
    warmup: float = 30.0,
    neighbour: float = 0.0,
    loaded: bool = False,
    share: float = 1.0,
    refused: list[int] | None = None,
) -> tuple[float, float]:
    """(accepted requests/s after warm-up, share of 429s). ``skewed``: the server counts each
    request anywhere in its round trip, not in the middle (so answers arrive out of order).
    ``neighbour``: another client of the tenant spends this many tokens a second. ``loaded``: a
    busy machine, where one request in five leaves up to half a second late. ``share``: the
    pacer's share of the limit; the neighbour's 429s are counted in ``refused``."""
    rng = random.Random(seed)
    clock = [0.0]
    pacer = Pacer(clock=lambda: clock[0], wall=lambda: clock[0], share=share)
    bucket = Bucket(size, rate)
    events: list[tuple[float, int, str, int, int]] = []  # time, order, kind, worker, ticket
    order = 0
    for worker in range(cursors):
        heapq.heappush(events, (0.0, order, "free", worker, -1))
        order += 1
    if neighbour:
        heapq.heappush(events, (1 / neighbour, order, "neighbour", -1, -1))
        order += 1
    accepted_after_warmup = throttled = total = 0
    pending: dict[int, tuple[int, dict[str, str]]] = {}
    while events:
        now, _, kind, worker, ticket = heapq.heappop(events)
        if now > seconds:
            break
        clock[0] = now
        if kind == "free":
            granted, wait = pacer._try_acquire()
            if granted is None:
                heapq.heappush(events, (now + max(wait, 0.001), order, "free", worker, -1))
            else:
                trip = latency * rng.uniform(0.8, 1.2)
                arrive = trip * (rng.uniform(0.05, 0.95) if skewed else 0.5)
                if loaded and rng.random() < 0.2:
                    late = rng.uniform(0.0, 0.5)
                    arrive, trip = arrive + late, trip + late
                heapq.heappush(events, (now + arrive, order, "arrive", worker, granted))
                order += 1
                heapq.heappush(events, (now + trip, order, "answer", worker, granted))
            order += 1
        elif kind == "arrive":
            pending[ticket] = bucket.answer(now)
        elif kind == "neighbour":
            status, _ = bucket.answer(now)
            if refused is not None and status == 429:
                refused.append(1)
            heapq.heappush(events, (now + 1 / neighbour, order, "neighbour", -1, -1))
            order += 1
        else:
            status, headers = pending.pop(ticket)
            pacer.observe(ticket, status, headers)
            total += 1
            if status == 429:
                throttled += 1
            elif now >= warmup:
                accepted_after_warmup += 1
            heapq.heappush(events, (now, order, "free", worker, -1))
            order += 1
    return accepted_after_warmup / (seconds - warmup), throttled / max(total, 1)


@pytest.mark.parametrize(
    ("plan", "size", "rate"),
    [
        ("free", 2, 2.0),
        ("professional", 10, 100 / 60),
        ("enterprise", 50, 16.0),
        ("enterprise-nonprod", 10, 2.0),
    ],
)
def test_reaches_the_ceiling_without_provoking_429s(plan: str, size: int, rate: float) -> None:
    achieved, throttled_share = simulate(size, rate)
    assert achieved >= 0.9 * rate, f"{plan}: {achieved:.2f} req/s of {rate:.2f}"
    assert achieved <= 1.01 * rate
    assert throttled_share <= 0.01, f"{plan}: {throttled_share:.2%} answers were 429"


@pytest.mark.parametrize(
    ("plan", "size", "rate"),
    [("professional", 10, 100 / 60), ("enterprise", 50, 16.0), ("enterprise-nonprod", 10, 2.0)],
)
def test_answers_out_of_order_draw_no_429s(plan: str, size: int, rate: float) -> None:
    # The server counts a request anywhere in its round trip, so answers to requests sent
    # together arrive in any order (stale "remaining" first); seen on the sandbox as 429s in
    # the opening burst of a professional tenant.
    for seed in range(10):
        achieved, throttled_share = simulate(size, rate, seconds=120.0, seed=seed, skewed=True)
        assert throttled_share <= 0.001, f"{plan}, seed {seed}: {throttled_share:.2%} 429s"
        assert achieved >= 0.95 * rate, f"{plan}, seed {seed}: {achieved:.2f} req/s of {rate:.2f}"


def test_a_single_cursor_is_not_slowed_down_when_the_limit_is_far() -> None:
    achieved, throttled_share = simulate(50, 16.0, cursors=1, latency=0.3)
    assert achieved >= 0.9 / 0.3  # one request per round trip
    assert throttled_share == 0


async def test_an_endpoint_without_rate_limit_headers_is_not_paced() -> None:
    pacer = Pacer()
    first = await pacer.acquire()
    pacer.observe(first, 200, {})
    tickets = [await pacer.acquire() for _ in range(50)]
    assert len(set(tickets)) == 50


async def test_waiting_cursors_queue_behind_one_poller_and_all_leave_on_stop() -> None:
    pacer = Pacer()
    first = await pacer.acquire()
    empty = {
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(int(time.time()) + 30),
    }
    pacer.observe(first, 200, empty)
    polls = 0
    try_acquire = pacer._try_acquire

    def counted() -> tuple[int | None, float]:
        nonlocal polls
        polls += 1
        return try_acquire()

    pacer._try_acquire = counted  # type: ignore[method-assign]
    stopped: list[str] = []

    async def cursor(name: str) -> None:
        try:
            await pacer.acquire()
        except PacerStopped:
            stopped.append(name)

    tasks = [asyncio.create_task(cursor(f"c{i}")) for i in range(8)]
    for _ in range(100):  # each waits in turn: a few passes of the event loop
        if pacer.waiting == 8:
            break
        await asyncio.sleep(0)
    assert pacer.saturated and pacer.waiting == 8
    assert polls <= 2, f"{polls} polls of an empty bucket by 8 waiting cursors"
    pacer.stop()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=5)
    assert sorted(stopped) == sorted(f"c{i}" for i in range(8))
    assert pacer.waiting == 0


@pytest.mark.parametrize("skewed", [False, True])
def test_a_lone_cursor_keeps_up_with_a_bucket_of_two(skewed: bool) -> None:
    # The free plan (2, 2/s) read by one cursor (a small tenant): the estimate may count on the
    # refill until its request reaches the server, and learns the rate from a bucket too small
    # for exact windows by raising it when the bucket is found full, up to 2 a second.
    achieved, throttled_share = simulate(2, 2.0, cursors=1, skewed=skewed)
    assert achieved >= 0.95 * 2.0, f"{achieved:.3f} req/s"
    assert throttled_share == 0


def test_a_small_tenant_on_the_free_plan_gets_the_whole_limit_from_its_first_request() -> None:
    # A tenant of a few thousand logs is read in 15 s: learning the refill from "remaining"
    # (a whole number, a bucket of two) would cost a tenth of that. The documented 2/s is
    # taken until a window rules it out, and the fraction of a token "remaining" hides is
    # carried from answer to answer: 2 + 2 x 15 requests could leave, 30 do, none refused.
    for skewed in (False, True):
        achieved, throttled_share = simulate(
            2, 2.0, cursors=1, seconds=15.0, warmup=0.0, skewed=skewed
        )
        assert achieved >= 1.95, f"skewed={skewed}: {achieved:.3f} req/s"
        assert throttled_share == 0


def test_a_request_slow_to_leave_a_loaded_machine_draws_no_429() -> None:
    # Forty tenants in one process on two cores: a request may reach Auth0 half a second after
    # the pacer let it go, and a bucket that was full meanwhile lost that refill.
    for cursors in (1, 2):
        for seed in range(5):
            achieved, throttled_share = simulate(
                2, 2.0, cursors=cursors, seconds=60.0, warmup=0.0, seed=seed, loaded=True
            )
            assert throttled_share == 0, f"{cursors} cursors, seed {seed}: {throttled_share:.1%}"
            assert achieved >= 1.8


def test_another_client_of_the_tenant_leaves_the_rest_of_the_bucket_to_us() -> None:
    achieved, throttled_share = simulate(50, 16.0, seconds=120.0, neighbour=4.0)
    assert achieved == pytest.approx(12.0, abs=0.2)
    assert throttled_share <= 0.001


@pytest.mark.parametrize(
    ("plan", "size", "rate", "neighbour"),
    [("free", 2, 2.0, 0.5), ("professional", 10, 100 / 60, 0.4), ("enterprise", 50, 16.0, 6.0)],
)
def test_a_share_leaves_the_rest_of_the_limit_to_the_tenants_applications(
    plan: str, size: int, rate: float, neighbour: float
) -> None:
    """--rate-share 0.5 on a tenant whose own application calls the Management API all along:
    the application meets no 429, and the job takes at most its half. On the free plan, whose
    refill Auth0 documents, the job keeps most of its half; elsewhere the refill is learned
    from what the others leave, so the half is of that (less than half the ceiling)."""
    for seed in range(3):
        refused: list[int] = []
        achieved, throttled_share = simulate(
            size, rate, seconds=120.0, seed=seed, neighbour=neighbour, share=0.5, refused=refused
        )
        assert not refused, f"{plan}, seed {seed}: the application got {len(refused)} 429s"
        assert throttled_share == 0
        assert achieved <= 0.5 * rate * 1.01, f"{plan}: {achieved:.2f} req/s, more than half"
        least = 0.8 * rate / 2 if plan == "free" else 0.5 * (rate - neighbour) * 0.6
        assert achieved >= least, f"{plan}: {achieved:.2f} req/s"


def test_without_a_share_the_same_application_is_refused() -> None:
    # The figure the share improves on: the job alone paces at the whole limit.
    refused: list[int] = []
    simulate(2, 2.0, seconds=120.0, neighbour=0.5, refused=refused)
    assert refused


def test_two_probes_leave_before_the_first_answer_and_an_empty_bucket_owes_nothing() -> None:
    """The Log Streams listing and the first page leave together (every plan's bucket holds
    two); with a share, one probe. Both answered with "remaining 0" (the server counted both):
    the next request waits a refill, not two."""
    clock = [0.0]
    pacer = Pacer(clock=lambda: clock[0], wall=lambda: clock[0])
    first, _ = pacer._try_acquire()
    second, _ = pacer._try_acquire()
    third, _ = pacer._try_acquire()
    assert first is not None and second is not None and third is None
    shared = Pacer(clock=lambda: clock[0], wall=lambda: clock[0], share=0.5)
    assert shared._try_acquire()[0] is not None and shared._try_acquire()[0] is None

    clock[0] = 0.3
    empty = {"x-ratelimit-limit": "2", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"}
    pacer.observe(second, 200, empty)
    clock[0] = 0.32
    pacer.observe(first, 200, empty)
    ticket, wait = pacer._try_acquire()
    assert ticket is None and wait == pytest.approx(1 / (2 * 0.98), abs=0.02)
