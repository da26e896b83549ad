"""Every failure the job reports on purpose, and the exit code it ends the process with.

The CLI maps these to exit codes in one place (``BackfillError.exit_code``); messages say what
happened and what to do next, and never contain a token or a secret (``redact`` hides any that a
repeated value may carry).

BackfillError                           1  unexpected; also the base of everything below
├── ConfigError                         2  flags, settings file, dates, missing credentials
│   ├── UsageError                      2    flags that do not go together
│   └── HostUnreachableError            2    a configured host does not resolve or refuses us
├── Auth0Error                          3  Auth0 refused us
│   ├── Auth0CredentialsError           3    client credentials or token rejected (401)
│   ├── Auth0PermissionError            3    token lacks read:logs (403)
│   └── Auth0RequestError               3    404, or a 400 on a query
├── TinybirdError                       4  Tinybird refused us
│   ├── TinybirdAuthError               4    token invalid or without the needed scope (403)
│   ├── TinybirdNotFoundError           4    wrong region host, or no such data source (404)
│   └── TinybirdRequestError            4    invalid request (400)
├── StateError                          5  state file unusable: corrupt, foreign, newer, other flags
│   └── RefusedError                    5    rows already there, PII the stream hides: not sent
├── CheckpointExpiredError              6  the checkpoint aged out of Auth0's retention
├── RetriesExhaustedError               7  a service kept failing after every retry
├── PartialWriteError                   8  Tinybird 422: written in part, never resent
├── DataError                           9  Auth0 sent something unusable, or a row too big to send
│   └── RowsRefusedError                9    Tinybird refused a row as too large, even alone
├── CheckFailedError                   10  `check` found a problem, `verify` found missing rows
├── SomeTenantsFailedError             11  a multi-tenant run where some tenants failed
├── StateLockedError                   75  another run holds the state file (cron overlap)
└── Interrupted                   130/143  SIGINT / SIGTERM
"""

from __future__ import annotations

import re
import signal

from backfill.redact import redact

# Exit codes, documented in docs/exit-codes.md. Keep them stable: scripts depend on them.
EXIT_OK = 0


# A message is a few lines at most, whatever it repeats: a value given by the user, a server's
# answer, a list of ids. Bounded here, once, for every error (and every note of a run).
MESSAGE_LIMIT = 600
HINT_LIMIT = 400
GIVEN_LIMIT = 80  # a value longer than this is shortened where a message repeats it
_LONG_WORD = re.compile(r"\S{" + str(GIVEN_LIMIT + 41) + ",}")


class BackfillError(Exception):
    """Base class: a failure with a message meant for the operator."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        hint = bounded(redact(hint), HINT_LIMIT) if hint else hint
        room = MESSAGE_LIMIT - (len(hint) + 1 if hint else 0)
        message = bounded(redact(message), room)
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(BackfillError):
    exit_code = 2
    kind = "config"


class UsageError(ConfigError):
    """Flags that do not go together: the command line shows it as click shows its own."""

    kind = "usage"


class HostUnreachableError(ConfigError):
    """A configured host whose name does not resolve, or that refuses connections, before it
    ever answered: most likely a setting, so not retried for long."""

    kind = "unreachable"


class Auth0Error(BackfillError):
    exit_code = 3
    kind = "auth0"


class Auth0CredentialsError(Auth0Error):
    kind = "auth0_credentials"


class Auth0PermissionError(Auth0Error):
    kind = "auth0_permission"


class Auth0RequestError(Auth0Error):
    kind = "auth0_request"

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class TinybirdError(BackfillError):
    exit_code = 4
    kind = "tinybird"


class TinybirdAuthError(TinybirdError):
    kind = "tinybird_auth"


class TinybirdNotFoundError(TinybirdError):
    kind = "tinybird_not_found"


class TinybirdRequestError(TinybirdError):
    kind = "tinybird_request"


class StateError(BackfillError):
    exit_code = 5
    kind = "state"


class RefusedError(StateError):
    """The run would duplicate rows or leak what the stream hides: refused before sending."""

    kind = "refused"


class CheckpointExpiredError(BackfillError):
    exit_code = 6
    kind = "checkpoint_expired"


class RetriesExhaustedError(BackfillError):
    exit_code = 7
    kind = "retries_exhausted"


class PartialWriteError(BackfillError):
    exit_code = 8
    kind = "partial_write"


class DataError(BackfillError):
    exit_code = 9
    kind = "data"


class RowsRefusedError(DataError):
    """Tinybird refused rows as too large even one at a time; every other row was sent."""

    kind = "rows_refused"

    def __init__(self, message: str, *, log_ids: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.log_ids = log_ids


class CheckFailedError(BackfillError):
    exit_code = 10
    kind = "check_failed"


class SomeTenantsFailedError(BackfillError):
    exit_code = 11
    kind = "some_tenants_failed"


class StateLockedError(BackfillError):
    exit_code = 75  # EX_TEMPFAIL: "try again later", which is what cron overlap means
    kind = "state_locked"


class Interrupted(BackfillError):
    """The operator (or a supervisor) asked us to stop; 128 + the signal number, as shells do."""

    kind = "interrupted"

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name}")
        self.signum = signum
        self.exit_code = 128 + signum


def bounded(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` as a message may show it: each run of over 120 characters without a space (a
    value pasted in, a flood of digits) shortened, and the whole cut to ``limit``."""
    text = _LONG_WORD.sub(lambda match: given_text(match.group(0)), text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def given(value: object) -> str:
    """A value the user gave, quoted as a message repeats it, shortened past 80 characters
    (its secrets hidden first: a cut must not leave part of one showing)."""
    if not isinstance(value, str):
        return given_text(str(value))
    value = redact(value)
    if len(value) <= GIVEN_LIMIT:
        return repr(value)
    return f"{value[:48]!r}…{value[-16:]!r} ({len(value):,} characters)"


def given_text(text: str) -> str:
    """Unquoted text (a path, a word of a message), secrets hidden, shortened past 80
    characters."""
    text = redact(text)
    if len(text) <= GIVEN_LIMIT:
        return text
    return f"{text[:48]}…{text[-16:]} ({len(text):,} characters)"


def listed(items: list[str], shown: int = 5) -> str:
    """The first few of a list and how many more: a message never lists thousands of ids."""
    head = ", ".join(items[:shown])
    return head + (f" and {len(items) - shown:,} more" if len(items) > shown else "")


def short(text: str, limit: int = 160) -> str:
    """A server's words folded to one line and cut to ``limit`` characters, for a message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def server_words(body: str, fallback: str) -> str:
    """A server's answer that is not its API's JSON, in a few words: its text, or for an HTML
    page (a proxy's or load balancer's error page) its title, not its markup."""
    text = " ".join(body.split())
    if text[:1] == "<":
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE)
        return f"{short(title.group(1)) if title else fallback} (an HTML page)"
    return short(text) or fallback
