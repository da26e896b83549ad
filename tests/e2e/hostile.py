"""A small hostile server on 127.0.0.1, for what a faithful sandbox never does: answer one byte
every half second, accept and never answer, answer HTML error pages; and a port where nothing
listens (a refused connection). It keeps every request line it read, so a test can check that
no secret travelled in a URL."""

from __future__ import annotations

import socket
import threading
import time

HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)


class Hostile:
    """``mode``: ``trickle`` (a whole JSON answer, one byte every ``pause`` seconds, headers
    included), ``hang`` (reads the request, never answers) or ``html`` (a 502 HTML page)."""

    def __init__(self, mode: str, *, pause: float = 0.5) -> None:
        self.mode = mode
        self.pause = pause
        self.request_lines: list[str] = []
        self.connections = 0
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(1.0)
            try:
                head = self._read_head(connection)
            except OSError:
                return
            if head is None:
                return
            self.request_lines.append(head.split("\r\n", 1)[0])
            try:
                if self.mode == "hang":
                    self._closing.wait()
                elif self.mode == "html":
                    connection.sendall(
                        b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\n"
                        b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                        % len(HTML_PAGE)
                        + HTML_PAGE
                    )
                else:
                    body = b'{"access_token": "x", "expires_in": 86400}'
                    answer = (
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body) + body
                    )
                    for byte in answer:
                        if self._closing.wait(self.pause):
                            return
                        connection.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up: what a hostile server wants to see

    def _read_head(self, connection: socket.socket) -> str | None:
        data = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in data:
            if time.monotonic() > deadline or self._closing.is_set():
                return None
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
        return data.decode("latin-1")

    def close(self) -> None:
        self._closing.set()
        self._listener.close()
        self._thread.join(5)


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
