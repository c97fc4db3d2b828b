"""DoorDash Drive: a self-signed HS256 JWT, decoded here independently (standard library
base64 + hmac) from what the emulator's page received, through every client; re-mint
and one resend on a 401; the signing secret's base64url rules; lifetime limits."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from conftest import CLIENTS, call, closing
from emulated import EmulatedProvider

from delivery_auth import (
    ConfigurationError,
    CredentialsRejectedError,
    DisallowedHostError,
    DoorDashDriveAuth,
)
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.emulator.doordash import sign
from delivery_auth.providers.doordash import SPEC, verify

KNOWN = CREDENTIALS["doordash"]
DEVELOPER_ID, SECRET = KNOWN.client_id, KNOWN.client_secret
KEY_ID = KNOWN.extra["key_id"]
MakeAuth = Callable[..., DoorDashDriveAuth]


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def received_jwt(seen: Any) -> str:
    scheme, _, value = seen.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return value


def check_independently(jwt: str) -> dict[str, Any]:
    """DoorDash's rules, with nothing but the standard library; returns the claims."""
    header_part, claims_part, signature_part = jwt.split(".")
    key = base64.urlsafe_b64decode(SECRET + "=" * (-len(SECRET) % 4))
    expected = hmac.new(key, f"{header_part}.{claims_part}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(b64url(signature_part), expected)
    assert json.loads(b64url(header_part)) == {"alg": "HS256", "typ": "JWT", "dd-ver": "DD-JWT-V1"}
    claims: dict[str, Any] = json.loads(b64url(claims_part))
    assert {k: claims[k] for k in ("aud", "iss", "kid")} == {
        "aud": "doordash",
        "iss": DEVELOPER_ID,
        "kid": KEY_ID,
    }
    assert isinstance(claims["iat"], int)
    assert isinstance(claims["exp"], int)
    assert claims["iat"] < claims["exp"] <= claims["iat"] + 1800
    return claims


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("doordash") as srv:
        yield srv


@pytest.fixture
def make_auth() -> Iterator[MakeAuth]:
    def build(signing_secret: str = SECRET, **options: Any) -> DoorDashDriveAuth:
        return DoorDashDriveAuth(DEVELOPER_ID, KEY_ID, signing_secret, **options)

    yield from closing(build)


def delivery(client: str, auth: DoorDashDriveAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "GET", server.url("/drive/v2/deliveries/D-1001"))


@pytest.mark.parametrize("client", CLIENTS)
def test_first_call_reuse_and_the_jwt_the_server_received(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth(lifetime=600)
    assert delivery(client, auth, server).status == 200
    assert delivery(client, auth, server).status == 200
    first, second = (received_jwt(seen) for seen in server.api_requests)
    assert first == second
    claims = check_independently(first)
    assert claims["exp"] - claims["iat"] == 600
    assert auth.token_requests == 1
    assert server.token_requests == []  # nothing asked for a token: it was minted


@pytest.mark.parametrize("client", CLIENTS)
def test_rejected_jwt_is_reminted_once_and_resent_once(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    assert delivery(client, auth, server).status == 200
    server.revoke_all()  # the page remembered the JWT it accepted
    result = delivery(client, auth, server)
    assert result.status == 200
    assert result.history == [401]
    sent = [received_jwt(seen) for seen in server.api_requests]
    assert sent[0] == sent[1] != sent[2]
    check_independently(sent[2])
    assert auth.token_requests == 2


@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_secret_gets_the_401_back_after_one_remint(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    wrong = base64.urlsafe_b64encode(b"another key entirely").decode().rstrip("=")
    auth = make_auth(signing_secret=wrong)
    result = delivery(client, auth, server)
    assert (result.status, result.history) == (401, [401])
    assert result.json() == {
        "code": "authentication_error",
        "message": "The JWT signature is invalid.",
    }
    assert len(server.api_requests) == 2
    with pytest.raises(CredentialsRejectedError, match="DOORDASH_SIGNING_SECRET") as caught:
        verify(auth, server.base)
    assert wrong not in str(caught.value)


def test_only_the_base64url_decoded_secret_signs(server: EmulatedProvider) -> None:
    padded = SECRET + "=" * (-len(SECRET) % 4)
    for validate in (True, False):  # the test secret holds '-' and '_'
        with pytest.raises(binascii.Error):
            base64.b64decode(padded, validate=validate)
    with DoorDashDriveAuth(DEVELOPER_ID, KEY_ID, SECRET) as good:
        body = good.get_token().access_token.rsplit(".", 1)[0]
    # Signed with the secret's text instead of its decoded bytes:
    signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
    forged = body + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")
    answer = requests.get(server.resource_url, headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401
    assert answer.json()["message"] == "The JWT signature is invalid."


@pytest.mark.parametrize(
    ("claims", "header", "reason"),
    [
        ({"exp": 1900}, None, "more than 30 minutes"),
        ({"iat": 600, "exp": 900}, None, "in the future"),
        ({"iat": -200, "exp": -100}, None, "expired"),
        ({"aud": "uber"}, None, "aud"),
        ({"kid": "another-key"}, None, "key id"),
        ({}, {"alg": "HS256", "typ": "JWT"}, "dd-ver"),
    ],
)
def test_the_page_checks_what_doordash_checks(
    server: EmulatedProvider, claims: dict[str, Any], header: dict[str, Any] | None, reason: str
) -> None:
    now = int(server.emu.state.server_time())
    base = {"aud": "doordash", "iss": DEVELOPER_ID, "kid": KEY_ID, "iat": 0, "exp": 300}
    merged = {**base, **claims}
    merged["iat"] += now
    merged["exp"] += now
    answer = requests.get(
        server.resource_url, headers={"Authorization": f"Bearer {sign(merged, header)}"}
    )
    assert answer.status_code == 401
    assert reason in answer.json()["message"]


def test_a_server_clock_behind_ours_refuses_the_jwt_and_the_401_comes_back(
    server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    server.emu.clock_offset = -600  # our iat is 10 minutes in the server's future
    auth = make_auth()
    result = delivery("httpx", auth, server)
    assert (result.status, result.history) == (401, [401])
    assert "in the future" in result.json()["message"]
    assert auth.token_requests == 2


@pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async"])
def test_concurrent_cold_callers_share_one_mint(
    client: str, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth()
    url = server.resource_url
    if client == "httpx-async":

        async def many() -> list[int]:
            async with httpx.AsyncClient(auth=auth) as session:
                answers = await asyncio.gather(*(session.get(url) for _ in range(32)))
            return [answer.status_code for answer in answers]

        statuses = asyncio.run(many())
    else:
        barrier = threading.Barrier(32)
        statuses = []
        with httpx.Client(auth=auth) as session:

            def one() -> None:
                barrier.wait()
                get = session.get if client == "httpx" else lambda u: requests.get(u, auth=auth)
                statuses.append(get(url).status_code)

            threads = [threading.Thread(target=one) for _ in range(32)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    assert statuses == [200] * 32
    assert auth.token_requests == 1
    assert len({received_jwt(seen) for seen in server.api_requests}) == 1


@pytest.mark.parametrize(
    "secret",
    ["ZW11+LWRvb3Jk", "ZW11/LWRvb3Jk", "not base64!", "abcde", "   "],
    ids=["plus", "slash", "punctuation", "bad-length", "blank"],
)
def test_a_secret_that_is_not_base64url_is_a_clear_error(secret: str) -> None:
    with pytest.raises(ValueError, match="DOORDASH_SIGNING_SECRET") as caught:
        DoorDashDriveAuth(DEVELOPER_ID, KEY_ID, secret)
    if secret.strip():
        assert secret not in str(caught.value)


def test_padding_is_optional() -> None:
    padded = SECRET + "=" * (-len(SECRET) % 4)
    with (
        DoorDashDriveAuth(DEVELOPER_ID, KEY_ID, SECRET) as bare,
        DoorDashDriveAuth(DEVELOPER_ID, KEY_ID, padded) as full,
    ):
        assert bare == full


@pytest.mark.parametrize("lifetime", [0, -5, 1800.5, 3600, float("nan"), "300"])
def test_lifetime_must_be_positive_and_at_most_1800(lifetime: Any) -> None:
    with pytest.raises(
        ValueError, match="lifetime must be a positive number of seconds of at most 1800"
    ):
        DoorDashDriveAuth(DEVELOPER_ID, KEY_ID, SECRET, lifetime=lifetime)


@pytest.mark.parametrize("lifetime", [0.25, 1, 299.9, 1800])
def test_any_lifetime_up_to_1800_is_accepted_by_the_page(
    lifetime: float, server: EmulatedProvider, make_auth: MakeAuth
) -> None:
    auth = make_auth(lifetime=lifetime)
    assert delivery("requests", auth, server).status == 200


def test_hosts_repr_and_from_env(
    server: EmulatedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = SPEC.environment_for(KNOWN)
    assert env == {
        "DOORDASH_DEVELOPER_ID": DEVELOPER_ID,
        "DOORDASH_KEY_ID": KEY_ID,
        "DOORDASH_SIGNING_SECRET": SECRET,
    }
    with DoorDashDriveAuth.from_env(env, lifetime=60) as auth:
        assert auth.allowed_hosts == ("openapi.doordash.com", "localhost", "127.0.0.0/8", "::1")
        assert auth.lifetime == 60.0
        with pytest.raises(DisallowedHostError, match="allowed_hosts"):
            call("httpx", auth, "GET", "https://openapi.doordash.com.evil.example/drive/v2/x")
        assert delivery("httpx-async", auth, server).status == 200
        assert verify(auth, server.base).startswith("accepted a minted JWT")
        shown = repr(auth) + caplog.text + repr(auth.get_token())
    assert repr(auth) == (
        f"DoorDashDriveAuth(developer_id={DEVELOPER_ID!r}, key_id={KEY_ID!r}, lifetime=60.0)"
    )
    assert SECRET not in shown
    assert received_jwt(server.api_requests[0]) not in shown
    with pytest.raises(ConfigurationError) as missing:
        DoorDashDriveAuth.from_env({"DOORDASH_DEVELOPER_ID": DEVELOPER_ID})
    assert missing.value.missing == ("DOORDASH_KEY_ID", "DOORDASH_SIGNING_SECRET")
