"""USPS APIs v3: a JSON token request on the cloud hosts, numbers or strings in the token
response (issued_at in ms), USPS's 401 shape -> one new token and one resend; against the
emulator's USPS page (loopback)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from carrier_contract import CarrierContract
from conftest import CLIENTS, FAST_BACKOFF, call
from emulated import EmulatedProvider
from loopback import Reply

from delivery_auth import ConfigurationError, DisallowedHostError, USPSAuth
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers.spec import get
from delivery_auth.providers.usps import PAYMENT_AUTHORIZATION_PATH

CLIENT_ID = CREDENTIALS["usps"].client_id
CLIENT_SECRET = CREDENTIALS["usps"].client_secret


class TestContract(CarrierContract):
    provider = "usps"
    wrong: ClassVar[dict[str, str]] = {"client_secret": "not-the-usps-secret-42"}


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("usps") as srv:
        yield srv


@pytest.fixture
def auth(server: EmulatedProvider) -> Iterator[USPSAuth]:
    with USPSAuth(
        CLIENT_ID, CLIENT_SECRET, token_url=server.token_url, backoff=FAST_BACKOFF
    ) as made:
        yield made


def test_registered() -> None:
    assert get("usps").auth_class is USPSAuth


@pytest.mark.parametrize("client", CLIENTS)
def test_the_token_request_is_json(client: str, server: EmulatedProvider, auth: USPSAuth) -> None:
    assert call(client, auth, "GET", server.resource_url).status == 200
    (seen,) = server.token_requests
    assert (seen.method, seen.path) == ("POST", "/oauth2/v3/token")
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert "Authorization" not in seen.headers


@pytest.mark.parametrize("fields", ["numbers", "strings"])
def test_numbers_or_strings_and_issued_at_in_ms(
    fields: str, server: EmulatedProvider, auth: USPSAuth
) -> None:
    server.emu.usps_fields = fields
    server.emu.token_ttl = 28799
    before = time.time()
    token = auth.get_token()
    (answer,) = server.token_answers
    assert isinstance(answer["expires_in"], str) == (fields == "strings")
    assert int(answer["issued_at"]) > 1e11  # milliseconds on the wire
    assert token.lifetime == 28799.0
    assert token.server_issued_at is not None
    assert before - 1 <= token.server_issued_at <= time.time() + 1
    assert token.extra["status"] == "approved"


def test_a_form_body_can_be_chosen(server: EmulatedProvider) -> None:
    with USPSAuth(
        CLIENT_ID, CLIENT_SECRET, token_url=server.token_url, token_request_format="form"
    ) as auth:
        auth.get_token()
    (seen,) = server.token_requests
    assert seen.form["grant_type"] == "client_credentials"


@pytest.mark.parametrize("client", CLIENTS)
def test_403_is_not_a_token_problem(client: str, server: EmulatedProvider, auth: USPSAuth) -> None:
    server.api_script.append(Reply(403, {"apiVersion": "v3", "error": {"code": "403"}}))
    assert call(client, auth, "GET", server.resource_url).status == 403
    assert len(server.token_requests) == 1
    assert len(server.api_requests) == 1


@pytest.mark.parametrize(
    ("environment", "host"),
    [
        ("production", "apis.usps.com"),
        ("test", "apis-tem.usps.com"),
        (" Test ", "apis-tem.usps.com"),
    ],
)
def test_environments(environment: str, host: str) -> None:
    with USPSAuth(CLIENT_ID, CLIENT_SECRET, environment=environment) as auth:
        assert auth.token_url == f"https://{host}/oauth2/v3/token"
        assert auth.allowed_hosts == (host, "localhost", "127.0.0.0/8", "::1")
        assert auth.api_root == f"https://{host}"
        other = "apis.usps.com" if host != "apis.usps.com" else "apis-tem.usps.com"
        with pytest.raises(DisallowedHostError):
            call("httpx", auth, "GET", f"https://{other}/addresses/v3/address")


def test_unknown_environment() -> None:
    with pytest.raises(ValueError, match="'production', 'test'") as caught:
        USPSAuth(CLIENT_ID, CLIENT_SECRET, environment="cat")
    assert "cat" in str(caught.value)


def test_allowed_hosts_replace_the_defaults() -> None:
    with USPSAuth(CLIENT_ID, CLIENT_SECRET, allowed_hosts=["proxy.example.com"]) as auth:
        assert auth.allowed_hosts == ("proxy.example.com",)


class TestPaymentRoles:
    ROLE: ClassVar[dict[str, str]] = {
        "roleName": "PAYER",
        "CRID": "5678",
        "accountType": "EPS",
        "accountNumber": "1",
    }

    def test_kept_as_copies(self) -> None:
        roles = [dict(self.ROLE)]
        with USPSAuth(CLIENT_ID, CLIENT_SECRET, payment_roles=roles) as auth:
            roles[0]["CRID"] = "changed"
            assert auth.payment_roles == (self.ROLE,)
            assert "5678" not in repr(auth)
        assert PAYMENT_AUTHORIZATION_PATH == "/payments/v3/payment-authorization"

    def test_none_by_default(self) -> None:
        with USPSAuth(CLIENT_ID, CLIENT_SECRET) as auth:
            assert auth.payment_roles is None

    @pytest.mark.parametrize(
        ("roles", "says"),
        [
            ("PAYER", "list of role objects"),
            (ROLE, "list of role objects"),
            ([], "empty"),
            ([ROLE, "LABEL_OWNER"], r"payment_roles\[1\] must be a dict"),
            ([{1: "x"}], "string keys"),
        ],
    )
    def test_bad_roles(self, roles: Any, says: str) -> None:
        with pytest.raises(ValueError, match=says):
            USPSAuth(CLIENT_ID, CLIENT_SECRET, payment_roles=roles)


class TestFromEnv:
    def test_reads_the_variables(self, server: EmulatedProvider) -> None:
        env = {
            "USPS_CLIENT_ID": CLIENT_ID,
            "USPS_CLIENT_SECRET": CLIENT_SECRET,
            "USPS_ENVIRONMENT": "test",
        }
        with USPSAuth.from_env(env) as auth:
            assert auth.environment == "test"
        with USPSAuth.from_env(env, token_url=server.token_url) as auth:
            assert call("httpx-async", auth, "GET", server.resource_url).status == 200

    def test_names_the_missing_ones(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            USPSAuth.from_env({"USPS_CLIENT_SECRET": CLIENT_SECRET})
        assert caught.value.missing == ("USPS_CLIENT_ID",)
        assert "USPS_CLIENT_ID" in str(caught.value)
        assert CLIENT_SECRET not in str(caught.value)

    def test_repr(self) -> None:
        with USPSAuth(CLIENT_ID, CLIENT_SECRET, environment="test") as auth:
            assert repr(auth) == (
                f"USPSAuth(client_id={CLIENT_ID!r}, environment='test', "
                "token_url='https://apis-tem.usps.com/oauth2/v3/token')"
            )
