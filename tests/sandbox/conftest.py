"""Fixtures for the sandbox's own tests: real servers on 127.0.0.1, real HTTP with httpx."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from sandbox_helpers import MakeSandbox

from backfill.sandbox import Sandbox, SandboxConfig

# Small and fast by default; tests that need a plan's limits or retention ask for them.
DEFAULT_CONFIG = SandboxConfig(logs=3_000, days=3.0, seed=42, profile="unlimited")


@pytest.fixture
def make_sandbox() -> Iterator[MakeSandbox]:
    started: list[Sandbox] = []

    def make(**overrides: Any) -> Sandbox:
        sandbox = Sandbox(replace(DEFAULT_CONFIG, **overrides))
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.close()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> Sandbox:
    return make_sandbox()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    # Plain http: no TLS context to build (loading the CA bundle is about 50 ms of CPU a test).
    with httpx.Client(timeout=10.0, verify=False) as client:
        yield client
