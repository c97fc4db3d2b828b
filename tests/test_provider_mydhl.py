"""DHL Express (MyDHL API): HTTP Basic and the required ``x-version`` header, against the
emulator's MyDHL page (the checks every static carrier passes are in static_carriers.py),
and the hosts of each environment."""

from __future__ import annotations

import base64

import pytest
from conftest import CLIENTS, call
from emulated import EmulatedProvider
from static_carriers import *  # noqa: F403 - the shared checks run with this carrier
from static_carriers import Carrier

from delivery_auth import MyDHLExpressAuth
from delivery_auth.emulator import CREDENTIALS

USER = CREDENTIALS["mydhl"].client_id


def _basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()


@pytest.fixture
def carrier() -> Carrier:
    return Carrier("mydhl", "Authorization", _basic)


@pytest.mark.parametrize("client", CLIENTS)
def test_every_call_carries_x_version_unless_it_sets_its_own(
    client: str, server: EmulatedProvider, made: list[object]
) -> None:
    auth = server.emu.auth("mydhl")
    newer = server.emu.auth("mydhl", api_version="3.2.0")
    made += [auth, newer]
    assert call(client, auth, "GET", server.url("/rates")).status == 200
    assert (
        call(client, auth, "GET", server.url("/rates"), headers={"X-Version": "2.8"}).status == 200
    )
    assert call(client, newer, "POST", server.url("/shipments"), body=b"{}").status == 200
    versions = [
        {k.lower(): v for k, v in seen.headers.items()}["x-version"] for seen in server.api_requests
    ]
    assert versions == ["3.1.0", "2.8", "3.2.0"]


def test_without_x_version_the_api_refuses(server: EmulatedProvider) -> None:
    """The page behaves like MyDHL: what the header is for."""
    plain = call(
        "requests",
        None,
        "GET",
        server.resource_url,
        headers={"Authorization": _basic(CREDENTIALS["mydhl"].token or "")},
    )
    assert plain.status == 400
    assert "x-version" in plain.json()["detail"]


@pytest.mark.parametrize(
    ("environment", "api_url", "host"),
    [
        ("production", "https://express.api.dhl.com/mydhlapi", "express.api.dhl.com"),
        ("test", "https://express.api.dhl.com/mydhlapi/test", "express.api.dhl.com"),
        ("mock", "https://api-mock.dhl.com/mydhlapi", "api-mock.dhl.com"),
    ],
)
def test_environments(environment: str, api_url: str, host: str) -> None:
    auth = MyDHLExpressAuth("user", "pw", environment=environment.upper())
    assert auth.api_url == api_url
    assert auth.allowed_hosts is not None
    assert host in auth.allowed_hosts
    other = "api-mock.dhl.com" if host != "api-mock.dhl.com" else "express.api.dhl.com"
    assert not auth._hosts.admits(other)
    assert repr(auth) == (
        f"MyDHLExpressAuth(username='user', environment={environment!r}, api_url={api_url!r})"
    )


def test_an_unknown_environment_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="'production', 'test', 'mock'"):
        MyDHLExpressAuth("user", "pw", environment="sandbox")


def test_from_env_reads_the_environment_name() -> None:
    env = {"MYDHL_USERNAME": "u", "MYDHL_PASSWORD": "p", "MYDHL_ENVIRONMENT": "test"}
    assert MyDHLExpressAuth.from_env(env).environment == "test"
