"""The checks every static-credential carrier passes (ShipEngine, Shippo, EasyPost, MyDHL,
Sendcloud's Basic mode), against its emulator page, through every client.

A carrier's test module defines the ``carrier`` fixture (a :class:`Carrier`) and imports
these tests (``from static_carriers import *``); pytest runs them there, with that fixture.
What differs between carriers (the header, the credential option, the variables) comes
from :class:`Carrier`, the spec and the page.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import CLIENTS, call
from emulated import EmulatedProvider

from delivery_auth import ConfigurationError, CredentialsRejectedError, DisallowedHostError
from delivery_auth.providers.spec import ProviderSpec, get

__all__ = [
    "Carrier",
    "made",
    "server",
    "test_a_bad_credential_is_a_clear_warning_and_a_clear_check_error",
    "test_allowed_hosts_default_to_the_carriers_and_can_be_replaced",
    "test_check_accepts_the_emulators_credentials",
    "test_concurrent_callers_share_the_credential_and_request_no_token",
    "test_first_call_and_reuse_send_the_credential_and_fetch_nothing",
    "test_from_env_reads_the_documented_variables_and_names_the_missing_ones",
    "test_repr_shows_no_secret",
    "test_revoked_credential_is_returned_with_one_warning_never_resent",
]


@dataclass(frozen=True)
class Carrier:
    """What a static carrier's tests need to know beyond its spec and page.

    ``header``: where the credential goes; ``value(auth_credentials)``: the header value
    expected for the credential option ``option`` set to a given value.
    """

    name: str
    header: str
    value: Callable[[str], str]

    @property
    def spec(self) -> ProviderSpec:
        return get(self.name)

    @property
    def option(self) -> str:
        option = self.spec.page().PAGE.demo.token_option
        assert isinstance(option, str)
        return option


@pytest.fixture
def server(carrier: Carrier) -> Iterator[EmulatedProvider]:
    with EmulatedProvider(carrier.name) as srv:
        yield srv


@pytest.fixture
def made() -> Iterator[list[Any]]:
    objects: list[Any] = []
    yield objects
    for auth in objects:
        auth.close()


def _auth(server: EmulatedProvider, made: list[Any], carrier: Carrier, **options: Any) -> Any:
    auth = server.emu.auth(carrier.name, **options)
    made.append(auth)
    return auth


def _resource(client: str, auth: Any, server: EmulatedProvider) -> Any:
    return call(client, auth, "GET", server.resource_url)


def _sent(server: EmulatedProvider, carrier: Carrier) -> list[str | None]:
    name = carrier.header.lower()  # the server spells names its own way (Api-Key)
    return [
        {k.lower(): v for k, v in seen.headers.items()}.get(name) for seen in server.api_requests
    ]


@pytest.mark.parametrize("client", CLIENTS)
def test_first_call_and_reuse_send_the_credential_and_fetch_nothing(
    client: str, carrier: Carrier, server: EmulatedProvider, made: list[Any]
) -> None:
    auth = _auth(server, made, carrier)
    for _ in range(2):
        result = _resource(client, auth, server)
        assert result.status == 200
        assert server.emu.state.pages[carrier.name].served(result.json())
    expected = carrier.value(server.credentials.token or "")
    assert _sent(server, carrier) == [expected, expected]
    assert server.token_requests == []
    assert auth.token_requests == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_revoked_credential_is_returned_with_one_warning_never_resent(
    client: str,
    carrier: Carrier,
    server: EmulatedProvider,
    made: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="delivery_auth")
    issued = server.emu.issue_token(carrier.name)  # a key (or password) like the user's
    auth = _auth(server, made, carrier, **{carrier.option: issued})
    assert _resource(client, auth, server).status == 200
    server.emu.revoke(issued)
    result = _resource(client, auth, server)
    page = server.emu.state.pages[carrier.name]
    assert page.rejection.matches(result.status, result.json()), result
    assert result.history == []
    assert _sent(server, carrier) == [carrier.value(issued)] * 2, "sent once per call"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"HTTP {page.rejection.status}" in warnings[0].getMessage()
    assert warnings[0].credentials_rejected is True  # type: ignore[attr-defined]
    assert all(issued not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_bad_credential_is_a_clear_warning_and_a_clear_check_error(
    client: str,
    carrier: Carrier,
    server: EmulatedProvider,
    made: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="delivery_auth")
    wrong = "wrong-credential-0000-never-shown"
    auth = _auth(server, made, carrier, **{carrier.option: wrong})
    result = _resource(client, auth, server)
    assert (result.status, result.history) == (401, [])
    (warning,) = caplog.records
    assert type(auth).__name__ in warning.getMessage() or carrier.spec.title in (
        warning.getMessage()
    )
    with pytest.raises(CredentialsRejectedError, match="rejected the credentials") as caught:
        carrier.spec.verify(auth, None)
    message = str(caught.value)
    assert carrier.spec.env[0].name in message or "Check" in message
    assert wrong not in message
    assert all(wrong not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("client", CLIENTS)
def test_concurrent_callers_share_the_credential_and_request_no_token(
    client: str, carrier: Carrier, server: EmulatedProvider, made: list[Any]
) -> None:
    auth = _auth(server, made, carrier)
    callers = 16
    if client == "httpx-async":

        async def many() -> list[int]:
            async with httpx.AsyncClient(auth=auth, timeout=10) as c:
                answers = await asyncio.gather(
                    *(c.get(server.resource_url) for _ in range(callers))
                )
            return [r.status_code for r in answers]

        statuses = asyncio.run(many())
    else:
        barrier = threading.Barrier(callers)
        statuses = []
        lock = threading.Lock()

        def one() -> None:
            barrier.wait(10)
            status = _resource(client, auth, server).status
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=one) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert statuses == [200] * callers
    assert server.token_requests == []
    assert auth.token_requests == 0
    assert len(set(_sent(server, carrier))) == 1


def test_from_env_reads_the_documented_variables_and_names_the_missing_ones(
    carrier: Carrier, server: EmulatedProvider, made: list[Any]
) -> None:
    spec = carrier.spec
    env = server.emu.env(carrier.name)
    required = [var.name for var in spec.env if var.required]
    assert set(required) <= set(env)
    page = spec.page().PAGE
    endpoints = {
        option: server.emu.url(carrier.name, page.endpoint_path(option))
        for option in spec.endpoints
    }
    auth = spec.from_env(env, **endpoints)
    made.append(auth)
    assert auth == _auth(server, made, carrier)
    assert _resource("requests", auth, server).status == 200
    with pytest.raises(ConfigurationError) as caught:
        spec.from_env({})
    assert list(caught.value.missing) == required
    for name in required:
        assert name in str(caught.value)
    with pytest.raises(TypeError, match="unexpected option 'alowed_hosts'"):
        spec.from_env(env, alowed_hosts=["x"])


def test_repr_shows_no_secret(carrier: Carrier, server: EmulatedProvider, made: list[Any]) -> None:
    auth = _auth(server, made, carrier)
    text = repr(auth) + str(auth) + repr(auth.get_token())
    secrets = {server.credentials.token, server.credentials.client_secret}
    secrets.add(auth.get_token().access_token)
    assert not [s for s in secrets if s and s in text]
    assert type(auth).__name__ in repr(auth)


def test_allowed_hosts_default_to_the_carriers_and_can_be_replaced(
    carrier: Carrier, server: EmulatedProvider, made: list[Any]
) -> None:
    auth = _auth(server, made, carrier)
    assert auth.allowed_hosts is not None
    assert set(auth.allowed_hosts) <= set(carrier.spec.default_hosts)
    for host in auth.allowed_hosts:
        if "." in host and "/" not in host and host != "localhost":
            assert auth._hosts.admits(host), host
            with pytest.raises(DisallowedHostError, match="allowed_hosts"):
                call("requests", auth, "GET", f"https://{host}.evil.example/x")
    elsewhere = _auth(server, made, carrier, allowed_hosts=["api.example.com"])
    with pytest.raises(DisallowedHostError):
        _resource("requests", elsewhere, server)
    assert server.api_requests == []


def test_check_accepts_the_emulators_credentials(
    carrier: Carrier, server: EmulatedProvider, made: list[Any]
) -> None:
    auth = _auth(server, made, carrier)
    said = carrier.spec.verify(auth, None)
    assert said.startswith("accepted the credentials (GET ")
    assert "HTTP 200" in said
