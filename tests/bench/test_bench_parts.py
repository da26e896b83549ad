"""The benchmark's own logic: the landing check, the ceiling with its burst, what runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from backfill.sandbox import Sandbox, SandboxConfig
from bench.landing import ServedTenant, check_landing
from bench.run import parse_args
from bench.shapes import SHAPES, ideal_seconds


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(logs=400, days=1.0, seed=31, profile="unlimited")) as running:
        yield running


def served(sandbox: Sandbox) -> ServedTenant:
    return ServedTenant("t", sandbox.tenant, sandbox.auth0, "auth0", Path("unused.json"))


def envelope(sandbox: Sandbox, index: int) -> bytes:
    record = sandbox.tenant.record(index)
    if isinstance(record.get("scope"), str):  # as the job sends it: an array
        record["scope"] = record["scope"].split()
    return json.dumps({"log_id": record["log_id"], "data": record}).encode()


def test_every_log_once_is_exactly_once_quarantine_included(sandbox: Sandbox) -> None:
    lines = [envelope(sandbox, index) for index in range(400)]
    sandbox.store.append_lines("auth0", lines, "all")
    landing = check_landing(sandbox.store, served(sandbox))
    assert landing.quarantined > 0  # auth0_client arrays: landed, in the quarantine
    assert (landing.expected, landing.rows) == (400, 400)
    assert landing.exactly_once


def test_a_missing_a_duplicated_and_a_foreign_row_are_each_found(sandbox: Sandbox) -> None:
    lines = [envelope(sandbox, index) for index in range(400) if index != 123]
    lines.append(envelope(sandbox, 7))
    foreign = sandbox.tenant.record(0)
    foreign["log_id"] = "9" * 56
    lines.append(json.dumps({"log_id": foreign["log_id"], "data": foreign}).encode())
    sandbox.store.append_lines("auth0", lines, "flawed")
    landing = check_landing(sandbox.store, served(sandbox))
    assert (landing.missing, landing.duplicates, landing.unexpected) == (1, 1, 1)
    assert not landing.exactly_once


def test_the_ideal_time_counts_the_burst() -> None:
    # The uneven tenant: 600 pages at burst 50, 16/s, 300 ms round trip.
    assert ideal_seconds(600, 50, 16.0) == pytest.approx(34.675)
    assert ideal_seconds(30, 50, 16.0) == pytest.approx(0.3)  # all within the burst
    assert SHAPES["tenants"].tenants == 40 and SHAPES["quiet"].profile == "free"


def test_plans_and_shapes_run_by_default_and_only_what_is_asked_otherwise() -> None:
    everything = parse_args([])
    assert everything.plan_names == ["free", "professional", "enterprise"]
    assert everything.shape_names == ["even", "uneven", "quiet", "tenants"]
    one = parse_args(["--shapes", "uneven"])
    assert (one.plan_names, one.shape_names) == ([], ["uneven"])
    plans = parse_args(["--profiles", "free", "--shapes", "none"])
    assert (plans.plan_names, plans.shape_names) == (["free"], [])
    with pytest.raises(SystemExit):
        parse_args(["--shapes", "spiky"])


def test_uneven_runs_on_three_seeds_unless_told_otherwise() -> None:
    assert [run.label for run in SHAPES["uneven"].runs(1.0, None, None)] == [
        "uneven (seed 1)", "uneven (seed 2)", "uneven (seed 3)"
    ]  # fmt: skip
    quick = SHAPES["tenants"].runs(0.1, 5, (7,))
    assert [(run.logs, run.tenants, run.seed, run.label) for run in quick] == [
        (300, 5, 7, "tenants")
    ]


def test_tenants_run_at_three_counts_and_past_the_jobs_fifty_at_once_wait_their_turn() -> None:
    runs = SHAPES["tenants"].runs(1.0, None, None)
    assert [(run.tenants, run.label, run.waves) for run in runs] == [
        (10, "tenants (10)", 1), (40, "tenants (40)", 1), (200, "tenants (200)", 4)
    ]  # fmt: skip
