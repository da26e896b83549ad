"""`tinybird/` is a Tinybird project both CLIs take: laid out as the Forward CLI's `tb deploy`
reads it (`datasources/`, `endpoints/`), and every datafile checked by Tinybird's own tooling,
offline: the Classic CLI's `tb check` and the Forward CLI's `tb fmt` (which parse with Tinybird's
parsers). The CLIs live in .venv-tools (`make tools`); a missing one fails, it is never skipped."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "tinybird"
DATASOURCE = PROJECT / "datasources" / "auth0.datasource"
ENDPOINTS = sorted((PROJECT / "endpoints").glob("*.pipe"))
TOOLS = ROOT / ".venv-tools"


def tb(cli: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one of Tinybird's CLIs ("forward" or "classic") without a network: no version check,
    no telemetry, every proxy variable pointing at a closed local port, an empty home."""
    program = TOOLS / cli / "bin" / "tb"
    if not program.exists():
        pytest.fail(f"{program} is missing: `make tools` installs Tinybird's CLIs for the tests")
    dead = "http://127.0.0.1:9"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "TB_CLI_TELEMETRY_OPTOUT": "1",
        "TB_VERSION_WARNING": "0",
        **{name: dead for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
        **{name.lower(): dead for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
    }
    command = [str(program), "--no-version-warning", *map(str, args)]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def schema_block(text: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index("SCHEMA >") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return lines[start:end]


def test_the_project_is_laid_out_as_tinybird_reads_it() -> None:
    datafiles = {
        path.relative_to(PROJECT).as_posix()
        for path in PROJECT.rglob("*")
        if path.suffix in {".datasource", ".pipe", ".connection", ".incl"}
    }
    assert datafiles == {
        "datasources/auth0.datasource",
        "endpoints/daily_logins_signups.pipe",
        "endpoints/failed_logins_by_error.pipe",
        "endpoints/top_applications.pipe",
    }
    for path in ENDPOINTS:
        assert "\nTYPE ENDPOINT\n" in path.read_text("utf-8"), path.name


def test_the_classic_cli_checks_every_datafile(tmp_path: Path) -> None:
    result = tb("classic", "check", DATASOURCE, *ENDPOINTS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("processed correctly") == 1 + len(ENDPOINTS) == 4


def test_the_classic_cli_refuses_a_misspelled_type(tmp_path: Path) -> None:
    broken = tmp_path / "auth0.datasource"
    broken.write_text(DATASOURCE.read_text("utf-8").replace("DateTime64(3)", "DateTme64(3)"))
    result = tb("classic", "check", broken, cwd=tmp_path)
    assert result.returncode != 0
    assert "Unknown data type family: DateTme64" in result.stdout + result.stderr


def test_the_endpoints_are_in_the_forward_clis_own_format(tmp_path: Path) -> None:
    # `tb fmt --diff` parses each file and exits 1 when its canonical form differs.
    result = tb("forward", "fmt", "--diff", "--no-color", *ENDPOINTS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_forward_cli_reads_the_seed_schema_unchanged(tmp_path: Path) -> None:
    result = tb("forward", "fmt", "--dry-run", DATASOURCE, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # Its formatter writes ENGINE values unquoted; the schema's 24 columns come back as they are.
    ours = schema_block(DATASOURCE.read_text("utf-8"))
    assert len(ours) == 24 and schema_block(result.stdout) == ours
    assert 'ENGINE "MergeTree"' in DATASOURCE.read_text("utf-8")  # the seed's text, kept as is
    assert "ENGINE MergeTree" in result.stdout


@pytest.mark.parametrize(
    ("source", "change", "complaint"),
    [
        (DATASOURCE, ("DateTime64(3)", "DateTme64(3)"), "Unknown data type family: DateTme64"),
        (ENDPOINTS[-1], ("TYPE ENDPOINT", "TYPE ENDPONT"), "Allowed node types"),
    ],
    ids=["a misspelled column type", "an unknown node type"],
)
def test_the_forward_cli_refuses_a_broken_datafile(
    tmp_path: Path, source: Path, change: tuple[str, str], complaint: str
) -> None:
    broken = tmp_path / source.name
    broken.write_text(source.read_text("utf-8").replace(*change))
    assert broken.read_text("utf-8") != source.read_text("utf-8")
    result = tb("forward", "fmt", "--dry-run", broken, cwd=tmp_path)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr
