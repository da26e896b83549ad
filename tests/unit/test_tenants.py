"""Several tenants: ``--shard K/N`` cuts a ``[[tenants]]`` file into disjoint parts by name, and
``run_tenants`` runs at most ``tenants_in_flight`` of them at once."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import pytest

from backfill.config.settings import Settings
from backfill.config.tenants import Shard, parse_shard, resolve_tenants
from backfill.errors import ConfigError
from backfill.run import job
from backfill.run.report import Report
from backfill.run.request import JobRequest
from backfill.run.stopper import Stopper


def tenants_file(path: Path, names: list[str]) -> Path:
    path.write_text(
        "".join(
            f'[[tenants]]\nname = "{name}"\ndomain = "{name}.eu.auth0.com"\nclient_id = "x"\n'
            f'client_secret_env = "SECRET"\ndatasource = "auth0_{name.replace("-", "_")}"\n'
            for name in names
        )
    )
    return path


ENV = {"SECRET": "s", "TINYBIRD_TOKEN": "p.token"}


def names_in(config: Path, shard: Shard | None) -> list[str]:
    return [str(item.tenant_name) for item in resolve_tenants({}, ENV, config, shard=shard)]


def test_two_shards_of_one_tenants_file_cover_every_tenant_exactly_once(tmp_path: Path) -> None:
    names = [f"customer-{index:03d}" for index in range(60)]
    config = tenants_file(tmp_path / "tenants.toml", names)
    first, second = names_in(config, parse_shard("0/2")), names_in(config, parse_shard("1/2"))
    assert first and second  # both parts hold some: the hash spreads them
    assert sorted(first + second) == sorted(names)  # every tenant, exactly once
    assert not set(first) & set(second)


def test_a_tenants_part_depends_only_on_its_name(tmp_path: Path) -> None:
    names = [f"customer-{index:03d}" for index in range(40)]
    config = tenants_file(tmp_path / "tenants.toml", names)
    parts = {name: index for index in range(3) for name in names_in(config, Shard(index, 3))}
    # Another order, tenants added and removed: each remaining tenant keeps its part.
    changed = [*random.Random(7).sample(names[5:], len(names) - 5), "new-a", "new-b"]
    moved = tenants_file(tmp_path / "moved.toml", changed)
    for index in range(3):
        for name in names_in(moved, Shard(index, 3)):
            assert name in ("new-a", "new-b") or parts[name] == index


@pytest.mark.parametrize(
    ("text", "message"),
    [("2/2", "K runs from 0 to N-1"), ("1/0", "at least 1"), ("a/b", "is not K/N"), ("3", "K/N")],
)
def test_a_shard_is_k_of_n(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_shard(text)
    assert parse_shard(" 2/5 ") == Shard(2, 5)


def test_a_shard_needs_a_tenants_file() -> None:
    with pytest.raises(ConfigError, match=r"--shard needs a settings file with \[\[tenants\]\]"):
        resolve_tenants({}, {"AUTH0_DOMAIN": "t.eu.auth0.com"}, None, shard=Shard(0, 2))


def test_no_more_tenants_run_at_once_than_tenants_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running: list[int] = [0]
    most: list[int] = [0]

    async def fake_run_job(request: JobRequest, turn: job.Turn | None = None) -> Report:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.02)
        running[0] -= 1
        return Report.build(
            tenant=str(request.settings.tenant_name),
            datasource="auth0",
            state_path="s",
            outcome="caught_up",
            exit_code=0,
        )

    monkeypatch.setattr(job, "run_job", fake_run_job)
    settings = Settings(tenants_in_flight=3)
    requests = [
        JobRequest(
            settings=Settings(tenant_name=f"t{index}", tenants_in_flight=3), stopper=Stopper()
        )
        for index in range(20)
    ]
    before = threading.active_count()
    reports = asyncio.run(job.run_tenants(requests))
    assert [report.tenant for report in reports] == [f"t{index}" for index in range(20)]
    assert most[0] == settings.tenants_in_flight  # three at a time, never more
    assert threading.active_count() == before  # tenants run as tasks: no thread each


def test_tenants_stopped_before_their_turn_are_not_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[str] = []
    stopper = Stopper()

    async def fake_run_job(request: JobRequest, turn: job.Turn | None = None) -> Report:
        started.append(str(request.settings.tenant_name))
        stopper.request(15)  # SIGTERM while the first tenant runs
        return Report.build(
            tenant=str(request.settings.tenant_name),
            datasource="auth0",
            state_path="s",
            outcome="interrupted",
            exit_code=143,
        )

    monkeypatch.setattr(job, "run_job", fake_run_job)
    requests = [
        JobRequest(settings=Settings(tenant_name=f"t{index}", tenants_in_flight=1), stopper=stopper)
        for index in range(4)
    ]
    reports = asyncio.run(job.run_tenants(requests))
    assert started == ["t0"]
    assert [report.outcome for report in reports] == ["interrupted"] * 4
    assert {report.exit_code for report in reports} == {143}


def test_a_caught_up_follow_hands_its_turn_on_so_every_tenant_is_followed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A follow never ends: with one tenant in flight, the others start only because each
    hands its turn on once its history is in."""
    started: list[str] = []
    everyone_in = asyncio.Event()

    async def fake_run_job(request: JobRequest, turn: job.Turn | None = None) -> Report:
        started.append(str(request.settings.tenant_name))
        assert turn is not None
        turn.hand_on()  # caught up: the polls follow
        turn.hand_on()  # twice is once
        if len(started) == 4:
            everyone_in.set()
        await everyone_in.wait()
        return Report.build(
            tenant=str(request.settings.tenant_name),
            datasource="auth0",
            state_path="s",
            outcome="stopped",
            exit_code=0,
        )

    monkeypatch.setattr(job, "run_job", fake_run_job)
    requests = [
        JobRequest(
            settings=Settings(tenant_name=f"t{index}", tenants_in_flight=1), stopper=Stopper()
        )
        for index in range(4)
    ]
    reports = asyncio.run(asyncio.wait_for(job.run_tenants(requests), timeout=10))
    assert started == ["t0", "t1", "t2", "t3"]
    assert [report.outcome for report in reports] == ["stopped"] * 4
