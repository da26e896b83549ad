"""Threaded HTTP/1.1 keep-alive server shared by both emulators.

A `Service` answers requests; this module does what is the same for both: reading bodies, framing
answers (always a Content-Length, or chunked for streams), the artificial latency, the injected
faults and their timing around the service's work, request counters, and a shutdown that ends
every connection thread. Paths under `/__sandbox/` are the control plane: no latency, no faults.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from backfill.sandbox.faults import Fault, FaultSchedule
from backfill.sandbox.latency import Latency
from backfill.sandbox.stats import Counters

CONTROL_PREFIX = "/__sandbox/"
logger = logging.getLogger(__name__)

_HTML_ERRORS = {
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Temporarily Unavailable",
}


class BadRequestBody(ValueError):
    """The request's framing (Content-Length, chunks) could not be read."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    """Header names lower-cased."""
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: Iterable[bytes] | None = None
    """When set, the body is streamed with chunked transfer encoding (big NDJSON exports)."""


def json_body(payload: Any) -> bytes:
    """Compact UTF-8 JSON. orjson writes a page of logs several times faster than json, which
    keeps the emulators' CPU small next to the job's when many tenants are served at once;
    json takes what orjson refuses (integers beyond 64 bits, non-string keys, lone surrogates)."""
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class Admission:
    """What a service decides at arrival: a refusal, or headers for the eventual answer."""

    refusal: Response | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


ADMITTED = Admission()


def json_response(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, json_body(payload), headers=list(headers))


def html_error(status: int) -> Response:
    title = _HTML_ERRORS.get(status, f"{status} Error")
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(status, page.encode(), content_type="text/html")


def json_payload(request: Request) -> dict[str, Any]:
    """A control payload: a JSON object, or an empty body meaning `{}`. Raises ValueError."""
    if not request.body.strip():
        return {}
    payload = json.loads(request.body)
    if not isinstance(payload, dict):
        raise ValueError("the payload must be a JSON object")
    return payload


