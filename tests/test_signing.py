"""HmacSigningAuth and the per-request decoration hook: the exact bytes each client sends
are signed, a rejection is re-signed (new timestamp) and resent once, streamed bodies are
refused before anything is sent. The signature is recomputed here with the standard
library's ``hmac`` from what a real loopback server received."""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import requests
from conftest import CLIENTS, call
from loopback import LoopbackServer, Reply, Seen

from delivery_auth import (
    ClientCredentialsAuth,
    DeliveryAuth,
    HmacSigningAuth,
    SigningInput,
    UnsignableBodyError,
)

KEY = "key-7"
SECRET = "hmac-secret-Xq81-never-log"
OK = Reply(200, {"ok": True})
REJECTED = Reply(401, {"error": "bad signature"})
HEADER = re.compile(r"HMAC (?P<key>[^:]+):(?P<ts>\d+):(?P<sig>[0-9a-f]{64})")


def verify(seen: Seen) -> int:
    """Recompute the default scheme's signature of a received request; its timestamp."""
    found = HEADER.fullmatch(seen.headers["Authorization"])
    assert found is not None, seen.headers["Authorization"]
    assert found["key"] == KEY
    message = f"{found['ts']}\n{seen.method}\n{seen.path}\n".encode() + seen.body
    expected = hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(found["sig"], expected), "the signature does not cover the request"
    return int(found["ts"])


@pytest.fixture
def auth() -> Iterator[HmacSigningAuth]:
    with HmacSigningAuth(KEY, SECRET) as signing:
        yield signing


BODIES: dict[str, Any] = {
    "bytes": b'{"data": {"id": 1}}',
    "str, not ASCII": "name=Zoë&city=Zürich",
    "none": None,
}


@pytest.mark.parametrize("body", BODIES.values(), ids=list(BODIES))
@pytest.mark.parametrize("client", CLIENTS)
def test_the_bytes_sent_are_the_bytes_signed(
    client: str, body: Any, auth: HmacSigningAuth, server: LoopbackServer
) -> None:
    server.state.api_script.append(OK)
    result = call(client, auth, "POST", server.url("/v1/orders?page=2&q=a%20b"), body=body)
    assert result.status == 200
    (seen,) = server.state.api_requests
    assert seen.path == "/v1/orders?page=2&q=a%20b"  # the query is part of the signed target
    expected = body.encode() if isinstance(body, str) else body or b""
    assert seen.body == expected
    verify(seen)
    assert auth.token_requests == 1


@pytest.mark.parametrize("client", CLIENTS)
def test_a_multipart_upload_is_signed_as_sent(
    client: str, auth: HmacSigningAuth, server: LoopbackServer
) -> None:
    server.state.api_script.extend([REJECTED, OK])
    upload = io.BytesIO(b"label-bytes-\x00\x01")
    files = {"label": ("label.pdf", upload, "application/pdf")}
    result = call(client, auth, "POST", server.url("/v1/labels"), files=files)
    assert (result.status, result.history) == (200, [401])
    first, resent = server.state.api_requests
    assert b"label-bytes-\x00\x01" in first.body
    assert resent.body == first.body
    assert verify(resent) > verify(first)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_rejection_is_signed_anew_and_resent_once(
    client: str, auth: HmacSigningAuth, server: LoopbackServer
) -> None:
    server.state.api_script.extend([REJECTED, OK])
    body = b'{"data": {"serviceType": "VAN"}}'
    result = call(client, auth, "POST", server.url("/v1/quotations"), body=body)
    assert (result.status, result.history) == (200, [401])
    first, resent = server.state.api_requests
    assert first.body == resent.body == body  # byte for byte
    assert verify(resent) > verify(first)  # a new timestamp, so a new signature
    assert first.headers["Authorization"] != resent.headers["Authorization"]
    assert auth.token_requests == 2  # one signing lease, and one after the rejection


@pytest.mark.parametrize("client", CLIENTS)
def test_a_second_rejection_is_returned(
    client: str, auth: HmacSigningAuth, server: LoopbackServer
) -> None:
    server.state.api_script.extend([REJECTED, REJECTED, OK])
    result = call(client, auth, "GET", server.url("/v1/cities"))
    assert (result.status, result.history) == (401, [401])
    assert len(server.state.api_requests) == 2


class FrozenClock(HmacSigningAuth):
    def timestamp(self) -> int:
        return 1_700_000_000_000


@pytest.mark.parametrize("client", CLIENTS)
def test_the_resend_never_carries_the_rejected_signature(
    client: str, server: LoopbackServer
) -> None:
    server.state.api_script.extend([REJECTED, OK])
    with FrozenClock(KEY, SECRET) as frozen:
        result = call(client, frozen, "POST", server.url("/v1/q"), body=b"{}")
    assert (result.status, result.history) == (200, [401])
    first, resent = server.state.api_requests
    assert (verify(first), verify(resent)) == (1_700_000_000_000, 1_700_000_000_001)


def _generator() -> Iterator[bytes]:
    yield b'{"a": '
    yield b"1}"


