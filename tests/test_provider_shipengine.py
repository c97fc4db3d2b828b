"""ShipEngine: ``API-Key: <key>`` against the emulator's ShipEngine page (the checks every
static carrier passes are in static_carriers.py), its hosts and its 401 body."""

from __future__ import annotations

import pytest
from conftest import call
from emulated import EmulatedProvider
from static_carriers import *  # noqa: F403 - the shared checks run with this carrier
from static_carriers import Carrier

from delivery_auth import ShipEngineAuth
from delivery_auth.providers.spec import registry


@pytest.fixture
def carrier() -> Carrier:
    return Carrier("shipengine", "API-Key", lambda key: key)


def test_registered_with_its_hosts() -> None:
    spec = registry()["shipengine"]
    assert spec.auth_class is ShipEngineAuth
    assert {"api.shipengine.com", "api.eu.shipengine.com"} <= set(spec.default_hosts)


def test_the_eu_host_is_allowed_and_sandbox_keys_are_recognised() -> None:
    auth = ShipEngineAuth("TEST_abc")
    assert auth._hosts.admits("api.eu.shipengine.com")
    assert not auth._hosts.admits("api.shipengine.com.evil.example")
    assert "sandbox=True" in repr(auth)
    assert "TEST_abc" not in repr(auth)
    assert ShipEngineAuth("live-key").sandbox is False


def test_no_authorization_header_and_the_401_body_is_shipengines(
    server: EmulatedProvider, made: list[object]
) -> None:
    auth = ShipEngineAuth("not-a-key", api_url=server.base)
    made.append(auth)
    result = call("requests", auth, "GET", server.url("/v1/labels"))
    assert result.status == 401
    (error,) = result.json()["errors"]
    assert (error["error_source"], error["error_type"], error["error_code"]) == (
        "shipengine",
        "security",
        "unauthorized",
    )
    assert "request_id" in result.json()
    (seen,) = server.api_requests
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert "authorization" not in headers
    assert headers["api-key"] == "not-a-key"