class Service(ABC):
    """One emulated API. The server calls `admit`, then `handle`, around latency and faults."""

    def __init__(self, faults: FaultSchedule, latency: Latency, stopping: threading.Event) -> None:
        self.faults = faults
        self.latency = latency
        self.stopping = stopping
        self.counters = Counters()
        self._paused = threading.local()

    @abstractmethod
    def handle(self, request: Request) -> Response: ...

    @abstractmethod
    def control(self, request: Request) -> Response: ...

    def route_name(self, request: Request) -> str:
        """The key requests are counted under (path templates, not raw paths)."""
        return request.path

    def admit(self, request: Request) -> Admission:
        """Decided at arrival, before latency: rate limits and their headers."""
        return ADMITTED

    def rate_limited_response(self, request: Request) -> Response:
        """The answer an injected `429` fault gives; services add their own headers."""
        return json_response(429, {"error": "Too many requests"})

    def pause(self, seconds: float) -> None:
        """Sleep in the handler thread; a shutdown cuts it short."""
        if seconds > 0:
            self._paused.seconds = self.paused_seconds() + seconds
            self.stopping.wait(seconds)

    def paused_seconds(self) -> float:
        """The pauses asked for in this thread's current exchange (latencies, slow faults)."""
        paused: float = getattr(self._paused, "seconds", 0.0)
        return paused

    def timed_exchange(self, started: float) -> None:
        """Count how long an answer took beyond the pauses it asked for: the emulator's own
        cost, waits for the GIL and for chdb included (`answer_overhead_us` / `answers_timed` in
        the stats). Small next to the latencies, or the emulator is what a benchmark measures."""
        overhead = time.monotonic() - started - self.paused_seconds()
        self._paused.seconds = 0.0
        self.counters.add("answers_timed")
        self.counters.add("answer_overhead_us", max(0, round(overhead * 1_000_000)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox"
    sys_version = ""
    # Buffered writes send headers and body in one segment; with TCP_NODELAY this avoids the
    # Nagle / delayed-ACK stall of small split writes on keep-alive connections.
    wbufsize = 1 << 16
    timeout = 300
    server: SandboxHTTPServer
    _started = 0.0  # when the exchange being answered arrived (time.monotonic)

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        # The peer may be gone, or we reset the connection on purpose.
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._started = time.monotonic()
        try:
            request = self._read_request()
        except BadRequestBody as error:
            self.close_connection = True
            self._send(json_response(400, {"error": str(error)}))
            return
        service = self.server.service
        if request.path.startswith(CONTROL_PREFIX):
            self._send(self._safely(service.control, request))
            return
        route = service.route_name(request)
        admission = service.admit(request)
        if admission.refusal is not None:
            self._finish_exchange(route, admission.refusal)
            return
        fault = service.faults.draw()
        service.pause(service.latency.sample())
        if fault is not None and not fault.after_work and self._inject(route, fault, request, None):
            return
        response = self._safely(service.handle, request)
        response.headers.extend(admission.headers)
        if fault is not None and fault.after_work and self._inject(route, fault, request, response):
            return
        self._finish_exchange(route, response)

    def _safely(self, answer: Any, request: Request) -> Response:
        try:
            response: Response = answer(request)
        except Exception as error:
            logger.exception("sandbox handler failed on %s %s", request.method, request.path)
            return json_response(500, {"error": f"sandbox internal error: {error}"})
        return response

    def _inject(self, route: str, fault: Fault, request: Request, done: Response | None) -> bool:
        """Apply a fault; True when it ended the exchange."""
        service = self.server.service
        service.counters.add_to("faults", fault.kind)
        if fault.after_work:
            service.counters.add_to("faults_after_work", fault.kind)
        if fault.kind == "slow":
            service.pause(service.faults.settings.slow_seconds)
            return False
        if fault.kind == "reset":
            service.timed_exchange(self._started)
            service.counters.request(route, "reset")
            self._reset_connection()
            return True
        if fault.kind == "truncated" and done is not None:
            cut = done.body if done.chunks is None else b"".join(done.chunks)
            truncated = Response(done.status, cut[: max(1, len(cut) // 2)], done.content_type)
            truncated.headers = list(done.headers)
            self._finish_exchange(route, truncated)
            return True
        if fault.kind == "429":
            self._finish_exchange(route, service.rate_limited_response(request))
            return True
        self._finish_exchange(route, html_error(int(fault.kind)))
        return True

    def _finish_exchange(self, route: str, response: Response) -> None:
        # Counted before the answer leaves, so a client that reads the stats next sees it.
        self.server.service.timed_exchange(self._started)
        self.server.service.counters.request(route, str(response.status))
        self._send(response)

    def _read_request(self) -> Request:
        parts = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        return Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            body=self._read_body(headers),
        )

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length_text = headers.get("content-length", "0").strip() or "0"
        if not length_text.isdigit():
            raise BadRequestBody(f"invalid Content-Length {length_text!r}")
        length = int(length_text)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise BadRequestBody("the body is shorter than its Content-Length")
        return body

    def _read_chunked(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            size_line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequestBody("malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(pieces)
            pieces.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.chunks is None:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in response.chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _reset_connection(self) -> None:
        """Abortive close: SO_LINGER 0 makes close() send RST instead of FIN."""
        self.close_connection = True
        connection = self.connection
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # File objects made by makefile() hold references that would delay the real close.
        for stream in (self.rfile, self.wfile):
            with contextlib.suppress(OSError):
                stream.close()
        connection.close()
        # The stdlib flushes wfile after the handler returns: give it somewhere harmless to go.
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()


class SandboxHTTPServer(ThreadingHTTPServer):
    """One thread per connection; `close()` ends them all and joins them."""

    block_on_close = False  # close() joins the connection threads itself
    request_queue_size = 128
    close_timeout = 10.0

    def __init__(self, host: str, port: int, service: Service) -> None:
        self.service = service
        # Each connection's thread and socket, registered at accept time so close() misses none.
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (getfqdn): slow and pointless here.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, name: str) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )
        self._thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"{self._thread.name if self._thread else 'sandbox'}-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close(self) -> None:
        """Stop accepting, wake sleeping handlers, end open connections, join their threads."""
        self.service.stopping.set()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        deadline = time.monotonic() + self.close_timeout
        while True:
            with self._connections_lock:
                pending = dict(self._connections)
            if not pending:
                break
            for connection in pending.values():
                with contextlib.suppress(OSError):  # already closed by its handler
                    connection.shutdown(socket.SHUT_RDWR)
            for thread in pending:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                logger.warning("%d sandbox connection threads did not end", len(pending))
                break
        self.server_close()
