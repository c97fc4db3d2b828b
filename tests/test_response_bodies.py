"""Response bodies through the auth (issue 10, C.9 and C.10), with every client against a
loopback Delivery Tracker (the emulator's page, behind a keep-alive server that can hold a
scripted body back).

The detector may read a body only to judge it, and at most ``max_body`` bytes of it:

- a declared ``Content-Length`` over ``max_body`` is never read by the auth;
- a body of unknown length is peeked (at most ``max_body`` + one read); when it ends
  within ``max_body`` it is judged, otherwise it is handed back unjudged;
- either way the user receives every byte, and a streamed response stays streamable.

"Never read" is shown without a clock: the server sends the headers (and the part of the
body the auth may peek at), then holds the rest back until the test opens a gate, which it
does only after the client call has returned. An auth that read further would still be
waiting for those bytes; the call returning at all is the proof.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import gzip
import hashlib
import json
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import httpx2
import pytest
import requests
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from emulated import UNAUTHENTICATED_SECOND, graphql_errors
from loopback import Reply, Seen, _read_body
from werkzeug.test import Client

from delivery_auth._peek import aread_httpx_body, read_httpx_body
from delivery_auth.emulator import CREDENTIALS, EmulatorApp, EmulatorState
from delivery_auth.flow import (
    DEFAULT_MAX_BODY,
    StatusFailureDetector,
    body_limit,
    declared_length,
)
from delivery_auth.providers import DeliveryTrackerAuth, GraphQLFailureDetector

QUERY = {"query": "query { carriers(first: 1) { edges { node { id } } } }"}
JSON = {"Content-Type": "application/json"}
LIMIT = 1024 * 1024  # the detector's default max_body
#: A valid GraphQL answer of 8 MiB whose error says UNAUTHENTICATED: judged, it would be
#: a failure; it is over the limit, so it must never be judged (nor retried).
BIG = (
    b'{"data": {"rows": "'
    + b"tracking-row;" * (8 * LIMIT // 13)
    + b'"}, "errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}'
)
UNAUTHENTICATED = json.dumps(UNAUTHENTICATED_SECOND).encode()
#: The emulator's answers to QUERY and to a track(...) query.
CARRIERS = {
    "data": {"carriers": {"edges": [{"node": {"id": "kr.cjlogistics", "name": "CJ Logistics"}}]}}
}
TRACKED = {
    "data": {
        "track": {
            "lastEvent": {"time": "2024-06-01T09:30:00+09:00", "status": {"code": "DELIVERED"}}
        }
    }
}
OK = json.dumps(CARRIERS).encode()
CLIENT_ID = CREDENTIALS["tracker"].client_id
CLIENT_SECRET = CREDENTIALS["tracker"].client_secret


@functools.cache
def inflating_body() -> bytes:
    """32 MiB of GraphQL JSON in a few dozen KiB of gzip: far under max_body on the wire,
    far over it decoded. The auth may decode about max_body of it, not all of it."""
    decoded = (
        b'{"data": "'
        + b"x" * (32 * LIMIT)
        + b'", "errors": [{"extensions": '
        + (b'{"code": "UNAUTHENTICATED"}}]}')
    )
    compressed = gzip.compress(decoded, 6)
    assert len(compressed) < LIMIT // 8
    return compressed


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the server ------------------------------------------------------------------------


@dataclass
class Streamed:
    """A scripted answer written in 64 KiB pieces: the first ``held`` bytes of the body at
    once, the rest only after ``gate`` is set (at once when there is no gate)."""

    status: int
    body: bytes
    headers: dict[str, str]
    chunked: bool
    held: int = 0
    gate: threading.Event | None = None


class _StreamingHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: a scripted answer, or the emulator's Tracker page."""

    protocol_version = "HTTP/1.1"
    server: BodyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        body = _read_body(self)
        form: dict[str, str] = {}
        if "x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
            form = dict(parse_qsl(body.decode()))
        seen = Seen(self.command, self.path, dict(self.headers.items()), body, form)
        reply: Any = self.server.answer(seen)
        if isinstance(reply, Streamed):
            self._stream(reply)
            return
        payload, headers = reply.encoded()
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _dispatch

    def _stream(self, plan: Streamed) -> None:
        self.send_response(plan.status)
        for name, value in plan.headers.items():
            self.send_header(name, value)
        if plan.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(plan.body)))
        self.end_headers()
        self._write(plan.body[: plan.held], plan.chunked)
        if plan.gate is not None and not plan.gate.wait(60):
            self.close_connection = True  # nobody came for the rest: give up on the client
            return
        self._write(plan.body[plan.held :], plan.chunked)
        if plan.chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes, chunked: bool) -> None:
        for start in range(0, len(data), 65_536):
            piece = data[start : start + 65_536]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        self.wfile.flush()


