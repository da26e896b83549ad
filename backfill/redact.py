"""Secrets out of everything the job says: one function, ``redact``, used by every error message
(``BackfillError`` applies it to its message and hint) and by both log formatters.

It hides what looks like a secret in any text that may repeat a user's value: ``token=...`` and
its kin in a query string or form, the user info of a URL (``https://user:pass@host``), a
``Bearer`` credential, and the exact secrets this process read (``register``), wherever they
appear.
"""

from __future__ import annotations

import re
import threading

HIDDEN = "***"

# Query or form parameters that carry a secret: token, access_token, read_token, client_secret ...
_SECRET_PARAMETER = re.compile(
    r"(?i)\b([a-z_]*(?:token|secret|password|passwd|api_?key|signature|sig))=([^&\s'\"#,;)]+)"
)
_USER_INFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"?#]+@")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+")
# Shorter values would hide ordinary words; real tokens and client secrets are far longer.
_MIN_REGISTERED = 8

_known: set[str] = set()
_lock = threading.Lock()


def register(secret: str) -> None:
    """Hide this exact value (and its ``repr`` form) wherever it appears from now on."""
    if len(secret) < _MIN_REGISTERED:
        return
    with _lock:
        _known.add(secret)
        escaped = repr(secret)[1:-1]
        if escaped != secret:
            _known.add(escaped)


def redact(text: str) -> str:
    """``text`` with every secret it may hold replaced by ``***``."""
    if not text:
        return text
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, HIDDEN)
    text = _SECRET_PARAMETER.sub(rf"\1={HIDDEN}", text)
    text = _USER_INFO.sub(rf"\1{HIDDEN}@", text)
    return _BEARER.sub(rf"\1{HIDDEN}", text)
