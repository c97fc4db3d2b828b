"""Shippo: ``Authorization: ShippoToken <token>`` against the emulator's Shippo page (the
checks every static carrier passes are in static_carriers.py), test/live modes, its 401s."""

from __future__ import annotations

import pytest
from conftest import call
from emulated import EmulatedProvider
from static_carriers import *  # noqa: F403 - the shared checks run with this carrier
from static_carriers import Carrier

from delivery_auth import ShippoAuth
from delivery_auth.providers.spec import registry


@pytest.fixture
def carrier() -> Carrier:
    return Carrier("shippo", "Authorization", lambda token: f"ShippoToken {token}")


def test_registered_on_one_host_for_test_and_live() -> None:
    spec = registry()["shippo"]
    assert spec.auth_class is ShippoAuth
    assert "api.goshippo.com" in spec.default_hosts
    assert ShippoAuth("shippo_test_x").mode == "test"
    assert ShippoAuth("shippo_live_x").mode == "live"
    assert ShippoAuth("other").mode == "unknown"
    assert "shippo_live_x" not in repr(ShippoAuth("shippo_live_x"))


def test_the_prefix_is_refused_in_the_token() -> None:
    with pytest.raises(ValueError, match="without the 'ShippoToken' prefix"):
        ShippoAuth("ShippoToken shippo_test_x")


def test_401_bodies(server: EmulatedProvider, made: list[object]) -> None:
    auth = ShippoAuth("shippo_test_unknown", api_url=server.base)
    made.append(auth)
    assert call("requests", auth, "GET", server.url("/shipments")).json() == {
        "detail": "Token does not exist"
    }
    anonymous = call("requests", None, "GET", server.url("/shipments"))
    assert (anonymous.status, anonymous.json()) == (
        401,
        {"detail": "Authentication credentials were not provided."},
    )