class BodyServer(ThreadingHTTPServer):
    """A keep-alive loopback server in front of the emulator's Delivery Tracker page
    (tokens, UNAUTHENTICATED, GraphQL batches are the page's), answering scripted
    :class:`Streamed` bodies and :class:`Reply` answers first. Records every request."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StreamingHandler)
        self.emulated = EmulatorState()
        self.app = EmulatorApp(self.emulated)
        self.page = self.emulated.pages["tracker"]
        self.lock = threading.Lock()
        self.token_requests: list[Seen] = []
        self.api_requests: list[Seen] = []
        self.api_script: collections.deque[Reply | Streamed] = collections.deque()
        self.gates: list[threading.Event] = []
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.page.token_path}"

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.page.resource_path}"

    def gate(self) -> threading.Event:
        gate = threading.Event()
        self.gates.append(gate)
        return gate

    def revoke_all(self) -> None:
        self.emulated.revoke_all("tracker")

    def answer(self, seen: Seen) -> Reply | Streamed:
        is_token = seen.path.split("?")[0] == self.page.token_path
        with self.lock:
            (self.token_requests if is_token else self.api_requests).append(seen)
            scripted = None if is_token or not self.api_script else self.api_script.popleft()
        if scripted is not None:
            return scripted
        headers = {k: v for k, v in seen.headers.items() if k.lower() != "content-length"}
        got = Client(self.app).open(
            "/tracker" + seen.path, method=seen.method, headers=headers, data=seen.body
        )
        wanted = ("Content-Type", "Cache-Control", "WWW-Authenticate")
        return Reply(got.status_code, got.get_data(), {k: v for k, v in got.headers if k in wanted})

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up on a held-back body is expected here: stay quiet.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __enter__(self) -> BodyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for gate in self.gates:  # release handlers still holding a body back
            gate.set()
        self.shutdown()
        self.server_close()


class RecordingDetector(GraphQLFailureDetector):
    """The default detector, recording the size of every body it is handed (``None``: the
    auth did not read the body)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int | None] = []

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool:
        self.seen.append(None if body is None else len(body))
        return super().is_auth_failure(status_code, content_type, body)


@pytest.fixture
def server() -> Iterator[BodyServer]:
    with BodyServer() as srv:
        yield srv


MakeAuth = Callable[..., DeliveryTrackerAuth]


@pytest.fixture
def make_auth(server: BodyServer) -> Iterator[MakeAuth]:
    def build(**options: Any) -> DeliveryTrackerAuth:
        options.setdefault("token_url", server.token_url)
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("method", "oauth2")
        return DeliveryTrackerAuth(CLIENT_ID, CLIENT_SECRET, **options)

    yield from closing(build)


# -- streaming users -------------------------------------------------------------------


@dataclass
class Got:
    status: int
    history: list[int]
    body: bytes  # what the user streamed
    untouched: bool  # handed over with its stream not consumed by anyone
    peak: int = 0  # allocation peak (tracemalloc) from sending to getting the response


