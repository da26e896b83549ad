"""Sources listed before reading: directories in name order, dot files skipped, what cannot be
read named (exit 2); the fingerprints a checkpoint keeps, and what changed since."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from backfill.archive.sources import changed, expand, fingerprints
from backfill.errors import ConfigError


def test_directories_are_read_recursively_in_name_order(tmp_path: Path) -> None:
    for name in ("b/2", "a/10", "a/9", ".hidden/x", "a/.DS_Store", "c"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"{}")
    names = [
        Path(source.name).relative_to(tmp_path).as_posix() for source in expand((str(tmp_path),))
    ]
    assert names == ["a/10", "a/9", "b/2", "c"]


def test_the_same_file_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"{}")
    assert len(expand((str(tmp_path / "x"), str(tmp_path)))) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "at least one source"),
        (("-", "-"), "once"),
        (("/nonexistent/archive",), "does not exist"),
    ],
)
def test_what_cannot_be_read_is_a_config_error(arguments: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        expand(arguments)
    assert raised.value.exit_code == 2


def test_a_file_without_read_permission_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"{}")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as for another user (CI is root)
    with pytest.raises(ConfigError, match="secret cannot be read: permission denied"):
        expand((str(secret),))


def test_an_object_store_url_without_its_extra_names_the_extra() -> None:
    with pytest.raises(ConfigError, match=r"auth0-backfill\[gs\]"):
        expand(("gs://bucket/prefix/",))  # gcsfs is not installed here


def test_changes_are_named(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"{}")
    before = fingerprints(expand((str(tmp_path),)))
    (tmp_path / "b").write_bytes(b"{} ")
    (tmp_path / "c").write_bytes(b"{}")
    now = fingerprints(expand((str(tmp_path),)))
    assert changed(before, before) == []
    assert changed(before, now) == [f"{tmp_path}/b (changed)", f"{tmp_path}/c (new)"]
    assert changed(now, before)[-1] == f"{tmp_path}/c (gone)"
