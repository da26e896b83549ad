from __future__ import annotations

from backfill import redact
from backfill.errors import ConfigError


def test_secrets_in_urls_forms_and_headers_are_hidden() -> None:
    text = redact.redact(
        "https://api.tinybird.co/v0/events?name=auth0&token=p.abc123 "
        "https://admin:pw@host/x client_secret=xyz Authorization: Bearer eyJ.a.b "
        "read_token=t1, rows_already_in_tinybird=5 signal=SIGINT"
    )
    for secret in ("p.abc123", "admin:pw", "xyz", "eyJ.a.b", "t1"):
        assert secret not in text
    assert "token=***" in text and "https://***@host/x" in text and "Bearer ***" in text
    assert "rows_already_in_tinybird=5" in text and "signal=SIGINT" in text  # not secrets


def test_a_registered_secret_is_hidden_wherever_it_appears() -> None:
    redact.register("zq-registered-secret-value")
    error = ConfigError("TINYBIRD_DATASOURCE 'zq-registered-secret-value' is not a name.")
    assert "zq-registered" not in str(error) and "***" in str(error)
    redact.register("short")  # too short to hide without hiding ordinary words
    assert redact.redact("a short word") == "a short word"