def stream(
    client: str,
    auth: Any,
    url: str,
    payload: Any,
    *,
    gate: threading.Event | None = None,
    raw: bool = True,
    measure: bool = False,
) -> Got:
    """Send one request the streaming way of ``client``; when the call returns, open
    ``gate`` and stream the body (``raw``: undecoded where the client can say so).
    ``measure``: record the allocation peak from sending to getting the response."""

    def start() -> None:
        if measure:
            tracemalloc.start()

    def peak() -> int:
        if not measure:
            return 0
        value = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return value

    if client == "requests":
        with requests.Session() as session:
            start()
            with session.post(url, json=payload, auth=auth, stream=True, timeout=10) as r:
                allocated = peak()
                untouched = not r._content_consumed  # type: ignore[attr-defined]
                if gate is not None:
                    gate.set()
                if raw and untouched:
                    body = b"".join(r.raw.stream(65_536, decode_content=False))
                else:
                    body = b"".join(r.iter_content(65_536))
                history = [h.status_code for h in r.history]
                return Got(r.status_code, history, body, untouched, allocated)
    if client in ("httpx", "httpx2"):
        module: Any = httpx if client == "httpx" else httpx2
        with module.Client(auth=auth, timeout=10) as c:
            start()
            with c.stream("POST", url, json=payload) as response:
                allocated = peak()
                untouched = not response.is_stream_consumed
                if gate is not None:
                    gate.set()
                parts = response.iter_raw() if raw else response.iter_bytes()
                body = b"".join(parts)
                history = [h.status_code for h in response.history]
                return Got(response.status_code, history, body, untouched, allocated)
    assert client == "httpx-async"

    async def go() -> Got:
        async with httpx.AsyncClient(auth=auth, timeout=10) as c:
            start()
            async with c.stream("POST", url, json=payload) as response:
                allocated = peak()
                untouched = not response.is_stream_consumed
                if gate is not None:
                    gate.set()
                parts = response.aiter_raw() if raw else response.aiter_bytes()
                body = b"".join([part async for part in parts])
                history = [h.status_code for h in response.history]
                return Got(response.status_code, history, body, untouched, allocated)

    return asyncio.run(go())


def abandon(client: str, auth: Any, url: str) -> bytes:
    """Open a stream, leave it unread, then send a second request on the same client."""
    if client == "httpx-async":

        async def go() -> bytes:
            async with httpx.AsyncClient(auth=auth, timeout=10) as c:
                async with c.stream("POST", url, json=QUERY):
                    pass
                return (await c.post(url, json=QUERY)).content

        return asyncio.run(go())
    module: Any = httpx if client == "httpx" else httpx2
    with module.Client(auth=auth, timeout=10) as c:
        with c.stream("POST", url, json=QUERY):
            pass
        content: bytes = c.post(url, json=QUERY).content
        return content


# -- C.9: large bodies -----------------------------------------------------------------


