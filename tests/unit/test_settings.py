from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backfill.auth0.event_types import type_filter
from backfill.config.parse import duration, normalize_base_url, share
from backfill.config.settings import resolve
from backfill.config.tenants import resolve_tenants
from backfill.errors import ConfigError
from tests.unit.test_tinybird_region import tinybird_token

ENV = {
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_CLIENT_ID": "client",
    "AUTH0_CLIENT_SECRET": "s3cret-value",
    "TINYBIRD_TOKEN": "p.token-value",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = resolve({}, ENV, None)
    assert settings.auth0_base_url == "https://tenant.eu.auth0.com"
    assert settings.auth0_audience == "https://tenant.eu.auth0.com/api/v2/"
    assert settings.tinybird_host == "https://api.tinybird.co"
    assert settings.datasource == "auth0"
    assert settings.max_rows == 10_000 and settings.max_bytes == 8 * 1024 * 1024
    assert settings.max_months == 2


def test_flag_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config = write(tmp_path, '[tinybird]\ndatasource = "from_file"\n[run]\nconcurrency = 3\n')
    assert resolve({}, ENV, config).datasource == "from_file"
    env = {**ENV, "TINYBIRD_DATASOURCE": "from_env"}
    assert resolve({}, env, config).datasource == "from_env"
    assert resolve({"concurrency": 5}, env, config).concurrency == 5
    assert resolve({}, env, config).concurrency == 3


def test_secrets_are_never_in_repr() -> None:
    text = repr(resolve({}, ENV, None))
    assert "s3cret-value" not in text and "p.token-value" not in text


def test_secret_from_a_named_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    env = {key: value for key, value in ENV.items() if key != "AUTH0_CLIENT_SECRET"}
    env["AUTH0_CLIENT_SECRET_FILE"] = str(secret)
    assert resolve({}, env, None).auth0_client_secret == "from-file"


def test_a_secret_in_the_settings_file_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, '[auth0]\nclient_secret = "oops"\n')
    with pytest.raises(ConfigError, match="secrets are read only from the environment"):
        resolve({}, ENV, config)


def test_unknown_keys_are_named_with_a_suggestion(tmp_path: Path) -> None:
    config = write(tmp_path, '[tinybird]\ndatsource = "x"\n[batch]\nmax_row = 5\n[rnu]\n')
    with pytest.raises(ConfigError) as caught:
        resolve({}, ENV, config)
    message = str(caught.value)
    assert "datsource" in message and "did you mean 'datasource'" in message
    assert "max_row" in message and "did you mean 'max_rows'" in message
    assert "[rnu]" in message


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve({}, ENV, write(tmp_path, "[run\n"))


def test_dates_without_offset_are_utc_and_offsets_convert() -> None:
    settings = resolve(
        {"from_date": "2026-11-01", "until_date": "2026-11-02T02:00:00+02:00"}, ENV, None
    )
    assert settings.from_date == datetime(2026, 11, 1, tzinfo=UTC)
    assert settings.until_date == datetime(2026, 11, 2, tzinfo=UTC)


def test_bad_date_is_named() -> None:
    with pytest.raises(ConfigError, match="--from-date '2026-13-01' is not an ISO 8601"):
        resolve({"from_date": "2026-13-01"}, ENV, None)


def test_until_must_be_after_from() -> None:
    with pytest.raises(ConfigError, match="not after --from-date"):
        resolve({"from_date": "2026-11-02", "until_date": "2026-11-01"}, ENV, None)


def test_from_date_and_from_log_id_exclude_each_other() -> None:
    with pytest.raises(ConfigError, match="not both"):
        resolve({"from_date": "2026-11-02", "from_log_id": "900" + "1" * 53}, ENV, None)


def test_missing_credentials_are_named_one_by_one() -> None:
    settings = resolve({}, {}, None)
    with pytest.raises(ConfigError) as caught:
        settings.require_auth0()
    message = str(caught.value)
    for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"):
        assert name in message
    with pytest.raises(ConfigError, match="TINYBIRD_TOKEN"):
        settings.require_tinybird()


