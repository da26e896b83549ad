"""A Log Stream's `pii_config` as the emulated Auth0 applies it: the sandbox's own approximation.

Auth0 documents the settings (`log_fields` out of first_name, last_name, username, email, phone,
address; `method` mask or hash; `algorithm` xxhash) but not which record keys they touch nor
what the output looks like. The sandbox assumes the plainest reading of its log schemas: each
name covers the keys named like it, at any depth of the record (`user_name` and `username` for
username, `email`, `given_name`/`first_name`, `family_name`/`last_name`, `phone_number`/`phone`,
`address`). Every string under such a key is replaced:

- mask: the first character kept, every other one replaced by `*` (`n***********`);
- hash: 16 hex digits of a 64-bit digest, like XXH64's output (blake2b here: xxhash is not a
  dependency, and Auth0's seed and encoding are unknown anyway).

Keys and non-string values stay; empty strings stay empty.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

LOG_FIELDS = ("first_name", "last_name", "username", "email", "phone", "address")
METHODS = ("mask", "hash")
ALGORITHMS = ("xxhash",)
KEYS_BY_FIELD: dict[str, frozenset[str]] = {
    "first_name": frozenset({"given_name", "first_name"}),
    "last_name": frozenset({"family_name", "last_name"}),
    "username": frozenset({"user_name", "username"}),
    "email": frozenset({"email"}),
    "phone": frozenset({"phone_number", "phone"}),
    "address": frozenset({"address"}),
}


@dataclass(frozen=True)
class PiiConfig:
    log_fields: tuple[str, ...]
    method: str = "mask"
    algorithm: str | None = None

    @classmethod
    def parse(cls, payload: object) -> PiiConfig | None:
        """The API's `pii_config` object (None or absent: no obfuscation); ValueError if bad."""
        if payload is None:
            return None
        if not isinstance(payload, dict):
            raise ValueError('"pii_config" must be an object with "log_fields"')
        return cls.of(
            payload.get("log_fields") or (),
            str(payload.get("method", "mask")),
            payload.get("algorithm"),
        )

    @classmethod
    def of(
        cls, log_fields: Iterable[str], method: str = "mask", algorithm: object = None
    ) -> PiiConfig:
        fields = tuple(dict.fromkeys(str(name) for name in log_fields))
        unknown = sorted(set(fields) - set(LOG_FIELDS))
        if not fields or unknown:
            raise ValueError(f"pii log_fields must be some of {list(LOG_FIELDS)}, got {fields}")
        if method not in METHODS:
            raise ValueError(f"pii method must be one of {list(METHODS)}, got {method!r}")
        if algorithm is not None and algorithm not in ALGORITHMS:
            raise ValueError(f"pii algorithm must be one of {list(ALGORITHMS)}")
        if method == "hash" and algorithm is None:
            algorithm = "xxhash"
        return cls(fields, method, None if algorithm is None else str(algorithm))

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"log_fields": list(self.log_fields), "method": self.method}
        if self.algorithm:
            described["algorithm"] = self.algorithm
        return described

    @property
    def keys(self) -> frozenset[str]:
        return frozenset().union(*(KEYS_BY_FIELD[name] for name in self.log_fields))


def obfuscate(record: dict[str, Any], config: PiiConfig) -> dict[str, Any]:
    """A copy of `record` with the strings under the covered keys masked or hashed."""
    result = _walk(record, config.keys, config.method, covered=False)
    assert isinstance(result, dict)
    return result


def obfuscated(value: str, method: str) -> str:
    if not value:
        return value
    if method == "hash":
        return hashlib.blake2b(value.encode("utf-8"), digest_size=8).hexdigest()
    return value[0] + "*" * (len(value) - 1)


def _walk(node: object, keys: frozenset[str], method: str, covered: bool) -> object:
    if isinstance(node, dict):
        return {
            key: _walk(value, keys, method, covered or key in keys) for key, value in node.items()
        }
    if isinstance(node, list):
        return [_walk(item, keys, method, covered) for item in node]
    if covered and isinstance(node, str):
        return obfuscated(node, method)
    return node
