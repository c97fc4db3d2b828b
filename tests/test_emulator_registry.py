"""The emulator and the demo read the registry: a throwaway provider ("Acme": client
credentials, a rejected token is HTTP 403 ``{"code": "TOKEN_EXPIRED"}``, defined with its
emulator page in tests/acme_provider.py) is served, built, and judged by the demo without
any change to delivery_auth."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import requests
from acme_provider import KNOWN, SPEC

from delivery_auth.demo import run_demo
from delivery_auth.emulator import Emulator, endpoints_at, environment
from delivery_auth.providers.spec import register, unregister


@pytest.fixture
def acme() -> Iterator[None]:
    register(SPEC)
    try:
        yield
    finally:
        unregister("acme")


def test_a_registered_page_is_served_and_built(acme: None) -> None:
    with Emulator() as emu:
        assert endpoints_at(emu.base_url, "acme") == {
            "token_url": f"{emu.base_url}/acme/oauth/token",
            "resource_url": f"{emu.base_url}/acme/v1/things",
        }
        assert (
            environment("acme")
            == emu.env("acme")
            == {
                "ACME_CLIENT_ID": KNOWN.client_id,
                "ACME_CLIENT_SECRET": KNOWN.client_secret,
            }
        )
        with emu.auth("acme") as auth:
            assert requests.get(emu.resource_url("acme"), auth=auth, timeout=10).json() == {
                "ok": True
            }
            emu.revoke_all("acme")
            response = requests.get(emu.resource_url("acme"), auth=auth, timeout=10)
            assert (response.status_code, [r.status_code for r in response.history]) == (
                200,
                [403],
            )
            assert auth.token_requests == 2
        assert emu.stats.auth_failures["acme"] == 1
        assert "/acme/" in requests.get(emu.base_url, timeout=10).text


def test_the_demo_judges_its_403(acme: None) -> None:
    out = io.StringIO()
    assert run_demo(out, providers=["acme"], clients=["requests", "httpx async"])
    table = out.getvalue()
    assert "Acme" in table
    assert table.count("revoked: 403 TOKEN_EXPIRED -> 1 refresh, 1 resend") == 2
    assert "All 10 checks held" in table


def test_unregistered_it_is_gone() -> None:
    with Emulator() as emu, pytest.raises(ValueError, match="unknown provider 'acme'"):
        emu.url("acme")