def test_a_token_replaces_client_credentials() -> None:
    resolve({}, {"AUTH0_DOMAIN": "t.auth0.com", "AUTH0_TOKEN": "x"}, None).require_auth0()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tenant.us.auth0.com", "https://tenant.us.auth0.com"),
        ("https://tenant.us.auth0.com/", "https://tenant.us.auth0.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:7181", "http://localhost:7181"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_urls(value: str, expected: str) -> None:
    assert normalize_base_url(value, name="X") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://tenant.us.auth0.com", "only for loopback"),
        ("ftp://x", "not a host name"),
        ("https://tenant.auth0.com/api/v2", "no path"),
        ("https://user:pw@tenant.auth0.com", "credentials"),
    ],
)
def test_bad_urls(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        normalize_base_url(value, name="AUTH0_DOMAIN")


def test_bad_numbers_and_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        resolve({}, ENV, write(tmp_path, "[batch]\nmax_rows = 0\n"))
    with pytest.raises(ConfigError, match="not a Tinybird data source name"):
        resolve({}, {**ENV, "TINYBIRD_DATASOURCE": "auth0-logs"}, None)


@pytest.mark.parametrize(
    ("flags", "env", "toml", "message"),
    [
        ({"concurrency": True}, {}, "", r"not true \(a boolean\)"),
        ({}, {}, "[run]\nconcurrency = true\n", r"not true \(a boolean\)"),
        ({}, {}, "[http]\ntimeout_seconds = false\n", "a number of seconds, not false"),
        ({"from_log_id": "٩٠٠١"}, {}, "", "ASCII digits 0-9 only"),
        ({"from_log_id": "900 1"}, {}, "", "ASCII digits 0-9 only"),
        ({"from_log_id": "9" * 5000}, {}, "", "it has 5,000 digits, and a log_id has 56"),
        ({"from_log_id": "900" + "1" * 10}, {}, "", "it has 13 digits, and a log_id has 56"),
        ({"from_log_id": "2026-11-01"}, {}, "", "looks like a date: give it as --from-date"),
        ({"from_log_id": "latest"}, {}, "", "ASCII digits 0-9 only"),
        ({"until_date": "9999-12-31"}, {}, "", "out of range"),
        ({"from_date": "1969-12-31"}, {}, "", "out of range"),
        ({"from_date": "2099-01-01"}, {}, "", "after now"),
        ({"from_log_id": "900" + "20990101000000" + "0" * 39}, {}, "", "after now"),
        (
            {},
            {"TINYBIRD_TOKEN": "p.abc\ndef"},
            "",
            "TINYBIRD_TOKEN holds a line break at character 6",
        ),
        ({}, {"AUTH0_CLIENT_SECRET": "ab cd"}, "", "holds a space or tab"),
        ({}, {"AUTH0_TOKEN": "abc\x07"}, "", "holds a control character"),
    ],
)
def test_values_that_cannot_be_used(
    tmp_path: Path, flags: dict[str, object], env: dict[str, str], toml: str, message: str
) -> None:
    config = write(tmp_path, toml) if toml else None
    with pytest.raises(ConfigError, match=message) as refused:
        resolve(flags, {**ENV, **env}, config)
    for value in env.values():
        assert value not in str(refused.value)  # a secret is named, never shown
    assert len(str(refused.value)) < 400  # whatever it was given


@pytest.mark.parametrize(
    "flags",
    [
        {"from_date": "x" * 5000},
        {"until_date": "2026-" + "1" * 3000},
        {"types": "s," + "q" * 4000},
        {"datasource": "auth0_" * 900 + "!"},
        {"concurrency": "9" * 4000},
        {"from_log_id": "abc" * 2000},
    ],
    ids=["from-date", "until-date", "types", "datasource", "concurrency", "from-log-id"],
)
def test_an_overlong_value_is_shortened_wherever_a_message_repeats_it(
    tmp_path: Path, flags: dict[str, object]
) -> None:
    (value,) = flags.values()
    try:
        settings = resolve(flags, ENV, None)
        type_filter(settings.types, ())
    except (ConfigError, ValueError) as error:
        message = str(error)
    else:
        pytest.fail("accepted")
    assert len(message) <= 600 and str(value)[:200] not in message, message[:300]


def test_a_start_within_the_clock_skew_is_accepted() -> None:
    soon = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    assert resolve({"from_date": soon}, ENV, None).from_date is not None


def test_every_missing_setting_is_named_at_once() -> None:
    settings = resolve({}, {}, None)
    with pytest.raises(ConfigError) as missing:
        settings.require(tinybird=True)
    for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "TINYBIRD_TOKEN"):
        assert name in str(missing.value)
    with pytest.raises(ConfigError) as preview:
        settings.require(tinybird=False)  # a dry run needs no Tinybird token
    assert "TINYBIRD_TOKEN" not in str(preview.value)


