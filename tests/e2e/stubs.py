"""Misbehaving services for faults a faithful sandbox never produces (Auth0 never sends a
record without a log_id): tiny HTTP servers on 127.0.0.1 with scripted answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]  # status, JSON-able body (or bytes
# for a raw body), and headers


class StubServer:
    """Answers each request with ``route(method, path, query)``."""

    def __init__(self, route: Callable[[str, str, dict[str, list[str]]], Answer]) -> None:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                parts = urlsplit(self.path)
                answer = route(self.command, parts.path, parse_qs(parts.query))
                status, body = answer[0], answer[1]
                stub.requests.append((self.command, parts.path))
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in (answer[2] if len(answer) > 2 else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def auth0_returning(logs_answer: Callable[[dict[str, list[str]]], Answer]) -> StubServer:
    """An Auth0 whose token endpoint works and whose /api/v2/logs answers as scripted."""

    def route(method: str, path: str, query: dict[str, list[str]]) -> Answer:
        if path == "/oauth/token":
            return 200, {"access_token": "stub-token", "expires_in": 86400, "token_type": "Bearer"}
        if path == "/api/v2/logs":
            return logs_answer(query)
        return 404, {"statusCode": 404, "error": "Not Found"}

    return StubServer(route)
