"""Auth0 plan profiles: the rate limit that governs `/api/v2/logs` and the log retention.

Numbers from the reference: Free burst 2 at 2/s (1 day kept), Essentials and Professional burst 10
at 100/minute (5 and 10 days), Enterprise burst 50 at 16/s (30 days), Enterprise non-production
burst 10 at 2/s. `unlimited` has no bucket and keeps everything, for memory and speed runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanProfile:
    name: str
    burst: int | None
    per_second: float | None
    retention_days: float | None


PROFILES: dict[str, PlanProfile] = {
    profile.name: profile
    for profile in (
        PlanProfile("free", 2, 2.0, 1),
        PlanProfile("essentials", 10, 100 / 60, 5),
        PlanProfile("professional", 10, 100 / 60, 10),
        PlanProfile("enterprise", 50, 16.0, 30),
        PlanProfile("enterprise-nonprod", 10, 2.0, 30),
        PlanProfile("unlimited", None, None, None),
    )
}


def plan_profile(name: str) -> PlanProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
