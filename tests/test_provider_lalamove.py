"""Lalamove: every request HMAC-signed, checked here with the standard library's ``hmac``
against what the emulator's Lalamove page received (the page verifies them too); a
rejection is signed anew and resent once; environments, from_env, repr, verify()."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from conftest import CLIENTS, call, closing
from emulated import EmulatedProvider
from loopback import Seen

from delivery_auth import (
    ConfigurationError,
    CredentialsRejectedError,
    DisallowedHostError,
    LalamoveAuth,
)
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers.spec import registry

KNOWN = CREDENTIALS["lalamove"]
API_KEY, API_SECRET = KNOWN.client_id, KNOWN.client_secret
HEADER = re.compile(r"hmac (?P<key>[^:]+):(?P<ts>\d{13}):(?P<sig>[0-9a-f]{64})")
QUOTE = {"data": {"serviceType": "MOTORCYCLE", "language": "en_HK", "stops": []}}
MakeAuth = Callable[..., LalamoveAuth]


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("lalamove") as srv:
        yield srv


@pytest.fixture
def make_auth() -> Iterator[MakeAuth]:
    def build(api_secret: str = API_SECRET, **options: Any) -> LalamoveAuth:
        options.setdefault("market", "HK")
        return LalamoveAuth(API_KEY, api_secret, **options)

    yield from closing(build)


def header(seen: Seen, name: str) -> str | None:
    """A received header, whatever case the server wrote its name in."""
    return next((v for k, v in seen.headers.items() if k.lower() == name.lower()), None)


def check_signature(seen: Seen, provider_prefix: str = "/lalamove") -> int:
    """Recompute Lalamove's signature of a received request with ``hmac``; its timestamp."""
    found = HEADER.fullmatch(seen.headers["Authorization"])
    assert found is not None, seen.headers["Authorization"]
    assert found["key"] == API_KEY
    # The page sees the path below its prefix; the client signed the whole target.
    target = provider_prefix + seen.path
    message = f"{found['ts']}\r\n{seen.method}\r\n{target}\r\n\r\n".encode() + seen.body
    expected = hmac.new(API_SECRET.encode(), message, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(found["sig"], expected), "the signature does not match"
    assert seen.headers["Market"] == "HK"
    uuid.UUID(str(header(seen, "Request-ID")))
    return int(found["ts"])


def test_registered() -> None:
    spec = registry()["lalamove"]
    assert spec.auth_class is LalamoveAuth
    assert spec.page().PAGE.token_path is None


@pytest.mark.parametrize("client", CLIENTS)
def test_get_and_json_post_are_signed_as_sent(
    client: str, make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth()
    before = time.time() * 1000
    got = call(client, auth, "GET", server.url("/v3/cities"))
    posted = call(client, auth, "POST", server.url("/v3/quotations"), json=QUOTE)
    assert got.status == posted.status == 200
    assert posted.json()["data"]["market"] == "HK"
    cities, quotation = server.api_requests
    assert cities.body == b""
    assert json.loads(quotation.body) == QUOTE
    for seen in (cities, quotation):
        assert before - 1000 <= check_signature(seen) <= time.time() * 1000 + 1000
    assert header(cities, "Request-ID") != header(quotation, "Request-ID")
    assert auth.token_requests == 1  # one signing lease, and no network request for it


@pytest.mark.parametrize("client", CLIENTS)
def test_a_rejected_signature_is_signed_anew_and_resent_once(
    client: str, make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth()
    server.emu.inject_fault("lalamove", "auth_failure", endpoint="resource")
    result = call(client, auth, "POST", server.url("/v3/quotations"), json=QUOTE)
    assert (result.status, result.history) == (200, [401])
    first, resent = server.api_requests
    assert resent.body == first.body  # the same bytes
    assert check_signature(resent) > check_signature(first)  # new timestamp, new signature
    assert resent.headers["Authorization"] != first.headers["Authorization"]
    assert auth.token_requests == 2


@pytest.mark.parametrize("client", CLIENTS)
def test_a_wrong_secret_gets_the_second_401_back(
    client: str, make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth("sk_test_wrong")
    result = call(client, auth, "GET", server.url("/v3/cities"))
    assert (result.status, result.history) == (401, [401])
    assert result.json()["errors"][0]["id"] == "ERR_UNAUTHORIZED"
    assert len(server.api_requests) == 2


@pytest.mark.parametrize("client", ["requests", "httpx-async"])
def test_stale_timestamps_are_rejected_per_the_tolerance(
    client: str, make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth()
    server.emu.clock_offset = 600.0  # the server's clock is 10 minutes ahead
    assert call(client, auth, "GET", server.url("/v3/cities")).status == 401
    server.emu.lalamove_clock_tolerance = 900.0
    assert call(client, auth, "GET", server.url("/v3/cities")).status == 200


def test_verify(make_auth: MakeAuth, server: EmulatedProvider) -> None:
    auth = make_auth(api_url=server.base)
    assert "accepted the signature" in auth.verify()
    with pytest.raises(CredentialsRejectedError, match="separate key pairs") as caught:
        make_auth("sk_test_wrong", api_url=server.base).verify()
    assert API_SECRET not in str(caught.value)


def test_concurrent_callers_share_one_signing_lease(
    make_auth: MakeAuth, server: EmulatedProvider
) -> None:
    auth = make_auth()
    barrier = threading.Barrier(16)
    statuses: list[int] = []

    def one() -> None:
        barrier.wait()
        statuses.append(requests.get(server.url("/v3/cities"), auth=auth, timeout=10).status_code)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 16
    assert auth.token_requests == 1


@pytest.mark.parametrize(
    ("environment", "host"),
    [("production", "rest.lalamove.com"), ("Sandbox", "rest.sandbox.lalamove.com")],
)
def test_environments_and_hosts(make_auth: MakeAuth, environment: str, host: str) -> None:
    auth = make_auth(environment=environment)
    assert auth.api_url == f"https://{host}"
    assert host in (auth.allowed_hosts or ())
    with pytest.raises(DisallowedHostError):
        requests.get("https://rest.lalamove.example/v3/cities", auth=auth, timeout=10)
    with pytest.raises(ValueError, match="sandbox"):
        make_auth(environment="staging")


def test_request_id_can_be_left_out(make_auth: MakeAuth, server: EmulatedProvider) -> None:
    auth = make_auth(request_id=False)
    assert call("requests", auth, "GET", server.url("/v3/cities")).status == 200
    assert header(server.api_requests[0], "Request-ID") is None


def test_from_env_and_repr() -> None:
    environ = {"LALAMOVE_API_KEY": API_KEY, "LALAMOVE_API_SECRET": API_SECRET}
    with pytest.raises(ConfigurationError, match="LALAMOVE_MARKET") as caught:
        LalamoveAuth.from_env(environ)
    assert caught.value.missing == ("LALAMOVE_MARKET",)
    auth = LalamoveAuth.from_env(
        {**environ, "LALAMOVE_MARKET": "sg", "LALAMOVE_ENVIRONMENT": "sandbox"}
    )
    assert (auth.market, auth.environment) == ("SG", "sandbox")
    assert LalamoveAuth.from_env(environ, market="TH").market == "TH"
    with pytest.raises(ConfigurationError, match="LALAMOVE_API_SECRET"):
        LalamoveAuth.from_env({"LALAMOVE_MARKET": "HK", "LALAMOVE_API_KEY": API_KEY})
    assert API_SECRET not in repr(auth)
    assert repr(auth) == (f"LalamoveAuth(api_key={API_KEY!r}, market='SG', environment='sandbox')")
    with pytest.raises(ValueError, match="market"):
        LalamoveAuth(API_KEY, API_SECRET, market="H K")


def test_command_line(
    server: EmulatedProvider, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from delivery_auth.cli import main

    for name, value in server.emu.env("lalamove").items():
        monkeypatch.setenv(name, value)
    assert main(["check", "lalamove", "--emulator", server.emu.base_url]) == 0
    assert capsys.readouterr().out.startswith("OK: Lalamove accepted the signature")
    assert main(["token", "lalamove", "--emulator", server.emu.base_url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Lalamove has no token" in captured.err
    monkeypatch.setenv("LALAMOVE_API_SECRET", "sk_wrong")
    assert main(["check", "lalamove", "--emulator", server.emu.base_url]) == 1
    assert "rejected the signature" in capsys.readouterr().err