async def _agenerator() -> AsyncIterator[bytes]:
    yield b"{}"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", ["generator", "file"])
def test_a_streamed_body_is_refused_before_anything_is_sent(
    client: str, kind: str, auth: HmacSigningAuth, server: LoopbackServer, tmp_path: Any
) -> None:
    path = tmp_path / "body.json"
    path.write_bytes(b'{"a": 1}')
    with path.open("rb") as file:
        body: Any = file if kind == "file" else _generator()
        if client == "httpx-async" and kind == "generator":
            body = _agenerator()
        with pytest.raises(UnsignableBodyError, match="Nothing was sent") as caught:
            call(client, auth, "POST", server.url("/v1/orders"), body=body)
    assert server.state.api_requests == []
    assert SECRET not in str(caught.value)


def test_custom_format_and_credential_header(server: LoopbackServer) -> None:
    """A scheme that signs into its own headers; the retry recognises it by that header."""

    def message(r: SigningInput) -> bytes:
        return f"{r.method} {r.target} {r.timestamp}".encode() + r.body

    def headers(r: SigningInput, signature: str) -> dict[str, str]:
        return {"X-Key": r.key_id, "X-Time": str(r.timestamp), "X-Signature": signature}

    server.state.api_script.extend([REJECTED, OK])
    with HmacSigningAuth(
        KEY,
        SECRET.encode(),
        digest="sha512",
        timestamp_unit="s",
        string_to_sign=message,
        signed_headers=headers,
        credential_header="X-Signature",
    ) as custom:
        response = requests.put(server.url("/v2/x"), data=b"abc", auth=custom, timeout=10)
    assert [r.status_code for r in response.history] == [401]
    for seen in server.state.api_requests:
        assert "Authorization" not in seen.headers
        signed = f"PUT /v2/x {seen.headers['X-Time']}".encode() + b"abc"
        digest = hmac.new(SECRET.encode(), signed, hashlib.sha512).hexdigest()
        assert seen.headers["X-Signature"] == digest
        assert len(seen.headers["X-Time"]) == 10  # seconds


def test_the_httpx_flow_without_a_client() -> None:
    """httpx's two-layer habit: drive the auth flow generator by hand."""
    with FrozenClock(KEY, SECRET, allowed_hosts=["api.example.com"]) as auth:
        request = httpx.Request("POST", "https://api.example.com/v1/q", json={"id": 1})
        flow = auth.sync_auth_flow(request)
        sent = next(flow)
        first = sent.headers["Authorization"]
        assert first.startswith(f"HMAC {KEY}:1700000000000:")
        resent = flow.send(httpx.Response(401, request=sent))
        assert resent.headers["Authorization"].startswith(f"HMAC {KEY}:1700000000001:")
        with pytest.raises(StopIteration):
            flow.send(httpx.Response(200, request=resent))
        # A 200 ends the flow at once.
        flow = auth.sync_auth_flow(httpx.Request("GET", "https://api.example.com/v1/q"))
        done = next(flow)
        with pytest.raises(StopIteration):
            flow.send(httpx.Response(200, request=done))


def test_rejections_of_one_lease_mint_one_new_lease() -> None:
    """Ten requests signed under one lease, all rejected: one new lease for the ten resends."""
    with HmacSigningAuth(KEY, SECRET, allowed_hosts=["api.example.com"]) as auth:
        flows = [
            auth.sync_auth_flow(httpx.Request("GET", f"https://api.example.com/v1/{i}"))
            for i in range(10)
        ]
        sent = [next(flow) for flow in flows]
        signed = [request.headers["Authorization"] for request in sent]
        assert auth.token_requests == 1
        for flow, request, first in zip(flows, sent, signed, strict=True):
            again = flow.send(httpx.Response(401, request=request))
            assert again.headers["Authorization"] != first
        assert auth.token_requests == 2


def test_validation_and_repr() -> None:
    with pytest.raises(ValueError, match="key_id"):
        HmacSigningAuth(" ", SECRET)
    with pytest.raises(ValueError, match="secret"):
        HmacSigningAuth(KEY, "")
    with pytest.raises(ValueError, match="digest"):
        HmacSigningAuth(KEY, SECRET, digest="sha9")
    with pytest.raises(ValueError, match="timestamp_unit"):
        HmacSigningAuth(KEY, SECRET, timestamp_unit="us")
    auth = HmacSigningAuth(KEY, SECRET)
    assert SECRET not in repr(auth)
    assert KEY in repr(auth)
    assert auth == HmacSigningAuth(KEY, SECRET)
    assert auth != HmacSigningAuth(KEY, "other")
    assert "signing-lease" in auth.get_token().access_token  # a lease, never the secret


def test_other_auth_objects_keep_their_fast_paths(server: LoopbackServer) -> None:
    assert DeliveryAuth._decorator is None
    with ClientCredentialsAuth(server.token_url, "client-123", "s3cr3t-Zq8Kd0-never-log-me") as cc:
        assert cc._decorator is None
        requests.get(server.url(), auth=cc, timeout=10)
        assert cc._requests_last is not None  # the cached requests path was taken
