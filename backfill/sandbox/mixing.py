"""Stateless 64-bit hashing (splitmix64 finaliser): record i's attributes come from (seed, i) alone,
so any record can be rebuilt on demand, in any order, without storing it."""

from __future__ import annotations

_MASK = (1 << 64) - 1
_UNIT = 2.0**-53


def mix64(*values: int) -> int:
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = ((state ^ (value & _MASK)) * 0xBF58476D1CE4E5B9) & _MASK
        state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & _MASK
        state ^= state >> 31
    return state


def unit(hashed: int) -> float:
    """A float in [0, 1) from a 64-bit hash."""
    return (hashed >> 11) * _UNIT


def zipf_index(size: int, uniform: float) -> int:
    """0..size-1 with P(k) roughly proportional to 1/(k+1): a few values are very common."""
    return min(size - 1, int(size**uniform) - 1) if size > 1 else 0
