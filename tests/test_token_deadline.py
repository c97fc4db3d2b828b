"""``timeout`` bounds a whole token request, whatever the token endpoint does.

A read timeout restarts on every byte, so a server that drips its headers or its body a
few bytes at a time used to hold a token request (and every caller waiting on it, and
the shared-cache lock leases) for as long as it liked. Here real servers on 127.0.0.1
drip for up to 60 s; the call must end long before that, as a timeout, with the
connection cut by the client.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import ipaddress
import os
import select
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import pytest
from conftest import call
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer

from delivery_auth import (
    BackoffPolicy,
    ClientCredentialsAuth,
    TokenEndpointUnavailableError,
    deadline,
)
from delivery_auth.fetch import TokenFetcher

DRIP_FOR = 60.0  # seconds a dripping server keeps going when nobody hangs up
DRIP_EVERY = 0.2


class DripServer:
    """A token endpoint that sends a few bytes every 0.2 s for up to 60 s.

    ``where="headers"`` drips an endless header line, ``"header-lines"`` one complete
    header line at a time; ``where="body"`` sends complete headers announcing a large
    body and drips the body. It stops at once when the
    client hangs up and counts the hang-ups.
    """

    def __init__(
        self, where: str, tls: ssl.SSLContext | None = None, first: bytes | None = None
    ) -> None:
        self.where = where
        self.tls = tls
        self.first = first  # a complete answer to the first request on each connection
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.stopping = threading.Event()
        self.changed = threading.Condition()
        self.connections = 0
        self.hang_ups = 0
        self.gave_up = 0
        self._threads: list[threading.Thread] = []

    @property
    def token_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/token"

    def __enter__(self) -> DripServer:
        acceptor = threading.Thread(target=self._accept, daemon=True)
        acceptor.start()
        self._threads.append(acceptor)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in list(self._threads):
            thread.join()
        self.listener.close()

    def wait_for_hang_ups(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.hang_ups >= count, timeout=30)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.changed:
                self.connections += 1
            worker = threading.Thread(target=self._drip, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    @staticmethod
    def _read_request(conn: socket.socket) -> bool:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            request += chunk
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in request.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        body = request.partition(b"\r\n\r\n")[2]
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return False
            body += chunk
        return True

    def _drip(self, raw: socket.socket) -> None:
        hung_up = self._serve(raw)
        with self.changed:
            if hung_up:
                self.hang_ups += 1
            else:
                self.gave_up += 1
            self.changed.notify_all()

    def _answer(self) -> tuple[bytes, bytes]:
        """The head of the answer and what is dripped after it."""
        if self.where == "headers":  # one endless header line
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Drip: ", b"a"
        if self.where == "header-lines":  # complete header lines, one at a time
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", b"X-Drip: a\r\n"
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100000\r\n\r\n{"access_token": "'
        )
        return head, b"abc"

    def _serve(self, raw: socket.socket) -> bool:
        """Serve one connection: True when the client hung up (at whatever stage: TLS
        handshake, request, drip), False when the server gave up or was stopped."""
        raw.settimeout(DRIP_FOR)
        head, drop = self._answer()
        with raw:
            try:
                conn = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
                with conn:
                    if not self._read_request(conn):
                        return True
                    if self.first is not None:
                        conn.sendall(self.first)
                        if not self._read_request(conn):  # the next request, same connection
                            return True
                    conn.sendall(head)
                    give_up_at = time.monotonic() + DRIP_FOR
                    while time.monotonic() < give_up_at and not self.stopping.is_set():
                        # The select timeout paces the drip (server behaviour, not a wait).
                        readable, _, _ = select.select([conn], [], [], DRIP_EVERY)
                        if readable and not conn.recv(65536):
                            return True
                        conn.sendall(drop)
                    return False
            except TimeoutError:
                return False
            except OSError:  # reset, broken pipe, TLS alert: the client went away
                return True


def fails_within(
    budget: float, server: DripServer, attempts: int, action: Callable[[], object]
) -> BaseException:
    """Run ``action`` in a thread and return what it raised.

    Fails if it is still running after ``budget`` seconds (generous: without a deadline
    every attempt lasts DRIP_FOR), or if the server did not see ``attempts`` hang-ups.
    """
    outcome: list[BaseException] = []

    def runner() -> None:
        try:
            action()
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=runner)
    thread.start()
    thread.join(budget)
    ended_in_time = not thread.is_alive()
    # The client cut every attempt's connection (counted before the server stops).
    hung_up = ended_in_time and server.wait_for_hang_ups(attempts)
    server.stop()  # without the fix, this is what finally ends the call
    thread.join()
    assert ended_in_time, "the token request outlived its timeout"
    assert hung_up
    assert len(outcome) == 1
    return outcome[0]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize(
    ("where", "client", "tls"),
    [
        ("headers", "requests", False),
        ("header-lines", "requests", False),
        ("body", "requests", False),
        ("headers", "httpx-async", False),
        ("body", "httpx-async", False),
        ("headers", "requests", True),  # a TLS socket is cut the same way
        ("body", "httpx2", True),
    ],
)
def test_a_dripping_token_endpoint_is_cut_at_the_timeout(
    where: str,
    client: str,
    tls: bool,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeout, attempts = 0.5, 2
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls_files)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files[0]))  # the token session trusts it
    with DripServer(where, context) as server:
        auth = ClientCredentialsAuth(
            server.token_url,
            CLIENT_ID,
            CLIENT_SECRET,
            timeout=timeout,
            backoff=BackoffPolicy(attempts=attempts, base_delay=0.001, max_delay=0.01),
        )
        api = server.token_url.replace("/token", "/api")
        try:
            error = fails_within(
                timeout * attempts + 20, server, attempts, lambda: call(client, auth, "GET", api)
            )
        finally:
            auth.close()
        assert isinstance(error, TokenEndpointUnavailableError), repr(error)
        assert "within timeout=0.5 s" in str(error)
        assert f"{attempts} attempts" in str(error)
        assert error.status_code is None
        # Every attempt was a timeout that was retried, and the client cut each connection.
        assert (server.connections, server.hang_ups, server.gave_up) == (attempts, attempts, 0)
    assert not [t for t in threading.enumerate() if t.name == "delivery-auth-deadline"]


def test_a_kept_alive_connection_is_cut_too() -> None:
    """The second token request reuses the first one's connection; its deadline covers it."""
    body = b'{"access_token": "first", "token_type": "Bearer", "expires_in": 3600}'
    first = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    with DripServer("body", first=first % (len(body), body)) as server:
        fetcher = TokenFetcher(
            server.token_url,
            CLIENT_ID,
            CLIENT_SECRET,
            timeout=60,  # the good first answer may take its time on a busy machine
            backoff=BackoffPolicy(attempts=1),
        )

        def fetch_twice() -> None:
            assert fetcher.fetch().access_token == "first"
            fetcher.timeout = 0.5  # the dripped second answer must be cut at 0.5 s
            fetcher.fetch()

        try:
            error = fails_within(0.5 + 20, server, 1, fetch_twice)
        finally:
            fetcher.close()
        assert isinstance(error, TokenEndpointUnavailableError), repr(error)
        assert "within timeout=0.5 s" in str(error)
        assert server.connections == 1  # both requests went over one connection


