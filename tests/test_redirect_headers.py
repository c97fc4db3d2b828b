"""A credential sent in a header other than ``Authorization`` never follows a redirect to
another origin: through every client, against real loopback servers (the second server is
the other origin and records what it received). requests and httpx strip only
``Authorization`` themselves; see :mod:`delivery_auth._redirects` for how the others are
kept home."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
import httpx2
import pytest
from conftest import CLIENTS, call
from loopback import LoopbackServer, Reply, Seen

from delivery_auth import (
    ApiKeyAuth,
    ClientCredentialsAuth,
    DeliveryAuth,
    HmacSigningAuth,
    Token,
    _redirects,
)
from delivery_auth.dependent import DependentToken

KEY = "key-redirect-Wm3q-never-log"
OK = Reply(200, {"ok": True})
REJECTED = Reply(401, {"message": "bad key"})
HTTPX_CLIENTS = ["httpx", "httpx-async", "httpx2"]


def found(seen: Seen, name: str) -> str | None:
    return next((v for k, v in seen.headers.items() if k.lower() == name.lower()), None)


def moved(to: str, code: int = 302) -> Reply:
    return Reply(code, b"", {"Location": to})


@pytest.fixture
def key_auth() -> Iterator[ApiKeyAuth]:
    with ApiKeyAuth(KEY, header="API-Key", allowed_hosts=["127.0.0.1"]) as auth:
        yield auth


@pytest.mark.parametrize("client", CLIENTS)
def test_leaving_the_origin_and_coming_back_carries_no_key(
    client: str,
    key_auth: ApiKeyAuth,
    server: LoopbackServer,
    other_server: LoopbackServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A -> B -> A: once the chain has left the origin the key stays off, as
    Authorization does; the 401 at the end is then not judged a rejection of the key
    (no WARNING), because the key was not on that request."""
    caplog.set_level(logging.DEBUG, logger="delivery_auth")
    back = server.url("/back")
    server.state.api_script.extend(
        [moved(other_server.url("/redirect?to=" + quote(back))), REJECTED]
    )
    result = call(client, key_auth, "GET", server.url())
    assert (result.status, result.history) == (401, [302, 302])
    first, again = server.state.api_requests
    (away,) = other_server.state.api_requests
    assert [found(s, "API-Key") for s in (first, away, again)] == [KEY, None, None]
    assert again.path == "/back"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_resend_redirected_elsewhere_carries_no_fresh_token(
    client: str,
    make_auth: Any,
    server: LoopbackServer,
    other_server: LoopbackServer,
) -> None:
    """The retry path: a renewable token in its own header, rejected, renewed, resent;
    the resend is redirected to another origin, which gets no token."""
    oauth: ClientCredentialsAuth = make_auth()
    auth = DeliveryAuth(oauth._engine, header="X-Token", allowed_hosts=["127.0.0.1"])
    server.state.api_script.extend([REJECTED, moved(other_server.url("/away"), 307)])
    other_server.state.api_script.append(OK)
    result = call(client, auth, "POST", server.url(), body=b'{"n": 1}')
    # requests puts the 401 in the first redirect's history instead (see the README)
    assert (result.status, result.history) == (200, [307] if client == "requests" else [401, 307])
    rejected, resent = server.state.api_requests
    sent = [found(s, "X-Token") for s in (rejected, resent)]
    assert None not in sent
    assert sent[0] != sent[1]
    (away,) = other_server.state.api_requests
    assert found(away, "X-Token") is None
    assert away.body == b'{"n": 1}'  # a 307: the body follows, the token does not


