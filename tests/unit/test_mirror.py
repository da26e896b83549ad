"""Which Log Streams feed a data source, and what a run mirrors of them (types, personal data),
decided alone: no HTTP, no threads."""

from __future__ import annotations

from typing import Any

import pytest

from backfill.auth0.streams import feeding
from backfill.config.settings import resolve
from backfill.errors import RefusedError
from backfill.run.mirror import mirror
from backfill.run.retention import aged_out
from backfill.state.model import RangeState

ENV = {
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_CLIENT_ID": "client",
    "AUTH0_CLIENT_SECRET": "secret",
    "TINYBIRD_TOKEN": "p.token",
    "TINYBIRD_HOST": "https://api.tinybird.co",
}


def stream(**fields: Any) -> dict[str, Any]:
    described: dict[str, Any] = {
        "id": "lst_1",
        "name": "Tinybird",
        "type": "http",
        "status": "active",
        "sink": {"httpEndpoint": "https://api.tinybird.co/v0/events?name=auth0&token=p.secret"},
    }
    described.update(fields)
    return described


def test_a_stream_feeds_the_data_source_by_host_and_name_whatever_its_status() -> None:
    listed = [
        stream(),
        stream(
            id="lst_2",
            status="paused",
            sink={"httpEndpoint": "HTTPS://API.tinybird.co:443/v0/events/?token=x&name=auth0"},
        ),
        stream(id="lst_3", sink={"httpEndpoint": "https://api.tinybird.co/v0/events?name=other"}),
        stream(
            id="lst_4",
            sink={"httpEndpoint": "https://api.us-east.tinybird.co/v0/events?name=auth0"},
        ),
        stream(id="lst_5", type="datadog", sink={"datadogRegion": "us"}),
        stream(id="lst_6", sink={"httpEndpoint": "https://logs.example.com/v0/events?name=auth0"}),
    ]
    found = feeding(listed, tinybird_host="https://api.tinybird.co", datasource="auth0")
    assert [(item.id, item.status) for item in found] == [("lst_1", "active"), ("lst_2", "paused")]
    assert all("secret" not in item.describe() and "token" not in item.describe() for item in found)


def settings(**flags: Any):  # type: ignore[no-untyped-def]
    return resolve(flags, ENV, None)


def streams(*described: dict[str, Any]):  # type: ignore[no-untyped-def]
    return feeding(list(described), tinybird_host="https://api.tinybird.co", datasource="auth0")


def test_types_come_from_the_flags_else_the_checkpoint_else_the_stream() -> None:
    filtered = streams(stream(filters=[{"type": "category", "name": "auth.login.fail"}]))
    notes: list[str] = []
    chosen = mirror(settings(), filtered, None, notes.append)
    assert chosen.type_filter is not None
    assert chosen.type_filter("f") and chosen.type_filter("fp") and not chosen.type_filter("s")
    assert chosen.describe_types() == "auth.login.fail (from Log Stream 'Tinybird')"
    explicit = mirror(settings(types="s"), filtered, None, notes.append)
    assert explicit.type_filter is not None and explicit.type_filter("s")
    assert explicit.type_filter.source == "--types/--exclude-types"
    recorded = mirror(settings(), [], chosen.recorded(), notes.append)  # the stream changed since
    assert recorded.type_filter is not None and not recorded.type_filter("s")
    assert mirror(settings(), streams(stream()), None, notes.append).type_filter is None
    assert not notes


def test_a_stream_without_a_filter_beside_a_filtered_one_sends_everything() -> None:
    both = streams(
        stream(filters=[{"type": "category", "name": "auth.login.fail"}]),
        stream(id="lst_2", name="Second"),
    )
    assert mirror(settings(), both, None, lambda _: None).type_filter is None


def test_personal_data_a_stream_hides_is_refused_unless_dropped_or_kept() -> None:
    hiding = streams(
        stream(pii_config={"log_fields": ["email", "username"], "method": "hash"}),
    )
    with pytest.raises(RefusedError, match="hashes email, username") as refused:
        mirror(settings(), hiding, None, lambda _: None)
    assert "--pii drop" in str(refused.value) and "secret" not in str(refused.value)
    dropped = mirror(settings(pii="drop"), hiding, None, lambda _: None)
    assert dropped.pii == "drop" and dropped.pii_fields == {"email", "username"}
    kept = mirror(settings(pii="keep"), hiding, None, lambda _: None)
    assert kept.pii == "keep" and not kept.pii_fields
    resumed = mirror(settings(), hiding, dropped.recorded(), lambda _: None)
    assert resumed.pii_fields == {"email", "username"}  # as the checkpoint started
    everything = mirror(settings(pii="drop"), [], None, lambda _: None)
    assert everything.pii_fields == {
        "first_name",
        "last_name",
        "username",
        "email",
        "phone",
        "address",
    }


def test_a_field_this_version_cannot_drop_is_refused() -> None:
    hiding = streams(stream(pii_config={"log_fields": ["email", "ssn"], "method": "mask"}))
    with pytest.raises(RefusedError, match="ssn"):
        mirror(settings(pii="drop"), hiding, None, lambda _: None)


def test_unreadable_streams_are_said_not_guessed() -> None:
    notes: list[str] = []
    chosen = mirror(settings(), None, None, notes.append)
    assert chosen.type_filter is None and chosen.pii is None
    assert "read:log_streams" in notes[0]


OLDEST = {
    "log_id": "900202611020000000000000000000000000000000000000000000000",
    "date": "2026-11-02T00:00:00.000Z",
}


@pytest.mark.parametrize(
    ("item", "gone"),
    [
        (
            RangeState(
                0,
                None,
                None,
                "900202611010000000000000000000000000000000000000000000000",
                cursor="900202611011200000000000000000000000000000000000000000000",
            ),
            True,
        ),
        (
            RangeState(
                0,
                None,
                None,
                "900202611010000000000000000000000000000000000000000000000",
                cursor="900202611021200000000000000000000000000000000000000000000",
            ),
            False,
        ),
        (
            RangeState(
                1,
                "2026-11-02T00:00:30.000Z",
                None,
                "900202611015959000000000000000000000000000000000000000000",
            ),
            False,
        ),
        (
            RangeState(
                1,
                "2026-11-01T23:00:00.000Z",
                None,
                "900202611012259000000000000000000000000000000000000000000",
            ),
            True,
        ),
        (
            RangeState(2, "2026-11-01T00:00:00.000Z", "2026-11-01T12:00:00.000Z", "900", done=True),
            False,
        ),
    ],
    ids=["cursor-before", "cursor-after", "starts-after-margin-before", "starts-before", "done"],
)
def test_a_checkpoint_aged_out_when_what_is_left_to_read_begins_before_the_oldest_log(
    item: RangeState, gone: bool
) -> None:
    assert aged_out(item, OLDEST) is gone
