"""The sandbox's secrets, all derived from the seed so a run can be reproduced, and their checks.

Auth0: two machine-to-machine clients (one with `read:logs read:log_streams`, one without
`read:logs`) and access tokens shaped like Auth0's JWTs (HS256 here: only this process checks
them). Tinybird: admin, append-only and read-only tokens for the workspace, and a well-formed
token of another region, made as Tinybird makes static tokens: `p.` + the unpadded base64url of
`{"u": <workspace>, "id": <token id>, "host": <region>}` + `.` + an HMAC-SHA256 signature. As on
Tinybird, the payload says which workspace and region a token belongs to, not what it may do:
its scopes are kept on the server side, by token id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

SANDBOX_REGION: str | None = None
"""The `host` of the sandbox's own tokens: none, as in Tinybird Local's (`tb local
generate-tokens`), the other Tinybird that runs on a developer's machine."""
OTHER_REGION = "us_east"
OTHER_REGION_HOST = "https://api.us-east.tinybird.co"
"""A real region key (GCP us-east4), as Tinybird's tokens name it, and that region's API host."""


def _derive(seed: int, label: str, length: int) -> str:
    digest = hashlib.sha256(f"auth0-backfill-sandbox:{seed}:{label}".encode()).digest()
    text = base64.b64encode(digest * 2, altchars=b"xy").decode("ascii")
    return text[:length]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Auth0Client:
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]


class TokenProblem(Enum):
    MISSING = "missing"
    INVALID = "invalid"
    EXPIRED = "expired"


@dataclass(frozen=True)
class AccessGrant:
    client_id: str
    scopes: frozenset[str]
    expires_at: int


class Auth0Credentials:
    def __init__(self, seed: int) -> None:
        self.client = Auth0Client(
            _derive(seed, "client", 32),
            _derive(seed, "secret", 64),
            ("read:logs", "read:log_streams"),
        )
        self.limited_client = Auth0Client(
            _derive(seed, "limited-client", 32),
            _derive(seed, "limited-secret", 64),
            ("read:log_streams",),
        )
        self._key = hashlib.sha256(f"jwt:{seed}".encode()).digest()

    def client_for(self, client_id: str, client_secret: str) -> Auth0Client | None:
        for client in (self.client, self.limited_client):
            if hmac.compare_digest(client.client_id, client_id) and hmac.compare_digest(
                client.client_secret, client_secret
            ):
                return client
        return None

    def mint(self, client: Auth0Client, audience: str, issuer: str, ttl_seconds: int) -> str:
        issued = int(time.time())
        header = {"alg": "HS256", "typ": "JWT", "kid": "sandbox"}
        claims = {
            "iss": issuer,
            "sub": f"{client.client_id}@clients",
            "aud": audience,
            "iat": issued,
            "exp": issued + ttl_seconds,
            "scope": " ".join(client.scopes),
            "gty": "client-credentials",
            "azp": client.client_id,
        }
        signing_input = f"{_b64url(_compact(header))}.{_b64url(_compact(claims))}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(signature)}"

    def check(self, authorization: str | None) -> AccessGrant | TokenProblem:
        if not authorization:
            return TokenProblem.MISSING
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return TokenProblem.INVALID
        signing_input, _, signature = token.strip().rpartition(".")
        expected = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        try:
            valid = hmac.compare_digest(_unb64url(signature), expected)
            claims: dict[str, Any] = json.loads(_unb64url(signing_input.split(".")[1]))
        except ValueError:
            return TokenProblem.INVALID
        if not valid:
            return TokenProblem.INVALID
        if int(claims["exp"]) <= time.time():
            return TokenProblem.EXPIRED
        return AccessGrant(
            str(claims["azp"]), frozenset(str(claims["scope"]).split()), claims["exp"]
        )


def _compact(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


class TinybirdRole(Enum):
    ADMIN = "admin"
    APPEND = "append"
    READ = "read"


@dataclass(frozen=True)
class TinybirdToken:
    role: TinybirdRole
    datasource: str | None
    """The data source an APPEND or READ token is scoped to; None for admin."""
    region: str | None


class TinybirdCredentials:
    def __init__(self, seed: int, datasource: str) -> None:
        self._key = hashlib.sha256(f"tinybird:{seed}".encode()).digest()
        self._seed = seed
        self._workspace = _uuid(seed, "workspace")
        self._grants: dict[str, TinybirdToken] = {}
        self.admin = self._mint("admin", TinybirdToken(TinybirdRole.ADMIN, None, SANDBOX_REGION))
        self.append = self._mint(
            "append", TinybirdToken(TinybirdRole.APPEND, datasource, SANDBOX_REGION)
        )
        self.read = self._mint("read", TinybirdToken(TinybirdRole.READ, datasource, SANDBOX_REGION))
        self.other_region = self._mint(
            "admin-elsewhere", TinybirdToken(TinybirdRole.ADMIN, None, OTHER_REGION)
        )

    def _mint(self, name: str, grant: TinybirdToken) -> str:
        token_id = _uuid(self._seed, f"token:{name}")
        self._grants[token_id] = grant
        # json.dumps with its default separators, as Tinybird's CLI writes the payload.
        payload = {"u": self._workspace, "id": token_id, "host": grant.region}
        body = _b64url(json.dumps(payload).encode())
        signature = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return f"p.{body}.{_b64url(signature)}"

    def check(self, token: str | None) -> TinybirdToken | None:
        """The token's rights, or None when it is not one of this sandbox's tokens."""
        if not token or not token.startswith("p.") or token.count(".") != 2:
            return None
        _, body, signature = token.split(".")
        expected = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(_unb64url(signature), expected):
                return None
            payload: dict[str, Any] = json.loads(_unb64url(body))
        except ValueError:
            return None
        return self._grants.get(str(payload.get("id")))


def _uuid(seed: int, label: str) -> str:
    """A UUID-shaped id (Tinybird's workspace and token ids are UUIDs), derived from the seed."""
    digest = hashlib.sha256(f"auth0-backfill-sandbox:{seed}:{label}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
