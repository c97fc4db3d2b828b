"""``client_secret_basic`` as RFC 6749 §2.3.1 defines it.

The client id and the secret are each form-encoded (``application/x-www-form-urlencoded``,
UTF-8) before being joined with ``:`` and base64-encoded. The token server below decodes
exactly that way, as compliant servers do, and accepts only the right credentials.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest
from conftest import FAST_BACKOFF, call
from loopback import LoopbackServer

from delivery_auth import (
    ClientCredentialsAuth,
    ConfigurationError,
    DeliveryAuthError,
    InvalidClientError,
)


class RFCBasicTokenServer(ThreadingHTTPServer):
    """A token endpoint that decodes HTTP Basic client authentication per RFC 6749."""

    daemon_threads = True

    def __init__(self, client_id: str, client_secret: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.credentials = (client_id, client_secret)
        self.seen: list[tuple[str, str] | None] = []

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/token"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RFCBasicTokenServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        decoded = _decode_basic(self.headers.get("Authorization", ""))
        self.server.seen.append(decoded)
        if decoded == self.server.credentials:
            status, payload = 200, {"access_token": "tok-rfc", "token_type": "Bearer"}
        else:
            # Like a careless server: quotes the password part as it arrived, undecoded.
            raw = base64.b64decode(self.headers.get("Authorization", "Basic ")[6:] or b"")
            echoed = raw.decode("utf-8", "replace").partition(":")[2]
            status = 401
            payload = {"error": "invalid_client", "error_description": f"bad secret {echoed}"}
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _decode_basic(header: str) -> tuple[str, str] | None:
    """base64 -> UTF-8 -> split on the first ':' -> form-decode each part."""
    scheme, _, value = header.partition(" ")
    if scheme != "Basic":
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = text.partition(":")
    if not sep:
        return None
    return unquote_plus(user), unquote_plus(password)


@pytest.fixture
def rfc_server(request: pytest.FixtureRequest) -> Iterator[RFCBasicTokenServer]:
    client_id, client_secret = request.param
    server = RFCBasicTokenServer(client_id, client_secret)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


CREDENTIALS = [
    ("client-123", "a+b"),  # '+' is a space once form-decoded
    ("client-123", "50%41off"),  # '%41' is 'A' once form-decoded
    ("client:123", "secret"),  # the first ':' separates id and secret
    ("client-123", "pa:ss word+1%"),
    ("client-123", "pässwörd"),  # Latin-1
    ("client-123", "пароль€"),  # outside Latin-1
    ("клиент", "🔑-secret"),
]


@pytest.mark.parametrize("rfc_server", CREDENTIALS, indirect=True, ids=repr)
def test_client_secret_basic_is_form_encoded_before_base64(
    rfc_server: RFCBasicTokenServer,
) -> None:
    client_id, client_secret = rfc_server.credentials
    with ClientCredentialsAuth(
        rfc_server.token_url,
        client_id,
        client_secret,
        token_endpoint_auth_method="client_secret_basic",
        backoff=FAST_BACKOFF,
    ) as auth:
        assert auth.get_token().access_token == "tok-rfc"
    assert rfc_server.seen == [(client_id, client_secret)]


@pytest.mark.parametrize("rfc_server", [("id+1", "p+w%:€")], indirect=True, ids=repr)
@pytest.mark.parametrize("client", ["requests", "httpx2"])
def test_client_secret_basic_through_a_client(
    rfc_server: RFCBasicTokenServer, server: LoopbackServer, client: str
) -> None:
    client_id, client_secret = rfc_server.credentials
    with ClientCredentialsAuth(
        rfc_server.token_url,
        client_id,
        client_secret,
        token_endpoint_auth_method="client_secret_basic",
    ) as auth:
        server.state.valid.add("tok-rfc")
        assert call(client, auth, "GET", server.url()).status == 200
    assert server.state.api_requests[0].headers["Authorization"] == "Bearer tok-rfc"


@pytest.mark.parametrize("rfc_server", [("client-123", "other")], indirect=True, ids=repr)
def test_a_rejection_never_echoes_the_secret_in_either_form(
    rfc_server: RFCBasicTokenServer,
) -> None:
    secret = "wrong+secret/пароль"
    with ClientCredentialsAuth(
        rfc_server.token_url,
        "client-123",
        secret,
        token_endpoint_auth_method="client_secret_basic",
        backoff=FAST_BACKOFF,
    ) as auth:
        with pytest.raises(InvalidClientError) as info:
            auth.get_token()
    assert "bad secret ***" in str(info.value)
    for text in (str(info.value), repr(info.value), str(info.value.description)):
        assert secret not in text
        assert quote_plus(secret) not in text


SURROGATE_SECRET = "s3cr3t-\udcff-tail"  # e.g. a secret read with errors="surrogateescape"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_a_value_that_cannot_be_encoded_is_a_configuration_error(method: str, field: str) -> None:
    args = {"client_id": "client-123", "client_secret": "fine-secret"}
    args[field] = SURROGATE_SECRET
    with pytest.raises(ConfigurationError) as info:
        ClientCredentialsAuth(
            "https://auth.example.com/token", token_endpoint_auth_method=method, **args
        )
    error = info.value
    assert isinstance(error, DeliveryAuthError)
    assert isinstance(error, ValueError)
    assert field in str(error)
    for text in (str(error), repr(error), repr(error.args)):
        assert "s3cr3t" not in text
        assert "\udcff" not in text
    assert error.__context__ is None  # no UnicodeEncodeError carrying the value