class TestLargeBodies:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_declared_length_over_max_body_is_never_read(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        detector = RecordingDetector()
        auth = make_auth(failure_detector=detector)
        gate = server.gate()  # not one byte of the body before the call returns
        server.api_script.append(Streamed(200, BIG, JSON, chunked=False, gate=gate))
        got = stream(client, auth, server.graphql_url, QUERY, gate=gate)
        assert got.untouched
        assert sha(got.body) == sha(BIG)
        assert (got.status, got.history) == (200, [])
        assert detector.seen == [None]
        assert (len(server.api_requests), len(server.token_requests)) == (1, 1)

    @pytest.mark.parametrize("client", CLIENTS)
    def test_unknown_length_is_peeked_at_most_max_body_and_handed_back(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        detector = RecordingDetector()
        auth = make_auth(failure_detector=detector)
        gate = server.gate()  # max_body + 1 bytes before the call returns, the rest after
        server.api_script.append(Streamed(200, BIG, JSON, chunked=True, held=LIMIT + 1, gate=gate))
        got = stream(client, auth, server.graphql_url, QUERY, gate=gate)
        assert got.untouched
        assert sha(got.body) == sha(BIG)
        assert (got.status, got.history) == (200, [])
        assert detector.seen == [None]
        assert (len(server.api_requests), len(server.token_requests)) == (1, 1)

    @pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_non_streaming_user_gets_every_byte_and_the_detector_none(
        self, client: str, chunked: bool, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        detector = RecordingDetector()
        auth = make_auth(failure_detector=detector)
        server.api_script.append(Streamed(200, BIG, JSON, chunked=chunked))
        result = call(client, auth, "POST", server.graphql_url, json=QUERY)
        assert sha(result.body) == sha(BIG)
        assert (result.status, result.history) == (200, [])
        assert detector.seen == [None]  # never handed more than max_body bytes
        assert (len(server.api_requests), len(server.token_requests)) == (1, 1)

    @pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_small_compressed_body_that_inflates_past_max_body(
        self, client: str, chunked: bool, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        compressed = inflating_body()
        detector = RecordingDetector()
        auth = make_auth(failure_detector=detector)
        # Warm up (token, lazy imports of the client's modules): not part of the measure.
        assert stream(client, auth, server.graphql_url, QUERY).body == OK
        headers = {**JSON, "Content-Encoding": "gzip"}
        server.api_script.append(Streamed(200, compressed, headers, chunked=chunked))
        got = stream(client, auth, server.graphql_url, QUERY, measure=True)
        assert got.untouched
        # Decoding all of it would take 32 MiB; the auth may hold about max_body.
        assert got.peak < 4 * LIMIT, f"{got.peak} bytes allocated before the user read"
        assert detector.seen == [len(OK), None]
        assert (got.status, got.history) == (200, [])
        # The user gets the exact bytes on the wire (requests and httpx alike).
        assert sha(got.body) == sha(compressed)

    @pytest.mark.parametrize("client", ["httpx", "httpx-async", "httpx2"])
    def test_an_abandoned_peeked_stream_is_closed_cleanly(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        gate = server.gate()
        server.api_script.append(Streamed(200, BIG, JSON, chunked=True, held=LIMIT + 1, gate=gate))
        # The user leaves the first stream unread; the client must still work.
        assert json.loads(abandon(client, auth, server.graphql_url)) == CARRIERS
        assert len(server.api_requests) == 2


# -- C.9: small bodies are still judged ------------------------------------------------


class TestSmallBodies:
    @pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
    @pytest.mark.parametrize("client", ["httpx", "httpx-async", "httpx2"])
    def test_httpx_stream_unauthenticated_refreshes_once_and_stays_streamable(
        self, client: str, chunked: bool, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        server.api_script.extend(
            [
                Streamed(200, UNAUTHENTICATED, JSON, chunked=chunked),
                Streamed(200, OK, JSON, chunked=chunked),
            ]
        )
        got = stream(client, auth, server.graphql_url, QUERY)
        assert (got.status, got.history) == (200, [200])
        assert got.untouched  # judged, and still the user's to stream
        assert got.body == OK
        assert (len(server.api_requests), len(server.token_requests)) == (2, 2)
        first, resent = (seen.headers["Authorization"] for seen in server.api_requests)
        assert resent != first

    def test_requests_stream_with_a_declared_length_is_judged(
        self, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        server.api_script.extend(
            [
                Streamed(200, UNAUTHENTICATED, JSON, chunked=False),
                Streamed(200, OK, JSON, chunked=False),
            ]
        )
        got = stream("requests", auth, server.graphql_url, QUERY)
        assert (got.status, got.history, got.body) == (200, [200], OK)
        assert (len(server.api_requests), len(server.token_requests)) == (2, 2)

    def test_requests_stream_of_unknown_length_is_left_to_the_user(
        self, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        # requests cannot put peeked bytes back in front of r.raw, which a streaming user
        # may read directly: a body of unknown length is not read, so not judged.
        detector = RecordingDetector()
        auth = make_auth(failure_detector=detector)
        server.api_script.append(Streamed(200, UNAUTHENTICATED, JSON, chunked=True))
        got = stream("requests", auth, server.graphql_url, QUERY, raw=True)
        assert got.untouched
        assert (got.status, got.history, got.body) == (200, [], UNAUTHENTICATED)
        assert detector.seen == [None]
        assert (len(server.api_requests), len(server.token_requests)) == (1, 1)

    @pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
    @pytest.mark.parametrize("client", CLIENTS)
    def test_unauthenticated_without_streaming_refreshes_once_and_resends_once(
        self, client: str, chunked: bool, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        server.api_script.extend(
            [
                Streamed(200, UNAUTHENTICATED, JSON, chunked=chunked),
                Streamed(200, OK, JSON, chunked=chunked),
            ]
        )
        result = call(client, auth, "POST", server.graphql_url, json=QUERY)
        assert (result.status, result.history, result.body) == (200, [200], OK)
        assert (len(server.api_requests), len(server.token_requests)) == (2, 2)

    @pytest.mark.parametrize("streamed", [False, True], ids=["read", "streamed"])
    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_compressed_unauthenticated_is_judged(
        self, client: str, streamed: bool, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        gzipped = {**JSON, "Content-Encoding": "gzip"}
        server.api_script.extend(
            [
                Streamed(200, gzip.compress(UNAUTHENTICATED), gzipped, chunked=True),
                Streamed(200, OK, JSON, chunked=False),
            ]
        )
        if streamed and client == "requests":
            # stream=True with Content-Encoding: not read, not judged (see _peek).
            got = stream(client, auth, server.graphql_url, QUERY, raw=False)
            assert (got.status, got.history, got.body) == (200, [], UNAUTHENTICATED)
            return
        if streamed:
            got = stream(client, auth, server.graphql_url, QUERY)
            assert (got.status, got.history, got.body, got.untouched) == (200, [200], OK, True)
        else:
            result = call(client, auth, "POST", server.graphql_url, json=QUERY)
            assert (result.status, result.history, result.body) == (200, [200], OK)
        assert (len(server.api_requests), len(server.token_requests)) == (2, 2)

    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_body_of_exactly_max_body_is_judged(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        limit = len(UNAUTHENTICATED)
        auth = make_auth(failure_detector=GraphQLFailureDetector(max_body=limit))
        server.api_script.append(Streamed(200, UNAUTHENTICATED, JSON, chunked=True))
        assert call(client, auth, "POST", server.graphql_url, json=QUERY).history == [200]
        over = make_auth(failure_detector=GraphQLFailureDetector(max_body=limit - 1))
        server.api_script.append(Streamed(200, UNAUTHENTICATED, JSON, chunked=True))
        assert call(client, over, "POST", server.graphql_url, json=QUERY).history == []


# -- C.10: batched GraphQL -------------------------------------------------------------

BATCH = [
    QUERY,
    {"query": "query { track(id: 1) { status } }"},
    {"query": "query { track(id: 2) { status } }"},
]


class TestBatches:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_one_unauthenticated_element_refreshes_once_and_resends_once(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        server.api_script.append(Reply(200, [CARRIERS, UNAUTHENTICATED_SECOND, CARRIERS]))
        result = call(client, auth, "POST", server.graphql_url, json=BATCH)
        assert (result.status, result.history) == (200, [200])
        assert result.json() == [CARRIERS, TRACKED, TRACKED]  # the emulator's answers
        assert (len(server.api_requests), len(server.token_requests)) == (2, 2)
        rejected, resent = server.api_requests
        assert resent.body == rejected.body
        assert resent.headers["Authorization"] != rejected.headers["Authorization"]

    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_revoked_token_in_a_batch(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        assert call(client, auth, "POST", server.graphql_url, json=BATCH).status == 200
        server.emulated.settings.tracker_unauthenticated_status = 401
        server.revoke_all()
        result = call(client, auth, "POST", server.graphql_url, json=BATCH)
        assert (result.status, result.history) == (200, [401])
        assert result.json() == [CARRIERS, TRACKED, TRACKED]  # the emulator's answers
        assert (len(server.api_requests), len(server.token_requests)) == (3, 2)

    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_batch_without_unauthenticated_is_not_retried(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        answer = [CARRIERS, graphql_errors("FORBIDDEN"), graphql_errors("BAD_REQUEST")]
        server.api_script.append(Reply(200, answer))
        result = call(client, auth, "POST", server.graphql_url, json=BATCH)
        assert (result.status, result.history) == (200, [])
        assert result.json() == answer
        assert (len(server.api_requests), len(server.token_requests)) == (1, 1)


# -- C.9: odd bodies, and the helpers on their own ---------------------------------------


class TestOddBodies:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_body_that_cannot_be_decoded_is_not_judged_and_reaches_the_user(
        self, client: str, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        # Says gzip, is not: judging it is impossible, and the user may still want the
        # bytes (iter_raw, r.raw); the auth must neither raise nor eat them.
        garbage = b"not gzip " + UNAUTHENTICATED
        detector = RecordingDetector()
        auth = make_auth(failure_detector=detector)
        headers = {**JSON, "Content-Encoding": "gzip"}
        server.api_script.append(Streamed(200, garbage, headers, chunked=False))
        got = stream(client, auth, server.graphql_url, QUERY)
        assert got.untouched
        assert (got.status, got.history, got.body) == (200, [], garbage)
        assert detector.seen == [None]
        assert (len(server.api_requests), len(server.token_requests)) == (1, 1)


class TestHelpers:
    """The pieces of the read step without a client (narrow unit tests)."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (None, None),
            ("12", 12),
            (" 12 ", 12),
            ("0", 0),
            ("1,1", None),  # two Content-Length headers, joined
            ("-1", None),
            ("abc", None),
            ("", None),
            ("\u0661\u0662", None),  # digits, but not ASCII ones
            ("1e3", None),
        ],
    )
    def test_declared_length(self, value: str | None, expected: int | None) -> None:
        assert declared_length(value) == expected

    def test_body_limit(self) -> None:
        class Sized(GraphQLFailureDetector):
            pass

        assert body_limit(GraphQLFailureDetector(max_body=10)) == 10
        assert body_limit(StatusFailureDetector()) == DEFAULT_MAX_BODY == LIMIT
        odd = Sized()
        for value in (True, -1, 2.5, "10", None):
            object.__setattr__(odd, "max_body", value)
            assert body_limit(odd) == DEFAULT_MAX_BODY, value

    @pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
    def test_a_response_read_before_the_flow_saw_it(self, module: Any) -> None:
        detector = GraphQLFailureDetector(max_body=3)
        assert read_httpx_body(module.Response(200, content=b"abc"), detector) == b"abc"
        assert read_httpx_body(module.Response(200, content=b"abcd"), detector) is None
        closed = module.Response(200, stream=module.ByteStream(b"abc"))
        closed.close()  # closed unread: nothing to judge, and no error
        assert read_httpx_body(closed, detector) is None
        assert asyncio.run(aread_httpx_body(closed, detector)) is None

    @pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
    def test_identity_is_no_encoding(self, module: Any) -> None:
        headers = {"Content-Encoding": " Identity "}
        response = module.Response(200, headers=headers, stream=module.ByteStream(b"abc"))
        assert read_httpx_body(response, GraphQLFailureDetector()) == b"abc"
        assert response.read() == b"abc"

    def test_an_async_flow_given_a_sync_only_stream(self) -> None:
        class SyncOnly(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                yield b"abc"

        response = httpx.Response(200, stream=SyncOnly())
        assert asyncio.run(aread_httpx_body(response, GraphQLFailureDetector())) is None
        assert response.read() == b"abc"

    @pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
    def test_elapsed_is_still_recorded(
        self, module: Any, server: BodyServer, make_auth: MakeAuth
    ) -> None:
        with (
            module.Client(auth=make_auth(), timeout=10) as c,
            c.stream("POST", server.graphql_url, json=QUERY) as response,
        ):
            assert response.read() == OK
        assert response.elapsed.total_seconds() >= 0