@pytest.mark.parametrize("client", HTTPX_CLIENTS)
def test_a_users_trace_callback_still_gets_its_events(
    client: str, key_auth: ApiKeyAuth, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """httpcore's trace extension is how the key is taken off; the user's own callback is
    kept and called for every event, after the key is off (it sees what is sent)."""
    seen: list[tuple[str, bool]] = []

    def record(name: str, info: dict[str, Any]) -> None:
        request = info.get("request")
        if name.endswith("send_request_headers.started") and request is not None:
            names = {k.lower() for k, _ in request.headers}
            seen.append((request.url.target.decode(), b"api-key" in names))
        else:
            seen.append((name, False))

    async def arecord(name: str, info: dict[str, Any]) -> None:
        record(name, info)

    trace = arecord if client == "httpx-async" else record
    server.state.api_script.append(moved(other_server.url("/away")))
    other_server.state.api_script.append(OK)
    result = call(client, key_auth, "GET", server.url(), extensions={"trace": trace})
    assert (result.status, result.history) == (200, [302])
    sends = [entry for entry in seen if entry[0].startswith("/")]
    assert sends == [("/api/orders", True), ("/away", False)]
    names = {name.split(".", 1)[-1] for name, _ in seen}
    assert {"connect_tcp.started", "receive_response_headers.complete"} <= names
    assert "API-Key" not in other_server.state.api_requests[0].headers


def test_under_trio_too(
    key_auth: ApiKeyAuth, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """AsyncClient on trio: the trace callback is awaited there as on asyncio."""
    trio = pytest.importorskip("trio")
    server.state.api_script.append(moved(other_server.url("/away")))
    other_server.state.api_script.append(OK)

    async def main() -> int:
        async with httpx.AsyncClient(auth=key_auth, follow_redirects=True, timeout=10) as client:
            return (await client.get(server.url())).status_code

    assert trio.run(main) == 200
    assert found(server.state.api_requests[0], "API-Key") == KEY
    assert found(other_server.state.api_requests[0], "API-Key") is None


def _signing() -> HmacSigningAuth:
    return HmacSigningAuth(
        "key-7",
        "hmac-secret-Xq81-never-log",
        signed_headers=lambda r, sig: {
            "X-Key": r.key_id,
            "X-Time": str(r.timestamp),
            "X-Signature": sig,
        },
        credential_header="X-Signature",
        allowed_hosts=["127.0.0.1"],
    )


@pytest.mark.parametrize("client", CLIENTS)
def test_a_signed_request_redirected_elsewhere_carries_no_signature(
    client: str, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """Decorated requests: every header the signer adds stays at the signed origin."""
    server.state.api_script.append(moved(other_server.url("/away"), 307))
    other_server.state.api_script.append(OK)
    with _signing() as auth:
        result = call(client, auth, "POST", server.url(), body=b"abc")
    assert (result.status, result.history) == (200, [307])
    (signed,) = server.state.api_requests
    (away,) = other_server.state.api_requests
    for name in ("X-Key", "X-Time", "X-Signature"):
        assert found(signed, name) is not None
        assert found(away, name) is None, name


@pytest.mark.parametrize("client", CLIENTS)
def test_a_signed_resend_redirected_elsewhere_carries_no_signature(
    client: str, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """The decorated retry path: signed anew after a rejection, resent, redirected."""
    server.state.api_script.extend([REJECTED, moved(other_server.url("/away"), 307)])
    other_server.state.api_script.append(OK)
    with _signing() as auth:
        result = call(client, auth, "POST", server.url(), body=b"abc")
    assert result.status == 200
    rejected, resent = server.state.api_requests
    assert found(rejected, "X-Signature") != found(resent, "X-Signature") is not None
    (away,) = other_server.state.api_requests
    assert [found(away, name) for name in ("X-Key", "X-Time", "X-Signature")] == [None] * 3


@pytest.mark.parametrize("client", CLIENTS)
def test_a_dependent_token_stays_at_its_origin(
    client: str, make_auth: Any, server: LoopbackServer, other_server: LoopbackServer
) -> None:
    """USPS-style second token (its own header): not sent after a cross-origin redirect,
    still sent after a same-origin one."""
    auth: ClientCredentialsAuth = make_auth()
    DependentToken.attach(
        auth,
        obtain=lambda lease: Token("pay-1"),
        header="X-Pay",
        applies=lambda method, url: "/labels/" in url,
    )
    server.state.api_script.extend(
        [moved(server.url("/labels/v2")), moved(other_server.url("/away"))]
    )
    other_server.state.api_script.append(OK)
    result = call(client, auth, "GET", server.url("/labels/v1"))
    assert (result.status, result.history) == (200, [302, 302])
    first, same = server.state.api_requests
    (away,) = other_server.state.api_requests
    assert [found(s, "X-Pay") for s in (first, same, away)] == ["pay-1", "pay-1", None]


def test_a_transport_that_does_not_trace_gets_the_request_as_built(
    key_auth: ApiKeyAuth,
) -> None:
    """MockTransport (and any transport that does not call httpcore's trace extension)
    gets the redirected request as httpx built it: the key is on it. Nothing leaves the
    process there; a network transport that does not trace would send it (documented)."""
    got: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request)
        if request.url.host == "127.0.0.1":
            return httpx.Response(302, headers={"Location": "https://127.0.0.2/away"})
        return httpx.Response(200)

    with httpx.Client(
        transport=httpx.MockTransport(handler), auth=key_auth, follow_redirects=True
    ) as client:
        assert client.get("https://127.0.0.1/x").status_code == 200
    assert [r.headers.get("API-Key") for r in got] == [KEY, KEY]


def test_authorization_needs_nothing_from_us(server: LoopbackServer) -> None:
    """httpx strips Authorization itself: no trace callback is installed for it."""
    with ApiKeyAuth(KEY, allowed_hosts=["127.0.0.1"]) as auth:
        for request in (httpx.Request("GET", server.url()), httpx2.Request("GET", server.url())):
            flow = auth.sync_auth_flow(request)
            assert next(flow) is request
            assert "trace" not in request.extensions

            async def first(request: Any = request) -> None:
                aflow = auth.async_auth_flow(request)
                assert await aflow.__anext__() is request
                await aflow.aclose()

            asyncio.run(first())
            assert "trace" not in request.extensions


# -- the trace callback alone, fed real httpcore requests -------------------------------


def _hop(url: str, target: bytes | None = None, method: bytes = b"GET") -> httpcore.Request:
    parsed = httpx.URL(url)
    return httpcore.Request(
        method,
        httpcore.URL(
            scheme=parsed.raw_scheme,
            host=parsed.raw_host,
            port=parsed.port,
            target=parsed.raw_path if target is None else target,
        ),
        headers=[(b"Host", parsed.netloc), (b"API-Key", b"k"), (b"X-Other", b"o")],
        extensions={},
    )


def _confined(url: str = "https://api.example.com/v1/x") -> Any:
    request = httpx.Request("GET", url)
    _redirects.confine(request, _redirects.header_names(["API-Key", "Authorization"]))
    return request.extensions["trace"]


def _sent(trace: Any, hop: httpcore.Request, event: str = "http11") -> list[bytes]:
    trace(f"{event}.send_request_headers.started", {"request": hop})
    return [name for name, _ in hop.headers]


@pytest.mark.parametrize(
    ("url", "target", "kept"),
    [
        ("https://API.example.com:443/other?q=1", None, True),  # case and default port
        ("https://api.example.com:8443/v1/x", None, False),  # another port
        ("http://api.example.com/v1/x", None, False),  # http -> https is another origin
        ("https://evil.example/v1/x", None, False),
        # plain http through a forward proxy: the origin is in the absolute-form target
        ("http://proxy.local:3128/", b"https://api.example.com/v1/y", True),
        ("http://proxy.local:3128/", b"https://evil.example/v1/y", False),
        ("http://proxy.local:3128/", b"https://api.example.com:99999/", False),  # unparsable
        ("http://proxy.local:3128/", b"\xff://x/", False),
    ],
)
def test_each_hop_is_judged_by_its_origin(url: str, target: bytes | None, kept: bool) -> None:
    trace = _confined()
    hop = _hop(url, target)
    assert _sent(trace, hop, "http2") == (
        [b"Host", b"API-Key", b"X-Other"] if kept else [b"Host", b"X-Other"]
    )
    # a hop that left swaps the callback for one that strips every later hop
    swapped = hop.extensions.get("trace")
    assert (swapped is None) is kept
    if not kept:
        back = _hop("https://api.example.com/v1/x")
        back.extensions = dict(hop.extensions)  # what httpx does for the next redirect
        assert _sent(swapped, back) == [b"Host", b"X-Other"]
        assert (
            _redirects.sent_header(httpx.Request("GET", url, extensions=back.extensions), "API-Key")
            is None
        )


def test_a_proxy_connect_and_other_events_are_left_alone() -> None:
    trace = _confined()
    connect = httpcore.Request(
        b"CONNECT",
        httpcore.URL(scheme=b"http", host=b"proxy.local", port=3128, target=b"api.example.com:443"),
        headers=[(b"Host", b"api.example.com:443")],
        extensions={},
    )
    assert _sent(trace, connect) == [b"Host"]
    assert "trace" not in connect.extensions
    away = _hop("https://evil.example/")
    trace("http11.send_request_body.started", {"request": away})
    trace("connection.connect_tcp.started", {"host": "evil.example", "port": 443})
    assert [name for name, _ in away.headers] == [b"Host", b"API-Key", b"X-Other"]


def test_the_users_callback_is_wrapped_once_and_its_kind_is_kept() -> None:
    calls: list[str] = []

    def mine(name: str, info: dict[str, Any]) -> str:
        calls.append(name)
        return "returned to httpcore"

    request = httpx.Request("GET", "https://api.example.com/", extensions={"trace": mine})
    names = _redirects.header_names(["API-Key"])
    _redirects.confine(request, names)
    _redirects.confine(request, _redirects.header_names(["X-Pay"]))  # sent again: rewrapped
    trace = request.extensions["trace"]
    assert trace.inner is mine
    assert trace.names == {b"api-key", b"x-pay"}
    assert trace(
        "http11.send_request_headers.started", {"request": _hop("https://a.example/")}
    ) == ("returned to httpcore")
    assert calls == ["http11.send_request_headers.started"]
    assert _redirects.header_names(["Authorization", "AUTHORIZATION"]) == frozenset()

    async def drive() -> None:
        asynchronous = httpx.Request("GET", "https://api.example.com/", extensions={"trace": mine})
        _redirects.aconfine(asynchronous, names)
        with pytest.raises(TypeError, match="must be an async function"):
            await asynchronous.extensions["trace"]("http11.connect_tcp.started", {})

    asyncio.run(drive())
