"""USPS's payment authorization token (a dependent second token) against the emulator's
USPS page: obtained with the bearer token, sent only to label endpoints, shared through
the cache, and re-minted together with the bearer token when a label request is rejected."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from emulated import EmulatedProvider
from loopback import Seen

from delivery_auth import FileTokenCache, TokenRequestError, USPSAuth
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.emulator.usps import PAYMENT_ROLES

KNOWN = CREDENTIALS["usps"]
LABEL = "/labels/v3/label"
PAYMENT = "/payments/v3/payment-authorization"
ROLES = list(PAYMENT_ROLES)
MakeAuth = Callable[..., USPSAuth]


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("usps") as srv:
        yield srv


@pytest.fixture
def make_auth(server: EmulatedProvider) -> Iterator[MakeAuth]:
    def build(**options: Any) -> USPSAuth:
        options.setdefault("token_url", server.token_url)
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("payment_roles", ROLES)
        return USPSAuth(KNOWN.client_id, KNOWN.client_secret, **options)

    yield from closing(build)


def header(seen: Seen, name: str) -> str | None:
    return next((v for k, v in seen.headers.items() if k.lower() == name.lower()), None)


def paths(server: EmulatedProvider) -> list[str]:
    return [seen.path for seen in server.api_requests]


def label(client: str, auth: USPSAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "POST", server.url(LABEL), json={"imageInfo": {"imageType": "PDF"}})


@pytest.mark.parametrize("client", CLIENTS)
def test_label_requests_carry_the_payment_token_others_do_not(
    client: str, make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth()
    assert call(client, auth, "GET", server.resource_url).status == 200
    assert label(client, auth, server).status == 200
    assert label(client, auth, server).status == 200  # reused: no second payment request
    assert paths(server) == ["/addresses/v3/address", PAYMENT, LABEL, LABEL]
    address, payment, first, second = server.api_requests
    assert header(address, "X-Payment-Authorization-Token") is None
    bearer = address.headers["Authorization"]
    assert payment.headers["Authorization"] == bearer  # obtained with the bearer token
    assert json.loads(payment.body) == {"roles": ROLES}
    pay = header(first, "X-Payment-Authorization-Token")
    assert pay is not None
    assert pay == header(second, "X-Payment-Authorization-Token")
    assert first.headers["Authorization"] == bearer
    assert auth.token_requests == 1


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("revoked", ["payment token", "bearer token"])
def test_a_rejected_label_request_gets_both_tokens_anew_and_one_resend(
    client: str, revoked: str, make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth()
    assert label(client, auth, server).status == 200
    used = server.api_requests[-1]
    value = (
        header(used, "X-Payment-Authorization-Token")
        if revoked == "payment token"
        else used.headers["Authorization"].split(" ", 1)[1]
    )
    server.emu.revoke(str(value))
    result = label(client, auth, server)
    assert (result.status, result.history) == (200, [401])
    assert paths(server) == [PAYMENT, LABEL, LABEL, PAYMENT, LABEL]
    _, _, rejected, payment, resent = server.api_requests
    for name in ("Authorization", "X-Payment-Authorization-Token"):
        assert header(resent, name) != header(rejected, name)
    assert payment.headers["Authorization"] == resent.headers["Authorization"]
    assert resent.body == rejected.body
    assert auth.token_requests == 2


@pytest.mark.parametrize("client", ["requests", "httpx-async"])
def test_a_refused_payment_authorization_is_a_clear_error(
    client: str, make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth(payment_roles=[{"roleName": "SHIPPER"}])
    with pytest.raises(TokenRequestError, match="USPS payment authorization .* HTTP 400"):
        label(client, auth, server)
    assert paths(server) == [PAYMENT]  # the label was not sent
    assert KNOWN.client_secret not in repr(auth)


def test_without_payment_roles_nothing_changes(
    make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth(payment_roles=None)
    assert auth._decorator is None  # the plain fast paths
    assert label("requests", auth, server).status == 400  # USPS wants the payment token
    assert paths(server) == [LABEL]


def test_concurrent_label_calls_share_one_token_and_one_payment_token(
    make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth()
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        response = requests.post(server.url(LABEL), json={}, auth=auth, timeout=10)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    assert auth.token_requests == 1
    assert paths(server).count(PAYMENT) == 1


def test_the_fleet_shares_the_payment_token_through_the_cache(
    make_auth: MakeAuth, server: EmulatedProvider, tmp_path: Path
) -> None:
    cache = FileTokenCache(tmp_path / "usps.json")
    assert label("requests", make_auth(cache=cache), server).status == 200
    assert label("httpx", make_auth(cache=cache), server).status == 200  # another "process"
    assert paths(server).count(PAYMENT) == 1
    assert len(server.token_requests) == 1


def test_options(make_auth: MakeAuth, server: EmulatedProvider) -> None:
    auth = make_auth()
    assert auth.payment_url == server.url(PAYMENT)  # beside the token endpoint
    assert USPSAuth("id", "secret", payment_roles=ROLES).payment_url == (
        "https://apis.usps.com/payments/v3/payment-authorization"
    )
    assert USPSAuth("id", "secret", payment_roles=ROLES, environment="test").payment_url == (
        "https://apis-tem.usps.com/payments/v3/payment-authorization"
    )
    with pytest.raises(ValueError, match="payment_token_lifetime"):
        make_auth(payment_token_lifetime=0)
    with pytest.raises(ValueError, match="plain http"):
        make_auth(payment_url="http://payments.example.com/p")
