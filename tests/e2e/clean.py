"""What every run off the happy path must show (issue 14): no traceback, and no secret in stdout,
stderr, the state file, or any URL a server received."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tests.e2e.conftest import Harness, Result

SECRET_VARIABLES = ("AUTH0_CLIENT_SECRET", "AUTH0_TOKEN", "TINYBIRD_TOKEN", "TINYBIRD_READ_TOKEN")


def secrets_of(h: Harness, extra: dict[str, str] | None = None) -> list[str]:
    env = h.environment(extra)
    return [env[name] for name in SECRET_VARIABLES if env.get(name)]


def assert_clean(
    h: Harness,
    result: Result,
    *,
    secrets: Iterable[str] = (),
    env: dict[str, str] | None = None,
    urls: Iterable[str] = (),
    state: Path | None = None,
) -> None:
    """No traceback; no secret (the harness's, ``env``'s and ``secrets``) in what the job printed,
    in its state file, or in the request lines a server received (``urls``); the sandbox's
    Tinybird never saw a token in a URL."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, result.stderr[-3000:]
    hidden = [*secrets_of(h, env), *secrets]
    written = (state or h.state).read_text(errors="replace") if (state or h.state).exists() else ""
    seen = list(urls)
    for secret in hidden:
        assert secret not in output, "a secret was printed"
        assert secret not in written, "a secret is in the state file"
        assert all(secret not in url for url in seen), "a secret travelled in a URL"
    assert h.tinybird("/__sandbox/stats").json()["tokens_in_url"] == 0


def assert_says(result: Result, *words: str) -> None:
    """The message names the problem and the next step (each of ``words``)."""
    for word in words:
        assert word in result.stderr, f"{word!r} not in: {result.stderr[-2000:]}"
