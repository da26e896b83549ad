"""Two requests at once, when neither needs the other's answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar, cast

T = TypeVar("T")
U = TypeVar("U")


async def together(first: Awaitable[T], second: Awaitable[U]) -> tuple[T, U]:
    """Both at once; both end before either's error is raised, the first's winning, as when it
    ran first (a sibling left running would outlive the run that failed)."""
    one, two = await asyncio.gather(first, second, return_exceptions=True)
    for outcome in (one, two):
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(T, one), cast(U, two)
