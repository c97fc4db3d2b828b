"""Client credentials, more shapes: a JSON token-request body, extra token-request headers,
``expires_in``/``issued_at`` as strings or numbers, ``issued_at`` in milliseconds.

Against the scriptable loopback token endpoint (tests/loopback.py): what it received is
what the library sent on the wire.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import call
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer, Reply

from delivery_auth import ClientCredentialsAuth, InvalidClientError, Token
from delivery_auth.cache.base import cache_key
from delivery_auth.token import epoch_seconds

MakeAuth = Callable[..., ClientCredentialsAuth]


def _token(**fields: Any) -> Reply:
    return Reply(200, {"access_token": "tok-shaped", "token_type": "Bearer", **fields})


class TestJsonBody:
    def test_client_secret_post_fields_become_one_json_object(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        server.state.token_script.append(_token(expires_in=3600))
        auth = make_auth(
            token_request_format="json", scope=["a", "b"], token_params={"audience": "x"}
        )
        assert auth.get_token().access_token == "tok-shaped"
        (seen,) = server.state.token_requests
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["Content-Length"] == str(len(seen.body))
        assert seen.headers["Accept"] == "application/json"
        assert json.loads(seen.body) == {
            "grant_type": "client_credentials",
            "audience": "x",
            "scope": "a b",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        assert seen.form == {}  # not a form
        assert "Authorization" not in seen.headers

    def test_client_secret_basic_keeps_the_secret_out_of_the_body(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(
            token_request_format="json", token_endpoint_auth_method="client_secret_basic"
        )
        assert call("httpx", auth, "GET", server.url()).status == 200  # the server decoded Basic
        (seen,) = server.state.token_requests
        assert json.loads(seen.body) == {"grant_type": "client_credentials"}
        pair = base64.b64decode(seen.headers["Authorization"].removeprefix("Basic ")).decode()
        assert pair == f"{CLIENT_ID}:{CLIENT_SECRET}"

    def test_non_ascii_values_are_escaped_and_length_is_right(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        server.state.token_script.append(_token())
        make_auth(token_request_format="json", token_params={"site": "Zürich ✓"}).get_token()
        (seen,) = server.state.token_requests
        assert seen.body.isascii()
        assert int(seen.headers["Content-Length"]) == len(seen.body)
        assert json.loads(seen.body)["site"] == "Zürich ✓"

    def test_the_default_is_still_a_form(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        make_auth().get_token()
        (seen,) = server.state.token_requests
        assert seen.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert seen.form["grant_type"] == "client_credentials"

    def test_unknown_format_is_refused(self, server: LoopbackServer) -> None:
        with pytest.raises(ValueError, match="'form', 'json'") as caught:
            ClientCredentialsAuth(
                server.token_url, CLIENT_ID, CLIENT_SECRET, token_request_format="xml"
            )
        assert "xml" in str(caught.value)

    @pytest.mark.parametrize("secret", ['s3"cr\\et-!', "plain-secret-1234"])
    def test_an_echoed_secret_is_scrubbed_in_every_encoding(
        self, server: LoopbackServer, secret: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        echoed = json.dumps({"client_secret": secret})  # the request body, quoted back
        server.state.token_script.append(
            Reply(401, {"error": "invalid_client", "error_description": f"bad body {echoed}"})
        )
        auth = ClientCredentialsAuth(
            server.token_url, CLIENT_ID, secret, token_request_format="json"
        )
        with auth, pytest.raises(InvalidClientError) as caught:
            auth.get_token()
        shown = str(caught.value) + repr(caught.value.description) + caplog.text
        assert "bad body" in shown
        assert secret not in shown
        assert json.dumps(secret)[1:-1] not in shown


class TestTokenHeaders:
    def test_sent_on_every_token_request(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        auth = make_auth(token_headers={"x-merchant-id": "123456", "X-Trace": "a b"})
        assert call("requests", auth, "GET", server.url()).status == 200
        server.state.revoke_all()
        result = call("httpx", auth, "GET", server.url())
        assert (result.status, result.history) == (200, [401])
        assert len(server.state.token_requests) == 2
        for seen in server.state.token_requests:
            assert seen.headers["x-merchant-id"] == "123456"
            assert seen.headers["X-Trace"] == "a b"
            assert seen.headers["Accept"] == "application/json"  # Authlib's defaults stay
        for seen in server.state.api_requests:  # token-request headers only
            assert "x-merchant-id" not in seen.headers

    @pytest.mark.parametrize(
        ("headers", "method", "says"),
        [
            ({"Content-Type": "text/plain"}, "client_secret_post", "may not set 'Content-Type'"),
            ({"content-length": "3"}, "client_secret_post", "may not set 'content-length'"),
            ({"Authorization": "Basic x"}, "client_secret_basic", "client authentication"),
            ({"x-key": "v\r\nInjected: 1"}, "client_secret_post", "line break"),
            ({"x-key": 5}, "client_secret_post", "must be a string"),
            ({"bad name": "v"}, "client_secret_post", "not a valid header name"),
            ({"X-A": "1", "x-a": "2"}, "client_secret_post", "twice"),
        ],
    )
    def test_bad_headers_are_named_without_their_value(
        self, server: LoopbackServer, headers: dict[str, Any], method: str, says: str
    ) -> None:
        with pytest.raises(ValueError, match=says) as caught:
            ClientCredentialsAuth(
                server.token_url,
                CLIENT_ID,
                CLIENT_SECRET,
                token_headers=headers,
                token_endpoint_auth_method=method,
            )
        assert "Injected" not in str(caught.value)

    def test_not_a_mapping(self, server: LoopbackServer) -> None:
        with pytest.raises(TypeError, match="mapping"):
            ClientCredentialsAuth(
                server.token_url,
                CLIENT_ID,
                CLIENT_SECRET,
                token_headers=[("a", "b")],  # type: ignore[arg-type]
            )

    def test_an_authorization_header_is_allowed_with_client_secret_post(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        make_auth(token_headers={"Authorization": "Gateway k-1"}).get_token()
        (seen,) = server.state.token_requests
        assert seen.headers["Authorization"] == "Gateway k-1"

    def test_headers_tell_cache_entries_apart_and_stay_out_of_reprs(
        self, server: LoopbackServer
    ) -> None:
        def build(headers: dict[str, str] | None) -> ClientCredentialsAuth:
            return ClientCredentialsAuth(
                server.token_url, CLIENT_ID, CLIENT_SECRET, token_headers=headers
            )

        plain, one, same, other = (
            build(None),
            build({"x-merchant-id": "111111"}),
            build({"X-Merchant-Id": "111111"}),
            build({"x-merchant-id": "222222"}),
        )
        # Without token headers, the key is the one earlier versions made (shared caches
        # survive an upgrade).
        assert plain._engine._key == cache_key(server.token_url, CLIENT_ID, CLIENT_SECRET)
        assert one._engine._key == same._engine._key
        assert len({plain._engine._key, one._engine._key, other._engine._key}) == 3
        assert one == same
        assert one != other
        assert plain != one
        assert "111111" not in repr(one) + str(one._identity())
        for auth in (plain, one, same, other):
            auth.close()


class TestExpiresInAndIssuedAt:
    @pytest.mark.parametrize(
        ("expires_in", "issued_at", "server_issued_at"),
        [
            ("14399", "1718000000123", 1718000000.123),  # UPS: every field a string, ms
            (28799, 1718000000123, 1718000000.123),  # USPS live: numbers, ms
            ("28799", "1718000000", 1718000000.0),  # seconds
            (3600.5, 1718000000.5, 1718000000.5),
            (3600, "not a time", None),  # unusable: ignored, never an error
            (3600, True, None),
            (3600, -5, None),
            (3600, None, None),
        ],
    )
    def test_strings_or_numbers(
        self,
        server: LoopbackServer,
        make_auth: MakeAuth,
        expires_in: Any,
        issued_at: Any,
        server_issued_at: float | None,
    ) -> None:
        fields = {"expires_in": expires_in, "refresh_count": "0", "status": "approved"}
        if issued_at is not None:
            fields["issued_at"] = issued_at
        server.state.token_script.append(_token(**fields))
        token = make_auth().get_token()
        assert token.lifetime == float(expires_in)
        assert token.server_issued_at == server_issued_at
        # Unknown fields are kept as sent.
        assert token.extra["refresh_count"] == "0"
        assert token.extra["status"] == "approved"

    def test_milliseconds_are_told_from_seconds(self) -> None:
        assert epoch_seconds(100_000_000_001) == pytest.approx(100_000_000.001)
        assert epoch_seconds(99_999_999_999) == 99_999_999_999.0  # the year 5138, in seconds
        assert epoch_seconds(float("nan")) is None
        assert epoch_seconds("1e400") is None

    def test_expiry_counts_from_when_the_token_arrived(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        # The server's clock says this token was issued 3500 s ago (ms) and lives 3600 s:
        # measured from its issued_at it would be inside the 60 s refresh margin and be
        # fetched again at every call. Measured from arrival it lives an hour.
        long_ago_ms = int((time.time() - 3500) * 1000)
        server.state.expires_in = "3600"
        server.state.extra_token_fields = {"issued_at": str(long_ago_ms)}
        auth = make_auth()
        for _ in range(3):
            assert call("requests", auth, "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 1
        lease = auth._engine.current()
        assert lease.token.lifetime == 3600.0
        assert lease.usable_until == pytest.approx(lease.token.obtained_at + 3600 - 60)
        assert lease.token.server_issued_at == pytest.approx(long_ago_ms / 1000)

    def test_a_token_built_by_hand_has_no_server_time(self) -> None:
        assert Token("abc").server_issued_at is None
