"""Content of synthetic Auth0 log records, shaped after the real ones in the fixtures.

`RecordFactory.build` turns (seed, index, times, id) into an API record: the fields a given event
type carries, with the awkward variations real tenants show (empty `user_id`, null `client_id`,
`scope` as a string or an array, `auth0_client` rarely an array, unicode names, newer records with
`$event_schema`, `tenant_name` and `environment_name`). Users, clients, connections, IPs and user
agents repeat with a zipf-like skew.
"""

from __future__ import annotations

import base64
import bisect
import random
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any

from backfill.sandbox.mixing import mix64, zipf_index
from backfill.sandbox.timeparse import iso_millis

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class EventKind:
    code: str
    weight: float
    family: str
    description: str
    delegated: bool = False
    """A support agent or an AI agent acting for the user: `details.actor.sub` names it."""


# Weighted like a busy tenant: logins and token exchanges dominate, then failures, sign-ups,
# logouts and management API work; a tail of other codes from the event-type catalogue.
EVENT_KINDS: tuple[EventKind, ...] = (
    EventKind("s", 27.0, "login", ""),
    EventKind("ssa", 6.0, "silent", "Successful silent authentication"),
    EventKind("seacft", 10.0, "exchange", ""),
    EventKind("seccft", 8.0, "client_credentials", ""),
    EventKind("sertft", 8.0, "exchange", ""),
    EventKind("sepft", 1.5, "exchange", ""),
    EventKind("scoa", 0.8, "login", "Successful cross-origin authentication"),
    EventKind("slo", 4.0, "logout", "User successfully logged out"),
    EventKind("ss", 2.5, "signup", ""),
    EventKind("sv", 1.0, "verification", ""),
    EventKind("scp", 0.4, "user_change", "Password changed"),
    EventKind("scpr", 0.5, "user_change", "Password change request sent"),
    EventKind("sce", 0.1, "user_change", "Email changed"),
    EventKind("f", 3.0, "login_failure", ""),
    EventKind("fp", 5.0, "password_failure", "Wrong email or password."),
    EventKind("fu", 2.0, "password_failure", "Wrong email or password."),
    EventKind("fs", 0.7, "signup_failure", "Password is too weak"),
    EventKind("fsa", 2.5, "silent_failure", "Login required"),
    EventKind("fcoa", 0.2, "password_failure", "Wrong email or password."),
    EventKind("feacft", 0.5, "exchange_failure", "Invalid authorization code"),
    EventKind("fertft", 0.8, "exchange_failure", "Unknown or invalid refresh token."),
    EventKind("fn", 0.3, "notification_failure", ""),
    EventKind("sapi", 1.5, "management_write", ""),
    EventKind("mgmt_api_read", 2.5, "management_read", ""),
    EventKind("gd_tenant_update", 0.1, "guardian_tenant", "Guardian - Updates tenant settings"),
    EventKind("mfar", 1.0, "mfa", "A user has been prompted for multi-factor authentication"),
    EventKind("gd_send_sms", 0.4, "mfa", "Guardian - SMS sent"),
    EventKind("gd_auth_succeed", 0.6, "mfa", "Multi-factor authentication success."),
    EventKind("cls", 0.5, "passwordless", "Passwordless login code/link has been sent"),
    EventKind("pwd_leak", 0.1, "generic", "Breached password"),
    EventKind("limit_wc", 0.1, "generic", "Blocked Account"),
    EventKind("du", 0.2, "generic", "User has been deleted"),
    EventKind("sdu", 0.1, "generic", "User successfully deleted"),
    EventKind("w", 0.3, "generic", "Warning During Login"),
    EventKind("api_limit", 0.05, "generic", "Rate Limit on the Authentication or Management APIs"),
    EventKind("depnote", 0.05, "generic", "Deprecation Notice"),
    # Codes Auth0 added in 2026 (auth0-log-schemas@8b58c73): rare on any tenant.
    EventKind("sdel", 0.05, "login", "Successful Delegated Login", delegated=True),
    EventKind("sdelsa", 0.05, "silent", "Successful Delegated Silent Authentication", True),
    EventKind("fdelsa", 0.03, "silent_failure", "Login required", delegated=True),
    EventKind("sdeleacft", 0.05, "exchange", "", delegated=True),
    EventKind("fdeleacft", 0.02, "exchange_failure", "Invalid authorization code", True),
    EventKind("limit_phone", 0.02, "phone_limit", "Too many phone delivery attempts"),
)
_BY_CODE = {kind.code: kind for kind in EVENT_KINDS}
_CUMULATIVE = list(accumulate(kind.weight for kind in EVENT_KINDS))
_TOTAL_WEIGHT = _CUMULATIVE[-1]


