"""The settings file: TOML read, and every section and key checked (unknown ones named with
the closest known one, secrets refused: they come only from the environment)."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backfill.errors import ConfigError

SECRET_KEYS = {"client_secret", "token", "read_token", "secret", "password"}


def load(path: Path, known: Mapping[str, set[str]]) -> dict[str, Any]:
    """Read the TOML file; every section and key checked against ``known``, secrets refused."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Settings file {path} does not exist.") from None
    except IsADirectoryError:
        raise ConfigError(
            f"Settings file {path} is a directory.",
            hint="Point --config (or AUTH0_BACKFILL_CONFIG) at a TOML file, e.g. "
            "config.example.toml copied and edited.",
        ) from None
    except OSError as error:
        raise ConfigError(
            f"Settings file {path} cannot be read: {error.strerror}.",
            hint="Check its permissions for this user.",
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"Settings file {path} is not UTF-8 text (byte {error.object[error.start]:#04x} at "
            f"offset {error.start}).",
            hint="TOML files are UTF-8: save it as UTF-8 (e.g. iconv -f latin1 -t utf-8).",
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"Settings file {path} is not valid TOML: {error}.") from None
    _check_keys(document, path, known)
    return document


def _check_keys(document: Mapping[str, Any], path: Path, known: Mapping[str, set[str]]) -> None:
    problems = []
    for section, body in document.items():
        if section == "tenants":
            problems.extend(_check_tenants(body))
            continue
        if section not in known:
            problems.append(f"unknown section [{section}]{suggest(section, known)}")
            continue
        if not isinstance(body, dict):
            problems.append(f"[{section}] must be a table")
            continue
        for key in body:
            if key in SECRET_KEYS:
                problems.append(
                    f"[{section}] {key}: secrets are read only from the environment "
                    "(or a file named by a *_FILE variable), never from the settings file"
                )
            elif key not in known[section]:
                problems.append(f"unknown key [{section}] {key}{suggest(key, known[section])}")
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"Settings file {path} has problems:\n{lines}")


TENANT_KEYS = frozenset(
    {
        "name",
        "domain",
        "audience",
        "client_id",
        "client_id_env",
        "client_secret_env",
        "token_env",
        "tinybird_token_env",
        "tinybird_read_token_env",
        "tinybird_host",
        "datasource",
        "state",
        "rate_share",
    }
)


def _check_tenants(body: Any) -> list[str]:
    if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
        return ["[[tenants]] must be an array of tables"]
    problems = []
    for index, tenant in enumerate(body):
        label = tenant.get("name", f"#{index + 1}")
        for key in tenant:
            if key in SECRET_KEYS:
                problems.append(
                    f"[[tenants]] {label}: {key}: name the environment variable that holds it "
                    f"({key}_env), never the secret itself"
                )
            elif key not in TENANT_KEYS:
                problems.append(
                    f"unknown key [[tenants]] {label}: {key}{suggest(key, TENANT_KEYS)}"
                )
    return problems


def suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
