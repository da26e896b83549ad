"""What an archived item is, and the Auth0 record inside it.

- A **Management API record**, as ``GET /api/v2/logs`` returns it (``log_id``, ``date``,
  ``type`` ...; ``_id``/``id`` are dropped later, as ``run`` drops them).
- A **Log Stream envelope**, ``{"log_id": ..., "data": {...}}``, as a custom webhook receives it:
  the record is ``data``; its ``log_id`` is the envelope's when ``data`` has none.
- An **Amazon EventBridge event** (``version``, ``id``, ``detail-type``, ``source``, ``time``,
  ``detail`` ...), as a Log Stream of type ``eventbridge`` delivers it (then archived by a rule,
  Firehose or a Lambda): ``detail`` holds the log. Published examples disagree on what
  ``detail`` holds (AWS's sample event for Auth0's partner source has the record itself, with
  ``detail-type`` "Auth0 log"; integrations built on the stream envelope read ``detail.data``),
  so both are accepted.

Anything else is not an Auth0 log: ``Rejected`` says why. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backfill.auth0.log_ids import write_time
from backfill.timeutil import iso, stamp

API, ENVELOPE, EVENTBRIDGE = "Management API record", "Log Stream envelope", "EventBridge event"
EVENTBRIDGE_KEYS = ("detail-type", "source")


@dataclass(slots=True)  # not frozen: made once per log, and frozen dataclasses init slowly
class Found:
    record: dict[str, Any]
    shape: str
    log_id: str
    date: str  # a canonical stamp (``timeutil.stamp``)


@dataclass(frozen=True)
class Rejected:
    reason: str


def classify(item: Any) -> Found | Rejected:
    """The Auth0 record an archived item holds, or why it holds none."""
    if not isinstance(item, dict):
        return Rejected(f"not an Auth0 log: a JSON {_kind(item)}, not an object")
    shape = API
    if "detail" in item and any(key in item for key in EVENTBRIDGE_KEYS):
        item = item["detail"]
        shape = EVENTBRIDGE
        if not isinstance(item, dict):
            return Rejected(
                f"not an Auth0 log: an EventBridge event whose detail is a {_kind(item)}"
            )
    if isinstance(item.get("data"), dict) and "date" not in item and "type" not in item:
        unwrapped = _unwrap(item)
        if isinstance(unwrapped, Rejected):
            return unwrapped
        item = unwrapped
        shape = EVENTBRIDGE if shape == EVENTBRIDGE else ENVELOPE
    return _checked(item, shape)


def _unwrap(envelope: dict[str, Any]) -> dict[str, Any] | Rejected:
    """The record of a stream envelope, carrying the envelope's log_id."""
    data: dict[str, Any] = envelope["data"]
    outer, inner = envelope.get("log_id"), data.get("log_id")
    if inner is None and isinstance(outer, str):
        data = {**data, "log_id": outer}
    elif outer is not None and inner != outer:
        return Rejected(
            f"not an Auth0 log: the envelope's log_id {_shown(outer)} differs from its "
            f"data.log_id {_shown(inner)}"
        )
    return data


def _checked(record: dict[str, Any], shape: str) -> Found | Rejected:
    log_id = record.get("log_id")
    if not isinstance(log_id, str) or not log_id or log_id.isspace():
        what = "no log_id" if log_id is None else f"a log_id that is a {_kind(log_id)}"
        if isinstance(log_id, str):
            what = "an empty log_id"
        return Rejected(f"not an Auth0 log: {what}")
    date = stamp(record.get("date"))
    if date is None:
        written = write_time(log_id)
        if written is None:
            return Rejected(
                f"not an Auth0 log: log {_shown(log_id)} has no readable date "
                f"({_shown(record.get('date'))}), and its log_id carries none"
            )
        date = iso(written)
    return Found(record, shape, log_id, date)


def _kind(value: Any) -> str:
    return {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:60] + "…"
