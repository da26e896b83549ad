"""The lean GET client against a scripted server on 127.0.0.1: httpx's answer shape and errors."""

from __future__ import annotations

import datetime
import gzip
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from backfill.lean_http import LeanGetClient

Reply = Callable[[str, dict[str, str]], bytes | None]  # request line, headers -> raw bytes


def answer(body: bytes, *, status: str = "200 OK", extra: str = "", close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


class ScriptedServer:
    """Reads requests off each connection and writes what ``reply`` returns (None: hang up).

    After answering ``GET /then-hang-up`` it closes the connection without saying so.
    """

    def __init__(self, reply: Reply, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[tuple[int, str, dict[str, str]]] = []  # connection, line, headers
        self.connections = 0
        self.open_connections: set[int] = set()
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                server.connections += 1
                number = server.connections
                server.open_connections.add(number)
                try:
                    while True:
                        line = self.rfile.readline().decode().strip()
                        if not line:
                            return  # the client closed the connection
                        headers: dict[str, str] = {}
                        while header := self.rfile.readline().decode().strip():
                            name, _, value = header.partition(":")
                            headers[name.strip().lower()] = value.strip()
                        server.requests.append((number, line, headers))
                        raw = reply(line, headers)
                        if raw is None:
                            return
                        self.wfile.write(raw)
                        self.wfile.flush()
                        if b"Connection: close" in raw.split(b"\r\n\r\n")[0]:
                            return
                        if line.startswith("GET /then-hang-up"):
                            return  # unannounced, as an idle timeout on the server does
                finally:
                    server.open_connections.discard(number)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        # The certificate names localhost; plain HTTP stays on the address.
        where = "https://localhost" if tls else "http://127.0.0.1"
        self.origin = f"{where}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(reply: Reply, tls: ssl.SSLContext | None = None) -> ScriptedServer:
        servers.append(ScriptedServer(reply, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_answers_like_httpx_over_one_keepalive_connection(serve) -> None:
    server = serve(lambda line, headers: answer(b"[]", extra="X-RateLimit-Remaining: 49\r\n"))
    with LeanGetClient(server.origin, timeout=5, headers={"User-Agent": "backfill/t"}) as client:
        for _ in range(3):
            got = client.get(
                server.origin + "/api/v2/logs",
                params={"q": "type:s AND date:[2026-11-01 TO *]", "take": 100},
                headers={"Authorization": "Bearer secret"},
            )
            assert (got.status_code, got.reason_phrase, got.text) == (200, "OK", "[]")
            assert got.headers["x-ratelimit-remaining"] == "49"  # names lower-cased
    _, line, headers = server.requests[0]
    assert line == (
        "GET /api/v2/logs?q=type%3As%20AND%20date%3A%5B2026-11-01%20TO%20%2A%5D&take=100 HTTP/1.1"
    )
    assert headers["authorization"] == "Bearer secret"
    assert headers["user-agent"] == "backfill/t"
    assert headers["accept-encoding"] == "gzip"
    assert [number for number, _, _ in server.requests] == [1, 1, 1]  # kept alive


def test_gzip_bodies_are_decoded(serve) -> None:
    body = gzip.compress(b'[{"log_id": "1"}]')
    server = serve(lambda line, headers: answer(body, extra="Content-Encoding: gzip\r\n"))
    with LeanGetClient(server.origin, timeout=5) as client:
        got = client.get(server.origin + "/api/v2/logs")
    assert got.content == b'[{"log_id": "1"}]'


@pytest.mark.parametrize("first", ["/then-hang-up", "/announced-close"])
def test_a_connection_the_server_closed_while_idle_is_replaced(serve, first: str) -> None:
    server = serve(lambda line, headers: answer(b"{}", close=line.startswith("GET /announced")))
    with LeanGetClient(server.origin, timeout=5) as client:
        assert client.get(server.origin + first).status_code == 200
        time.sleep(0.2)  # the server has hung up by now
        assert client.get(server.origin + "/second").status_code == 200
    assert [number for number, _, _ in server.requests] == [1, 2]


def test_each_thread_has_its_own_connection_and_close_ends_them_all(serve) -> None:
    server = serve(lambda line, headers: answer(b"{}"))
    client = LeanGetClient(server.origin, timeout=5)
    threads = [threading.Thread(target=client.get, args=(server.origin + "/x",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert server.connections == 3
    client.close()
    deadline = time.monotonic() + 5
    while server.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.open_connections


def hang_up(line: str, headers: dict[str, str]) -> bytes | None:
    return None


def truncate(line: str, headers: dict[str, str]) -> bytes | None:
    whole = answer(b'[{"log_id": "1"}, {"log_id": "2"}]', close=True)
    return whole[:-10]  # Content-Length promises more than is sent before the hang-up


def stall(line: str, headers: dict[str, str]) -> bytes | None:
    time.sleep(1.5)
    return answer(b"[]")


def bad_gzip(line: str, headers: dict[str, str]) -> bytes | None:
    return answer(b"not gzip at all", extra="Content-Encoding: gzip\r\n")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (hang_up, httpx.RemoteProtocolError),
        (truncate, httpx.RemoteProtocolError),
        (stall, httpx.ReadTimeout),
        (bad_gzip, httpx.RemoteProtocolError),
    ],
    ids=["closed-without-answer", "truncated-body", "no-answer-in-time", "bad-gzip"],
)
def test_network_failures_are_httpx_transport_errors(serve, reply: Reply, expected: type) -> None:
    server = serve(reply)
    with LeanGetClient(server.origin, timeout=0.5) as client, pytest.raises(expected) as raised:
        client.get(server.origin + "/api/v2/logs", headers={"Authorization": "Bearer secret"})
    assert isinstance(raised.value, httpx.TransportError)
    assert "secret" not in str(raised.value)


def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    client = LeanGetClient(f"http://127.0.0.1:{port}", timeout=2)
    with client, pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{port}/api/v2/logs")


def test_after_a_failure_the_next_request_uses_a_fresh_connection(serve) -> None:
    replies = iter([None, answer(b"[]")])
    server = serve(lambda line, headers: next(replies))
    with LeanGetClient(server.origin, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(server.origin + "/a")
        assert client.get(server.origin + "/b").content == b"[]"
    assert [number for number, _, _ in server.requests] == [1, 2]


def test_urls_of_another_origin_are_refused() -> None:
    client = LeanGetClient("https://tenant.auth0.com", timeout=5)
    with pytest.raises(ValueError, match="not under"):
        client.get("https://elsewhere.example/api/v2/logs")


def test_declines_an_origin_the_environment_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    origin = "https://tenant.auth0.com"
    assert LeanGetClient.for_origin(origin, timeout=5) is not None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert LeanGetClient.for_origin(origin, timeout=5) is None  # httpx honours the proxy
    monkeypatch.setenv("NO_PROXY", "tenant.auth0.com")
    assert LeanGetClient.for_origin(origin, timeout=5) is not None
    assert LeanGetClient.for_origin("ftp://tenant.auth0.com", timeout=5) is None


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for ``localhost`` and the certificate a client must trust for it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def test_https_verifies_the_server_as_httpx_would(
    serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, certificate = self_signed(tmp_path)
    server = serve(lambda line, headers: answer(b"[]"), tls)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with LeanGetClient(server.origin, timeout=5) as client, pytest.raises(httpx.ConnectError):
        client.get(server.origin + "/api/v2/logs")  # a certificate nobody vouches for
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # httpx's way to trust another CA
    with LeanGetClient(server.origin, timeout=5) as client:
        assert client.get(server.origin + "/api/v2/logs").content == b"[]"
