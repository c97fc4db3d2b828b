"""DHL Parcel DE: the password grant (one form with the GKP login and the API key and
secret), problem+json 401 -> one new token and one resend, the login kept secret; against
the emulator's DHL Parcel DE page (loopback)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import ClassVar

import pytest
from carrier_contract import CarrierContract
from conftest import CLIENTS, FAST_BACKOFF, call
from emulated import EmulatedProvider
from loopback import Reply

from delivery_auth import (
    ConfigurationError,
    DHLParcelDEAuth,
    DisallowedHostError,
    InvalidClientError,
    PasswordGrantAuth,
)
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers.spec import get

KNOWN = CREDENTIALS["dhl_parcel_de"]
API_KEY, API_SECRET = KNOWN.client_id, KNOWN.client_secret
USERNAME, PASSWORD = KNOWN.extra["username"], KNOWN.extra["password"]
ENV = {
    "DHL_PARCEL_DE_API_KEY": API_KEY,
    "DHL_PARCEL_DE_API_SECRET": API_SECRET,
    "DHL_PARCEL_DE_USERNAME": USERNAME,
    "DHL_PARCEL_DE_PASSWORD": PASSWORD,
}


class TestContract(CarrierContract):
    provider = "dhl_parcel_de"
    wrong: ClassVar[dict[str, str]] = {"api_secret": "not-the-dhl-secret-42"}
    advice = "client_id, client_secret, username and password"


class TestContractWrongPassword(CarrierContract):
    provider = "dhl_parcel_de"
    wrong: ClassVar[dict[str, str]] = {"password": "NotThePasswort2023?"}
    advice = "username and password"


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("dhl_parcel_de") as srv:
        yield srv


def make(server: EmulatedProvider, **options: object) -> DHLParcelDEAuth:
    options.setdefault("token_url", server.token_url)
    options.setdefault("backoff", FAST_BACKOFF)
    return DHLParcelDEAuth(API_KEY, API_SECRET, USERNAME, PASSWORD, **options)  # type: ignore[arg-type]


def test_registered_and_a_password_grant() -> None:
    assert get("dhl_parcel_de").auth_class is DHLParcelDEAuth
    assert issubclass(DHLParcelDEAuth, PasswordGrantAuth)


@pytest.mark.parametrize("client", CLIENTS)
def test_the_token_request_is_one_form(client: str, server: EmulatedProvider) -> None:
    with make(server) as auth:
        assert call(client, auth, "GET", server.resource_url).status == 200
    (seen,) = server.token_requests
    assert (seen.method, seen.path) == ("POST", "/parcel/de/account/auth/ropc/v1/token")
    assert seen.form == {
        "grant_type": "password",
        "username": USERNAME,
        "password": PASSWORD,
        "client_id": API_KEY,
        "client_secret": API_SECRET,
    }
    assert "Authorization" not in seen.headers
    (api,) = server.api_requests
    assert api.headers["Authorization"] == f"Bearer {server.issued[0]}"
    assert not any(name.lower() == "dhl-api-key" for name in api.headers)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_401_problem_on_the_token_endpoint_names_the_login_and_hides_it(
    client: str, server: EmulatedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.token_script.append(
        Reply(
            401,
            {"title": "Unauthorized", "statusCode": 401, "detail": f"bad login {PASSWORD}"},
            {"Content-Type": "application/problem+json"},
        )
    )
    with make(server) as auth, pytest.raises(InvalidClientError) as caught:
        call(client, auth, "GET", server.resource_url)
    error = caught.value
    assert error.error == "Unauthorized"
    assert "username and password" in str(error)
    assert PASSWORD not in str(error) + repr(vars(error)) + caplog.text


class TestConfiguration:
    @pytest.mark.parametrize(
        ("environment", "host"),
        [("production", "api-eu.dhl.com"), ("sandbox", "api-sandbox.dhl.com")],
    )
    def test_environments(self, environment: str, host: str) -> None:
        with DHLParcelDEAuth(
            API_KEY, API_SECRET, USERNAME, PASSWORD, environment=environment
        ) as auth:
            assert auth.token_url == f"https://{host}/parcel/de/account/auth/ropc/v1/token"
            assert auth.allowed_hosts == (host, "localhost", "127.0.0.0/8", "::1")
            assert auth.api_root == f"https://{host}/parcel/de"
            with pytest.raises(DisallowedHostError):
                call("httpx", auth, "GET", "https://api.dhlecs.com/shipping/v4/label")

    def test_unknown_environment(self) -> None:
        with pytest.raises(ValueError, match="'production', 'sandbox'"):
            DHLParcelDEAuth(API_KEY, API_SECRET, USERNAME, PASSWORD, environment="test")

    def test_from_env(self, server: EmulatedProvider) -> None:
        with DHLParcelDEAuth.from_env({**ENV, "DHL_PARCEL_DE_ENVIRONMENT": "sandbox"}) as auth:
            assert auth.environment == "sandbox"
            assert (auth.api_key, auth.username) == (API_KEY, USERNAME)
        with DHLParcelDEAuth.from_env(ENV, token_url=server.token_url) as auth:
            assert call("httpx-async", auth, "GET", server.resource_url).status == 200

    def test_from_env_names_the_missing_ones(self) -> None:
        partial = {k: v for k, v in ENV.items() if "PASSWORD" not in k and "USER" not in k}
        with pytest.raises(ConfigurationError) as caught:
            DHLParcelDEAuth.from_env(partial)
        assert caught.value.missing == ("DHL_PARCEL_DE_USERNAME", "DHL_PARCEL_DE_PASSWORD")

    def test_repr_has_the_user_not_the_secrets(self) -> None:
        with DHLParcelDEAuth(API_KEY, API_SECRET, USERNAME, PASSWORD) as auth:
            assert repr(auth) == (
                f"DHLParcelDEAuth(api_key={API_KEY!r}, username={USERNAME!r}, "
                "environment='production', "
                "token_url='https://api-eu.dhl.com/parcel/de/account/auth/ropc/v1/token')"
            )
