from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest

from backfill.errors import HostUnreachableError, RetriesExhaustedError
from backfill.http.retry import (
    RetryPolicy,
    TransientError,
    Unreachable,
    wait_from_reset_epoch,
    wait_from_reset_seconds,
    wait_from_retry_after,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def policy(clock: Clock, **kwargs: object) -> RetryPolicy:
    return RetryPolicy(sleep=clock.sleep, clock=clock, rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


def failing(times: int, error: TransientError) -> object:
    calls = {"n": 0}

    async def attempt() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return "ok"

    attempt.calls = calls  # type: ignore[attr-defined]
    return attempt


def test_retries_transient_errors_with_growing_jittered_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    attempt = failing(4, TransientError("503"))
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(policy(clock).call(attempt, service="X", action="do")) == "ok"  # type: ignore[arg-type]
    assert len(clock.sleeps) == 4
    steps = [0.5, 1.0, 2.0, 4.0]
    for waited, step in zip(clock.sleeps, steps, strict=True):
        assert step / 2 <= waited <= step
    # Each retry is logged exactly once.
    assert sum("retrying" in record.message for record in caplog.records) == 4


def test_the_server_wait_wins_but_is_clamped() -> None:
    clock = Clock()
    asyncio.run(
        policy(clock).call(
            failing(1, TransientError("429", wait_hint=7.0)), service="X", action="do"
        )
    )  # type: ignore[arg-type]
    assert 7.0 <= clock.sleeps[0] <= 7.25
    clock = Clock()
    asyncio.run(
        policy(clock, max_server_wait=20.0).call(
            failing(1, TransientError("429", wait_hint=10_000.0)),
            service="X",
            action="do",  # type: ignore[arg-type]
        )
    )
    assert clock.sleeps[0] <= 20.25


def test_gives_up_after_max_attempts_with_a_clear_error() -> None:
    clock = Clock()
    attempt = failing(100, TransientError("500 Internal Server Error"))
    with pytest.raises(RetriesExhaustedError, match="500 Internal Server Error") as caught:
        asyncio.run(
            policy(clock, max_attempts=3).call(attempt, service="Tinybird", action="append")
        )  # type: ignore[arg-type]
    assert attempt.calls["n"] == 3  # type: ignore[attr-defined]
    assert "checkpoint is at the last acknowledged batch" in str(caught.value)


def test_gives_up_after_max_seconds() -> None:
    clock = Clock()
    attempt = failing(100, TransientError("reset", wait_hint=30.0))
    with pytest.raises(RetriesExhaustedError):
        asyncio.run(
            policy(clock, max_attempts=1000, max_seconds=100.0).call(
                attempt, service="X", action="do"
            )
        )  # type: ignore[arg-type]
    assert clock.now <= 100.0 + 0.01
    assert attempt.calls["n"] <= 5  # type: ignore[attr-defined]


def test_immediate_retry_does_not_sleep() -> None:
    clock = Clock()
    asyncio.run(
        policy(clock).call(
            failing(1, TransientError("401", immediate=True)), service="X", action="do"
        )
    )  # type: ignore[arg-type]
    assert clock.sleeps == [0.0]


def test_permanent_errors_are_not_retried() -> None:
    clock = Clock()
    calls = []

    async def attempt() -> None:
        calls.append(1)
        raise ValueError("permanent")

    with pytest.raises(ValueError):
        asyncio.run(policy(clock).call(attempt, service="X", action="do"))
    assert calls == [1] and clock.sleeps == []


def test_header_parsers() -> None:
    assert wait_from_retry_after("12") == 12.0
    assert wait_from_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0) == 5.0
    assert wait_from_retry_after("soon") is None
    assert wait_from_reset_epoch("1000", now=990.0) == 10.0
    assert wait_from_reset_epoch("900", now=990.0) == 0.0
    assert wait_from_reset_seconds("3") == 3.0
    assert wait_from_reset_seconds(None) is None


def test_an_unreachable_host_gets_one_quick_retry_then_names_the_setting() -> None:
    clock = Clock()
    where = Unreachable(
        "tenant.invalid", "the name does not resolve (Name or service not known)", "AUTH0_DOMAIN"
    )
    attempt = failing(10, TransientError("ConnectError", unreachable=where))
    with pytest.raises(HostUnreachableError) as raised:
        asyncio.run(policy(clock).call(attempt, service="Auth0", action="read logs"))  # type: ignore[arg-type]
    assert attempt.calls["n"] == 2 and clock.sleeps == [0.5]  # type: ignore[attr-defined]
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert "Auth0 at tenant.invalid cannot be reached: the name does not resolve" in message
    assert "check AUTH0_DOMAIN" in message and "again later" not in message


def test_max_seconds_bounds_the_attempt_in_progress() -> None:
    async def hangs() -> str:
        await asyncio.sleep(30)
        return "never"

    started = time.monotonic()
    with pytest.raises(RetriesExhaustedError, match="max_seconds"):
        asyncio.run(RetryPolicy(max_seconds=0.3).call(hangs, service="X", action="do"))
    assert time.monotonic() - started < 2.0, "the attempt in progress was not cut"
