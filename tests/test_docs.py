"""The README documents every command, option, environment variable and settings key."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from backfill.cli import main
from backfill.config.settings import SECRET_VARIABLES, TENANT_KEYS, declared

SETTINGS = [where for _, where in declared()]

README = (Path(__file__).parents[1] / "README.md").read_text()
CONTEXT = click.Context(main)
COMMANDS = {name: main.get_command(CONTEXT, name) for name in main.list_commands(CONTEXT)}


def test_there_are_commands() -> None:
    assert set(COMMANDS) == {"run", "status", "check", "verify", "sandbox"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_its_section(name: str) -> None:
    assert f"### `auth0-backfill {name}`" in README


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (name, option)
        for name, command in sorted(COMMANDS.items())
        for parameter in command.params  # type: ignore[union-attr]
        if isinstance(parameter, click.Option) and parameter.name != "help"
        for option in parameter.opts + parameter.secondary_opts
        if option.startswith("--")
    ],
)
def test_every_option_is_documented_in_its_command_section(command: str, option: str) -> None:
    section = README.split(f"### `auth0-backfill {command}`")[1]
    section = section.split("\n## ")[0].split("\n### ")[0]
    assert re.search(rf"`{re.escape(option)}[ `/=]", section + " "), f"{command} {option}"


@pytest.mark.parametrize(
    "variable",
    sorted({option.env for option in SETTINGS if option.env} | set(SECRET_VARIABLES)),
)
def test_every_environment_variable_is_documented(variable: str) -> None:
    assert f"`{variable}`" in README or f"`{variable}`," in README or variable in README


@pytest.mark.parametrize("key", sorted({option.key for option in SETTINGS} | TENANT_KEYS))
def test_every_settings_key_is_documented(key: str) -> None:
    assert f"`{key}`" in README


def test_the_example_settings_file_has_every_key() -> None:
    example = (Path(__file__).parents[1] / "config.example.toml").read_text()
    for option in SETTINGS:
        assert re.search(rf"^#? ?{option.key} =", example, re.M), option.key


def test_the_readme_names_the_test_and_demo_commands() -> None:
    assert "make check" in README and "make demo" in README
    assert "make check" in (Path(__file__).parents[1] / ".ci" / "run").read_text()
