"""EasyPost: HTTP Basic with the key as the username and an empty password, against the
emulator's EasyPost page (the checks every static carrier passes are in
static_carriers.py), and its inactive-key 401."""

from __future__ import annotations

import base64

import pytest
from conftest import call
from emulated import EmulatedProvider
from static_carriers import *  # noqa: F403 - the shared checks run with this carrier
from static_carriers import Carrier

from delivery_auth import EasyPostAuth
from delivery_auth.providers.spec import registry


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@pytest.fixture
def carrier() -> Carrier:
    return Carrier("easypost", "Authorization", _basic)


def test_registered_with_its_host() -> None:
    spec = registry()["easypost"]
    assert spec.auth_class is EasyPostAuth
    assert "api.easypost.com" in spec.default_hosts


def test_the_key_is_the_username_with_an_empty_password() -> None:
    auth = EasyPostAuth(" EZTKabc \n")
    assert base64.b64decode(auth.get_token().access_token) == b"EZTKabc:"
    with pytest.raises(ValueError, match="api_key must be a non-empty string"):
        EasyPostAuth("")


def test_an_inactive_key_says_so(server: EmulatedProvider, made: list[object]) -> None:
    key = server.emu.issue_token("easypost")
    auth = EasyPostAuth(key, api_url=server.url("/v2"))
    made.append(auth)
    server.emu.revoke(key)
    result = call("requests", auth, "GET", server.url("/v2/shipments"))
    assert result.status == 401
    error = result.json()["error"]
    assert error["code"] == "APIKEY.INACTIVE"
    assert "no longer active" in error["message"]
