"""UPS: Basic client auth, x-merchant-id on the token request, every answer field a string
(issued_at in ms), UPS's 401 code 250002 -> one new token and one resend; against the
emulator's UPS page (loopback)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest
from carrier_contract import CarrierContract
from conftest import CLIENTS, FAST_BACKOFF, call
from emulated import EmulatedProvider
from loopback import Reply

from delivery_auth import ConfigurationError, DisallowedHostError, InvalidClientError, UPSAuth
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers.spec import get

KNOWN = CREDENTIALS["ups"]
CLIENT_ID, CLIENT_SECRET = KNOWN.client_id, KNOWN.client_secret
MERCHANT = KNOWN.extra["merchant_id"]


class TestContract(CarrierContract):
    provider = "ups"
    wrong: ClassVar[dict[str, str]] = {"client_secret": "not-the-ups-secret-42"}


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("ups") as srv:
        yield srv


def make(server: EmulatedProvider, **options: object) -> UPSAuth:
    options.setdefault("token_url", server.token_url)
    options.setdefault("backoff", FAST_BACKOFF)
    return UPSAuth(CLIENT_ID, CLIENT_SECRET, **options)  # type: ignore[arg-type]


def merchant_header(headers: dict[str, str]) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == "x-merchant-id"), None)


def test_registered() -> None:
    assert get("ups").auth_class is UPSAuth


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("merchant_id", [MERCHANT, None])
def test_the_token_request(client: str, merchant_id: str | None, server: EmulatedProvider) -> None:
    with make(server, merchant_id=merchant_id) as auth:
        assert call(client, auth, "GET", server.resource_url).status == 200
        server.revoke_all()
        assert call(client, auth, "GET", server.resource_url).status == 200
    assert len(server.token_requests) == 2
    for seen in server.token_requests:
        assert (seen.method, seen.path) == ("POST", "/security/v1/oauth/token")
        assert seen.form == {"grant_type": "client_credentials"}  # no scope, no secret
        pair = base64.b64decode(seen.headers["Authorization"].removeprefix("Basic ")).decode()
        assert pair == f"{CLIENT_ID}:{CLIENT_SECRET}"
        assert merchant_header(seen.headers) == merchant_id
    for seen in server.api_requests:
        assert merchant_header(seen.headers) is None


def test_every_field_a_string_issued_at_in_ms(server: EmulatedProvider) -> None:
    server.emu.token_ttl = 14399
    before = time.time()
    with make(server) as auth:
        token = auth.get_token()
    (answer,) = server.token_answers
    assert all(isinstance(value, str) for value in answer.values())
    assert answer["expires_in"] == "14399"
    assert token.lifetime == 14399.0
    assert token.server_issued_at is not None
    assert before - 1 <= token.server_issued_at <= time.time() + 1
    assert token.extra["refresh_count"] == "0"


def test_scope_is_sent_when_given(server: EmulatedProvider) -> None:
    with make(server, scope="public") as auth:
        auth.get_token()
    assert server.token_requests[0].form == {"grant_type": "client_credentials", "scope": "public"}


def test_token_error_codes(server: EmulatedProvider) -> None:
    server.token_script.append(
        Reply(401, {"response": {"errors": [{"code": "10401", "message": "ClientId is Invalid"}]}})
    )
    with make(server) as auth, pytest.raises(InvalidClientError) as caught:
        auth.get_token()
    assert caught.value.status_code == 401
    assert "client_id and client_secret" in str(caught.value)


@pytest.mark.parametrize("client", CLIENTS)
def test_403_blocked_merchant_is_not_a_token_problem(client: str, server: EmulatedProvider) -> None:
    blocked = {"response": {"errors": [{"code": "250003", "message": "Blocked merchant"}]}}
    server.api_script.append(Reply(403, blocked))
    with make(server) as auth:
        assert call(client, auth, "GET", server.resource_url).status == 403
    assert len(server.token_requests) == 1
    assert len(server.api_requests) == 1


class TestConfiguration:
    @pytest.mark.parametrize(
        ("environment", "host"),
        [
            ("production", "onlinetools.ups.com"),
            ("test", "wwwcie.ups.com"),
            ("TEST", "wwwcie.ups.com"),
        ],
    )
    def test_environments(self, environment: str, host: str) -> None:
        with UPSAuth(CLIENT_ID, CLIENT_SECRET, environment=environment) as auth:
            assert auth.token_url == f"https://{host}/security/v1/oauth/token"
            assert auth.allowed_hosts == (host, "localhost", "127.0.0.0/8", "::1")
            assert auth.api_root == f"https://{host}/api"
        other = "wwwcie.ups.com" if host == "onlinetools.ups.com" else "onlinetools.ups.com"
        with UPSAuth(CLIENT_ID, CLIENT_SECRET, environment=environment) as auth:
            with pytest.raises(DisallowedHostError):
                call("requests", auth, "GET", f"https://{other}/api/track/v1/details/1Z")

    def test_unknown_environment(self) -> None:
        with pytest.raises(ValueError, match="'production', 'test'"):
            UPSAuth(CLIENT_ID, CLIENT_SECRET, environment="cie")

    @pytest.mark.parametrize("merchant_id", ["", 123456])
    def test_bad_merchant_id(self, merchant_id: object) -> None:
        with pytest.raises(ValueError, match="merchant_id must be a non-empty string"):
            UPSAuth(CLIENT_ID, CLIENT_SECRET, merchant_id=merchant_id)  # type: ignore[arg-type]

    def test_merchant_id_or_its_header_not_both(self) -> None:
        with pytest.raises(ValueError, match="not both"):
            UPSAuth(CLIENT_ID, CLIENT_SECRET, merchant_id="A", token_headers={"X-Merchant-Id": "B"})

    def test_merchant_ids_do_not_share_a_cache_entry(self) -> None:
        with (
            UPSAuth(CLIENT_ID, CLIENT_SECRET, merchant_id="A1") as one,
            UPSAuth(CLIENT_ID, CLIENT_SECRET, merchant_id="B2") as two,
        ):
            assert one._engine._key != two._engine._key

    def test_from_env(self, server: EmulatedProvider) -> None:
        env = {
            "UPS_CLIENT_ID": CLIENT_ID,
            "UPS_CLIENT_SECRET": CLIENT_SECRET,
            "UPS_MERCHANT_ID": MERCHANT,
            "UPS_ENVIRONMENT": "test",
        }
        with UPSAuth.from_env(env) as auth:
            assert (auth.environment, auth.merchant_id) == ("test", MERCHANT)
        with UPSAuth.from_env(env, token_url=server.token_url) as auth:
            assert call("httpx", auth, "GET", server.resource_url).status == 200
        assert merchant_header(server.token_requests[0].headers) == MERCHANT

    def test_from_env_names_the_missing_ones(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            UPSAuth.from_env({"UPS_MERCHANT_ID": MERCHANT})
        assert caught.value.missing == ("UPS_CLIENT_ID", "UPS_CLIENT_SECRET")

    def test_repr(self) -> None:
        with UPSAuth(CLIENT_ID, CLIENT_SECRET) as auth:
            assert repr(auth) == (
                f"UPSAuth(client_id={CLIENT_ID!r}, environment='production', "
                "token_url='https://onlinetools.ups.com/security/v1/oauth/token')"
            )