def test_files_that_cannot_be_read_as_settings(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    latin.write_bytes("[tinybird]\ndatasource = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9"):
        resolve({}, ENV, latin)
    with pytest.raises(ConfigError, match="is a directory"):
        resolve({}, ENV, tmp_path)
    with pytest.raises(ConfigError, match="Give a file in it"):
        resolve({"state": str(tmp_path)}, ENV, None)


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("eu_shared", "https://api.tinybird.co"),
        ("us_east", "https://api.us-east.tinybird.co"),
        ("gcp-europe-west2", "https://api.europe-west2.gcp.tinybird.co"),
        ("aws-us-west-2", "https://api.us-west-2.aws.tinybird.co"),
    ],
)
def test_without_tinybird_host_the_token_names_the_host(region: str, host: str) -> None:
    env = {**ENV, "TINYBIRD_TOKEN": tinybird_token(region)}
    settings = resolve({}, env, None)
    assert settings.tinybird_host == host
    assert settings.tinybird_host_configured is None and settings.tinybird_host_warning is None
    assert "the token belongs to" in settings.tinybird_host_reason


def test_a_tinybird_host_of_another_region_than_the_token_is_kept_and_named() -> None:
    token = tinybird_token("us-east-aws")
    env = {**ENV, "TINYBIRD_TOKEN": token, "TINYBIRD_HOST": "https://api.tinybird.co"}
    settings = resolve({}, env, None)
    assert settings.tinybird_host == "https://api.tinybird.co"
    warning = settings.tinybird_host_warning
    assert warning is not None
    assert "https://api.tinybird.co" in warning and "https://api.us-east.aws.tinybird.co" in warning
    assert token not in warning


def test_each_tenant_takes_the_host_its_own_token_names(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        '[[tenants]]\nname = "eu"\ndomain = "eu.auth0.com"\nclient_id = "a"\n'
        'client_secret_env = "SECRET"\n'
        '[[tenants]]\nname = "us"\ndomain = "us.auth0.com"\nclient_id = "b"\n'
        'client_secret_env = "SECRET"\ntinybird_token_env = "US_TOKEN"\n',
    )
    env = {
        **ENV,
        "SECRET": "s",
        "TINYBIRD_TOKEN": tinybird_token("eu_shared"),
        "US_TOKEN": tinybird_token("us_east"),
    }
    eu, us = resolve_tenants({}, env, config)
    assert eu.tinybird_host == "https://api.tinybird.co"
    assert us.tinybird_host == "https://api.us-east.tinybird.co"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("2h", 7200), ("1h30m", 5400), ("90s", 90), ("1d", 86400), ("900", 900),
     ("0.5", 0.5), (" 2H ", 7200)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert duration(text, "--max-lag").total_seconds() == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "not a duration"), ("-5m", "not a duration"), ("soon", "not a duration"),
     ("1.5.5m", "not a duration"), ("nan", "not a duration"), ("\u0661\u0665m", "not a duration"),
     ("5m3", "not a duration"), ("9" * 30, "longer than ten years"),
     ("99999999999d", "longer than ten years")],
)  # fmt: skip
def test_what_is_not_a_duration_is_named(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        duration(text, "--max-lag")


@pytest.mark.parametrize("value", ["0", "0.001", "1.5", "nan", "inf", "-0.5", "half", True])
def test_a_rate_share_is_a_fraction_from_a_hundredth_to_one(value: object) -> None:
    with pytest.raises(ConfigError, match="rate_share"):
        share(value, "[auth0] rate_share")


def test_a_tenants_rate_share_beats_the_shared_one(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "[auth0]\nrate_share = 0.5\n"
        "[[tenants]]\nname = 'a'\ndomain = 'a.us.auth0.com'\nrate_share = 0.25\n"
        "[[tenants]]\nname = 'b'\ndomain = 'b.us.auth0.com'\n",
    )
    shares = [item.rate_share for item in resolve_tenants({}, ENV, config)]
    assert shares == [0.25, 0.5]