@pytest.mark.parametrize(
    ("scheme", "where"),
    [
        ("http", "body"),  # the proxy forwards the request and drips the answer
        ("https", "headers"),  # the proxy drips its answer to CONNECT
    ],
)
def test_a_token_request_through_a_proxy_is_cut_too(
    scheme: str, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("no_proxy", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    with DripServer(where) as proxy:
        proxy_url = proxy.token_url.removesuffix("/token")
        monkeypatch.setenv(f"{scheme}_proxy", proxy_url)
        # Nothing listens on port 9: only the proxy is ever reached.
        fetcher = TokenFetcher(
            f"{scheme}://127.0.0.1:9/token",
            CLIENT_ID,
            CLIENT_SECRET,
            timeout=0.5,
            backoff=BackoffPolicy(attempts=1),
        )
        try:
            error = fails_within(0.5 + 20, proxy, 1, fetcher.fetch)
        finally:
            fetcher.close()
        assert isinstance(error, TokenEndpointUnavailableError), repr(error)
        assert "within timeout=0.5 s" in str(error)
        assert proxy.connections == 1


@pytest.mark.parametrize(
    ("timeout", "budget"),
    [(0.5, 0.5), (3, 3.0), ((1, 2.5), 3.5), (None, None), ((1, None), None), (True, None)],
)
def test_the_budget_follows_requests_timeout_forms(timeout: object, budget: float | None) -> None:
    assert deadline._total(timeout) == budget


@pytest.fixture
def token_server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


def client_descriptors(port: int) -> int:
    """Descriptors this process holds on TCP sockets connected to 127.0.0.1:``port``
    (a duplicated descriptor of one socket counts again)."""
    inodes = set()
    with open("/proc/net/tcp") as table:
        for row in list(table)[1:]:
            fields = row.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port:  # rem_address
                inodes.add(f"socket:[{fields[9]}]")
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(f"/proc/self/fd/{fd}") in inodes
    return count


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads /proc")
def test_the_deadline_leaks_no_thread_and_no_descriptor(token_server: LoopbackServer) -> None:
    port = token_server.server_address[1]
    fetcher = TokenFetcher(token_server.token_url, CLIENT_ID, CLIENT_SECRET, timeout=60)
    try:
        fetcher.fetch()  # opens the keep-alive connection that the next fetches reuse
        assert client_descriptors(port) == 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)  # an unclosed socket says so
            for _ in range(20):
                fetcher.fetch()
            gc.collect()
        assert client_descriptors(port) == 1  # still the one connection, no stray copies
    finally:
        fetcher.close()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert client_descriptors(port) == 0
    assert len(token_server.state.token_requests) == 21
    assert not [t for t in threading.enumerate() if t.name == "delivery-auth-deadline"]


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_dripping_device_code_endpoint_is_cut_at_the_timeout(where: str) -> None:
    """Yandex's device login asks for a code before any token request: same deadline."""
    from delivery_auth.errors import DeliveryAuthError
    from delivery_auth.yandex import device_login

    with DripServer(where) as server:
        oauth_url = server.token_url.removesuffix("/token")
        error = fails_within(
            0.5 + 20,
            server,
            1,
            lambda: device_login(
                "0123456789abcdef0123456789abcdef",
                "secret",
                oauth_url=oauth_url,
                timeout=0.5,
                on_code=lambda code: None,
            ),
        )
    assert isinstance(error, DeliveryAuthError), repr(error)
    assert "Could not reach" in str(error)
    assert "DeadlineExceeded" in str(error)