def event_kind_for(uniform: float) -> EventKind:
    return EVENT_KINDS[
        min(len(EVENT_KINDS) - 1, bisect.bisect_right(_CUMULATIVE, uniform * _TOTAL_WEIGHT))
    ]


def event_kind_of(code: str) -> EventKind:
    """The kind of a code appended on purpose: a weighted one, or any other code (one Auth0's
    catalogue has that the generator does not weigh, or one nobody knows yet) shaped like a
    generic record."""
    return _BY_CODE.get(code) or EventKind(code, 0.0, "generic", "")


_FIRST_NAMES = (
    "neo", "trinity", "morpheus", "ana", "josé", "zoë", "łukasz", "søren", "ayşe", "ngọc",
    "françois", "björn", "maría", "chloé", "jürgen", "owen", "priya", "kenji", "amélie", "omar",
)  # fmt: skip
_LAST_NAMES = (
    "anderson", "garcía", "müller", "dvořák", "o'brien", "nguyễn", "kowalski", "lindqvist",
    "smith", "tanaka", "dubois", "rossi", "silva", "haddad", "patel",
    "yılmaz",  # noqa: RUF001 - a real Turkish name
)  # fmt: skip
_MAIL_DOMAINS = ("example.com", "test.com", "gmail.com", "outlook.com", "exämple.org", "corp.io")
# Letters NFKD does not reduce to ASCII.
_NOT_DECOMPOSABLE = str.maketrans(
    {"ł": "l", "ı": "i", "ø": "o", "ß": "ss", "'": None}  # noqa: RUF001 - dotless i
)
_USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Other 0.0.0 / Other 0.0.0",
    "Chrome 124.0.0 / Mac OS X 10.15.7",
    "unknown",
)
_MOBILE_AGENTS = frozenset({3, 4, 6})
_CLIENT_NAMES = (
    "Default App", "All Applications", "Storefront Web", "iOS App", "Android App",
    "Área de clientes", "Backoffice API (M2M)", "Log Exporter", "Support Desk",
    "Partner Portal – Ünïcode",  # noqa: RUF001 - an en dash, as people type them

)  # fmt: skip
_CONNECTIONS = (
    ("Username-Password-Authentication", "auth0", "database"),
    ("google-oauth2", "google-oauth2", "social"),
    ("github", "github", "social"),
    ("email", "email", "passwordless"),
    ("Corp-SAML", "samlp", "enterprise"),
)
_SDKS: tuple[JsonObject, ...] = (
    {"name": "auth0-spa-js", "version": "2.1.3"},
    {"name": "auth0-react", "version": "2.2.4", "env": {"auth0-spa-js": "2.1.3"}},
    {"name": "auth0.js", "version": "9.24.1"},
    {"name": "Auth0.swift", "version": "2.7.2", "env": {"swift": "5.x", "iOS": "17.4"}},
    {"name": "Auth0.Android", "version": "2.10.2", "env": {"android": "34"}},
    {"name": "node-auth0", "version": "4.4.0", "env": {"node": "20.12.2"}},
)
_LOGIN_ERRORS = (
    ("Callback URL mismatch. {cb} is not in the list of allowed callback URLs",
     "callback-url-mismatch", "unauthorized_client"),
    ("Invalid state", "invalid-state", "access_denied"),
    ("Unknown client: {client}", "unknown-client", "invalid_request"),
    ("The user has not consented to the requested scopes", "consent-required", "access_denied"),
)  # fmt: skip
_MANAGEMENT_WRITES = (
    ("Create a User", "post", "/api/v2/users", 201),
    ("Update a User", "patch", "/api/v2/users/{user}", 200),
    ("Delete a User", "delete", "/api/v2/users/{user}", 204),
    ("Update a client", "patch", "/api/v2/clients/{client}", 200),
    ("Create a log stream", "post", "/api/v2/log-streams", 200),
    ("Update tenant settings", "patch", "/api/v2/tenants/settings", 200),
)
_MANAGEMENT_READS = (
    ("Get client by ID", "/api/v2/clients/{client}"),
    ("Get all clients", "/api/v2/clients"),
    ("Get a connection", "/api/v2/connections/{connection}"),
)
_SCOPE_SETS = (
    ("openid", "profile", "email"),
    ("openid", "profile", "email", "offline_access"),
    ("openid", "profile"),
    ("read:orders", "write:orders"),
)
_M2M_SCOPES = (
    ("read:logs", "read:logs_users"),
    ("read:users", "update:users", "read:clients"),
    ("read:users",),
)


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    connection: int
    logins: int


def _url_text(rng: random.Random, length: int) -> str:
    """Random URL-safe text (session ids, states, tickets): cheap enough for every record."""
    return base64.urlsafe_b64encode(rng.randbytes(length * 3 // 4 + 1)).decode("ascii")[:length]


def _alnum(hashed_seed: int, length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    rng = random.Random(hashed_seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


def _ascii_fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_NOT_DECOMPOSABLE))
    return decomposed.encode("ascii", "ignore").decode("ascii")


@lru_cache(maxsize=200_000)
def _user(seed: int, number: int) -> User:
    rng = random.Random(mix64(seed, number, 0x05E2))
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    domain = rng.choice(_MAIL_DOMAINS)
    # Most addresses are folded to ASCII; some keep their unicode local part, as IDN mail allows.
    local = f"{first}.{last}"
    local = _ascii_fold(local) if rng.random() < 0.7 else local.replace("'", "")
    email = f"{local}{number % 997 if rng.random() < 0.5 else ''}@{domain}"
    roll = rng.random()
    if roll < 0.7:
        return User(f"auth0|{rng.getrandbits(96):024x}", email, 0, 1 + rng.randrange(400))
    if roll < 0.88:
        return User(f"google-oauth2|1{rng.getrandbits(64):020d}", email, 1, 1 + rng.randrange(90))
    if roll < 0.95:
        return User(f"github|{10_000_000 + rng.randrange(90_000_000)}", email, 2, 1)
    return User(f"samlp|Corp-SAML|{email}", email, 4, 1 + rng.randrange(40))


class RecordFactory:
    """Builds record `index` of a tenant; the same inputs always give the same record."""

    def __init__(self, seed: int, user_count: int, ip_count: int) -> None:
        self.seed = seed
        self.user_count = max(1, user_count)
        self.ip_count = max(1, ip_count)
        self.tenant_name = "dev-" + _alnum(mix64(seed, 0x7E4A), 8).lower()
        self.hostname = f"{self.tenant_name}.us.auth0.com"
        self.clients = tuple(
            Client(_alnum(mix64(seed, 0xC11E, k), 32), name) for k, name in enumerate(_CLIENT_NAMES)
        )
        self.connection_ids = tuple(
            "con_" + _alnum(mix64(seed, 0xC0, k), 16) for k in range(len(_CONNECTIONS))
        )

    def build(
        self, index: int, kind: EventKind, date_us: int, log_id: str, newer_schema: bool
    ) -> JsonObject:
        rng = random.Random(mix64(self.seed, index, 0xBEEF))
        user = _user(self.seed, zipf_index(self.user_count, rng.random()))
        client = self.clients[zipf_index(len(self.clients), rng.random())]
        agent = zipf_index(len(_USER_AGENTS), rng.random())
        context = _Context(self, rng, user, client, agent, date_us // 1000)
        record = _FAMILIES[kind.family](context)
        if kind.delegated:
            agent_user = _user(self.seed, zipf_index(self.user_count, rng.random()))
            record["details"] = {**record.get("details", {}), "actor": {"sub": agent_user.user_id}}
        record["type"] = kind.code
        record["date"] = iso_millis(date_us)
        record.setdefault("description", kind.description)
        record.setdefault("ip", self.ip_address(zipf_index(self.ip_count, rng.random())))
        record.setdefault("user_agent", _USER_AGENTS[agent])
        record.setdefault("hostname", self.hostname)
        if newer_schema:
            record["$event_schema"] = {"version": "1.0.0"}
            record["tenant_name"] = self.tenant_name
            record["environment_name"] = "prod-us-3"
        record["log_id"] = record["_id"] = record["id"] = log_id
        record["isMobile"] = agent in _MOBILE_AGENTS
        return dict(sorted(record.items()))

    def ip_address(self, number: int) -> str:
        hashed = mix64(self.seed, number, 0x1B)
        if hashed % 20 == 0:
            groups = [(hashed >> shift) & 0xFFFF for shift in (8, 24, 40)]
            return f"2001:db8:{groups[0]:x}:{groups[1]:x}::{groups[2]:x}"
        octets = (1 + (hashed >> 8) % 223, (hashed >> 16) & 0xFF, (hashed >> 24) & 0xFF)
        return f"{octets[0]}.{octets[1]}.{octets[2]}.{1 + (hashed >> 32) % 254}"


@dataclass
class _Context:
    factory: RecordFactory
    rng: random.Random
    user: User
    client: Client
    agent: int
    millis: int

    def connection(self) -> JsonObject:
        name, strategy, strategy_type = _CONNECTIONS[self.user.connection]
        return {
            "connection": name,
            "connection_id": self.factory.connection_ids[self.user.connection],
            "strategy": strategy,
            "strategy_type": strategy_type,
        }

    def who(self) -> JsonObject:
        return {"user_id": self.user.user_id, "user_name": self.user.email}

    def app(self) -> JsonObject:
        return {"client_id": self.client.client_id, "client_name": self.client.name}

    def sdk(self, record: JsonObject) -> JsonObject:
        if self.rng.random() < 0.6:
            sdk = self.rng.choice(_SDKS)
            record["auth0_client"] = [sdk] if self.rng.random() < 0.02 else sdk
        return record

    def session_id(self) -> str:
        return _url_text(self.rng, 32)

    def scope(self, choices: tuple[tuple[str, ...], ...], string_share: float) -> str | list[str]:
        scopes = self.rng.choice(choices)
        return " ".join(scopes) if self.rng.random() < string_share else list(scopes)


def _login(c: _Context) -> JsonObject:
    started = c.millis - c.rng.randrange(2_000, 60_000)
    logins = c.user.logins + c.rng.randrange(3)
    prompts: list[JsonObject] = [
        {
            "name": "prompt-authenticate",
            "completedAt": c.millis - 300,
            "connection": _CONNECTIONS[c.user.connection][0],
            "connection_id": c.factory.connection_ids[c.user.connection],
            "strategy": _CONNECTIONS[c.user.connection][1],
            "identity": c.user.user_id.split("|")[-1],
            "stats": {"loginsCount": logins},
            "elapsedTime": None,
        },
        {
            "name": "login",
            "flow": "universal-login",
            "initiatedAt": started,
            "completedAt": c.millis - 250,
            "timers": {"rules": c.rng.randrange(1, 9)},
            "user_id": c.user.user_id,
            "user_name": c.user.email,
            "elapsedTime": c.millis - 250 - started,
        },
    ]
    details = {
        "prompts": prompts,
        "initiatedAt": started,
        "completedAt": c.millis - 1,
        "elapsedTime": c.millis - 1 - started,
        "session_id": c.session_id(),
        "stats": {"loginsCount": logins},
    }
    return c.sdk({**c.connection(), **c.app(), **c.who(), "details": details})


def _silent(c: _Context) -> JsonObject:
    details = {"prompts": [], "completedAt": c.millis, "elapsedTime": None}
    details["session_id"] = c.session_id()
    return c.sdk({"connection_id": "", **c.app(), **c.who(), "details": details})


def _exchange(c: _Context) -> JsonObject:
    record: JsonObject = {"connection_id": "", **c.app(), **c.who(), "description": ""}
    record["details"] = {"code": "*" * 42 + _url_text(c.rng, 3)}
    if c.rng.random() < 0.5:
        record["audience"] = f"https://{c.factory.hostname}/userinfo"
        record["scope"] = c.scope(_SCOPE_SETS, 0.5)
    return c.sdk(record)


def _client_credentials(c: _Context) -> JsonObject:
    return {
        "audience": f"https://{c.factory.hostname}/api/v2/",
        **c.app(),
        "connection_id": "",
        "description": "",
        "scope": c.scope(_M2M_SCOPES, 0.8),
        "user_id": "",
        "user_name": "",
    }


def _logout(c: _Context) -> JsonObject:
    details = {
        "return_to": "https://app.example.com",
        "allowed_logout_url": ["https://app.example.com", "http://localhost:3000"],
        "session_id": c.session_id(),
    }
    return {**c.connection(), **c.app(), **c.who(), "details": details}


def _signup(c: _Context) -> JsonObject:
    body = {
        "client_id": c.client.client_id,
        "tenant": c.factory.tenant_name,
        "email": c.user.email,
        "password": "*****",
        "connection": _CONNECTIONS[0][0],
    }
    return c.sdk(
        {**c.connection(), **c.app(), **c.who(), "description": "", "details": {"body": body}}
    )


def _verification(c: _Context) -> JsonObject:
    details = {
        "title": "Email Verification",
        "email": c.user.email,
        "body": {"ticket": _url_text(c.rng, 32), "tenant": c.factory.tenant_name},
        "query": {
            "email": c.user.email,
            "user_id": c.user.user_id,
            "tenant": c.factory.tenant_name,
            "client_id": c.client.client_id,
            "connection": _CONNECTIONS[0][0],
            "idp_user_id": None,
            "resultUrl": None,
            "includeEmailInRedirect": False,
        },
    }
    description = "Your email was verified. You can continue using the application."
    return {**c.connection(), **c.app(), **c.who(), "description": description, "details": details}


def _user_change(c: _Context) -> JsonObject:
    return {**c.connection(), **c.app(), **c.who(), "details": {"body": {"email": c.user.email}}}


def _login_failure(c: _Context) -> JsonObject:
    template, error_type, code = c.rng.choice(_LOGIN_ERRORS)
    message = template.format(cb="http://localhost:3000/callback", client=c.client.client_id)
    details = {
        "body": {},
        "qs": {
            "client_id": c.client.client_id,
            "redirect_uri": "http://localhost:3000/callback",
            "response_type": "code",
            "scope": "openid profile",
            "state": _url_text(c.rng, 43),
        },
        "error": {
            "message": message,
            "oauthError": message,
            "payload": {"message": message, "code": code, "status": 403, "authorized": []},
            "type": error_type,
        },
    }
    record: JsonObject = {"connection_id": "", "description": message, "details": details}
    # Some failed logins name no application at all: Auth0 then sends a null client_id.
    record["client_id"] = None if c.rng.random() < 0.3 else c.client.client_id
    return c.sdk(record)


def _password_failure(c: _Context) -> JsonObject:
    record = {**c.connection(), **c.app(), **c.who()}
    record["details"] = {"error": {"message": "Wrong email or password."}}
    if c.rng.random() < 0.5:
        record["user_id"] = ""  # unknown user (fu) or not resolved yet
    return c.sdk(record)


def _signup_failure(c: _Context) -> JsonObject:
    rules = [
        {"message": "At least %d characters in length", "format": [8],
         "code": "lengthAtLeast", "verified": c.rng.random() < 0.5},
        {"message": "Contain at least %d of the following %d types of characters:",
         "code": "containsAtLeast", "format": [3, 4], "verified": False},
    ]  # fmt: skip
    details = {
        "description": {"rules": rules, "verified": False},
        "body": {"email": c.user.email, "password": "*****", "tenant": c.factory.tenant_name},
    }
    return {**c.connection(), **c.app(), **c.who(), "user_id": "", "details": details}


def _silent_failure(c: _Context) -> JsonObject:
    details = {
        "body": {},
        "qs": {"client_id": c.client.client_id, "prompt": "none", "response_mode": "web_message"},
        "error": {"message": "Login required", "oauthError": "login_required", "type": "oauth"},
    }
    return {"connection_id": "", **c.app(), "details": details, "user_id": "", "user_name": ""}


def _exchange_failure(c: _Context) -> JsonObject:
    record: JsonObject = {"connection_id": "", **c.app(), **c.who(), "details": {}}
    if c.rng.random() < 0.4:
        record["user_id"] = ""
        record["user_name"] = ""
    return record


def _notification_failure(c: _Context) -> JsonObject:
    details = {
        "email_type": "verify_email",
        "to": c.user.email,
        "error": "the domain is blacklisted",
    }
    record = {"connection": _CONNECTIONS[0][0], "connection_id": "", **c.app(), "details": details}
    record["description"] = f"To: {c.user.email}"
    return record


def _management_request(c: _Context, method: str, path: str) -> JsonObject:
    return {
        "method": method,
        "path": path,
        "query": {},
        "userAgent": _USER_AGENTS[c.agent],
        "channel": "https://manage.auth0.com/" if c.rng.random() < 0.5 else "api",
        "ip": c.factory.ip_address(c.rng.randrange(c.factory.ip_count)),
        "auth": {
            "user": {"user_id": c.user.user_id, "name": c.user.email, "email": c.user.email},
            "strategy": "jwt",
            "credentials": {"jti": f"{c.rng.getrandbits(128):032x}"},
        },
    }


def _management_write(c: _Context) -> JsonObject:
    description, method, path, status = c.rng.choice(_MANAGEMENT_WRITES)
    path = path.format(user=c.user.user_id, client=c.client.client_id)
    request = _management_request(c, method, path)
    request["body"] = {"name": "Backfill target", "type": "http"} if "log-streams" in path else {}
    response = {"statusCode": status, "body": {} if status == 204 else {"id": path.split("/")[-1]}}
    record: JsonObject = {"client_id": c.client.client_id, "client_name": ""}
    record["description"] = description
    record["details"] = {"request": request, "response": response}
    record["user_id"] = c.user.user_id
    return record


def _management_read(c: _Context) -> JsonObject:
    description, path = c.rng.choice(_MANAGEMENT_READS)
    connection = c.factory.connection_ids[c.user.connection]
    path = path.format(client=c.client.client_id, connection=connection)
    request = _management_request(c, "get", path)
    details = {"request": request, "response": {"statusCode": 200, "body": {}}}
    return {**c.app(), "description": description, "details": details, "user_id": c.user.user_id}


def _guardian_tenant(c: _Context) -> JsonObject:
    request = {
        "auth": {
            "scopes": ["read:factors", "update:factors", "update:tenant_settings"],
            "strategy": "jwt_api2_internal_token",
            "subject": c.user.user_id,
        },
        "body": {},
        "ip": c.factory.ip_address(c.rng.randrange(c.factory.ip_count)),
        "method": "PATCH",
        "path": "/api/tenants/settings",
        "query": {},
    }
    response: JsonObject = {"body": {"friendly_name": "[REDACTED]", "name": c.factory.tenant_name}}
    response["statusCode"] = 200
    return {"details": {"request": request, "response": response}, "user_id": c.user.user_id}


def _mfa(c: _Context) -> JsonObject:
    details = {"authenticator": {"type": c.rng.choice(("sms", "otp", "push", "webauthn"))}}
    return {**c.connection(), **c.app(), **c.who(), "details": details}


def _passwordless(c: _Context) -> JsonObject:
    details = {"link": False, "email": c.user.email}
    return {"connection": "email", "connection_id": c.factory.connection_ids[3], **c.app(),
            **c.who(), "details": details}  # fmt: skip


def _phone_limit(c: _Context) -> JsonObject:
    details = {"delivery_method": c.rng.choice(("sms", "voice")), "type": "otp"}
    return {"connection_id": "", **c.app(), **c.who(), "details": details}


def _generic(c: _Context) -> JsonObject:
    return {"connection_id": "", **c.app(), **c.who(), "details": {}}


_FAMILIES = {
    "login": _login,
    "silent": _silent,
    "exchange": _exchange,
    "client_credentials": _client_credentials,
    "logout": _logout,
    "signup": _signup,
    "verification": _verification,
    "user_change": _user_change,
    "login_failure": _login_failure,
    "password_failure": _password_failure,
    "signup_failure": _signup_failure,
    "silent_failure": _silent_failure,
    "exchange_failure": _exchange_failure,
    "notification_failure": _notification_failure,
    "management_write": _management_write,
    "management_read": _management_read,
    "guardian_tenant": _guardian_tenant,
    "mfa": _mfa,
    "passwordless": _passwordless,
    "phone_limit": _phone_limit,
    "generic": _generic,
}
