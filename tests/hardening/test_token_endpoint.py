"""Token-endpoint faults, every provider x requests / httpx / httpx async.

Each case says what the user gets (a token, or one specific error type with a clear
message) and how many token requests the server saw. Time is bounded by the error
type and attempt counts (three attempts with a millisecond back-off, ``Retry-After``
honoured only up to ``max_retry_after``) and by :func:`bounded`, never by a clock.
After every failure the next call recovers with exactly one more token request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from delivery_auth import (
    DeliveryAuthError,
    InvalidClientError,
    TokenEndpointUnavailableError,
    TokenRequestError,
    TokenRevokedError,
)
from delivery_auth.emulator import CREDENTIALS

from .conftest import MakeAuth, assert_no_secrets, exception_texts
from .harness import CLIENTS, HANG, TOKEN_ENDPOINTS, Canned, Rig, call_api

Answers = Callable[[Rig, str], list[Any]]


def token_payload(rig: Rig, provider: str, **fields: Any) -> Canned:
    """A 200 token response around a token the emulator's API accepts."""
    payload: dict[str, Any] = {
        "access_token": rig.valid_token(provider),
        "token_type": "bearer" if provider == "yandex" else "Bearer",
        "expires_in": 3600,
    }
    for name, value in fields.items():
        if value is _DROP:
            payload.pop(name, None)
        else:
            payload[name] = value
    return Canned(200, payload)


_DROP = object()


def same(*answers: Canned) -> Answers:
    return lambda rig, provider: list(answers)


def good(**fields: Any) -> Answers:
    """A usable token response with ``fields`` changed (``_DROP`` removes one)."""
    return lambda rig, provider: [lambda: token_payload(rig, provider, **fields)]


def blip_then_good(fault: Canned) -> Answers:
    return lambda rig, provider: [fault, lambda: token_payload(rig, provider)]


def html(status: int) -> Canned:
    page = "<!DOCTYPE html><html><body><h1>Bad Gateway</h1></body></html>"
    return Canned(status, page)


E500 = Canned(500, {"error": "server_error"})
E502 = Canned(502, {"error": "bad_gateway"})


@dataclass(frozen=True)
class Case:
    id: str
    answers: Answers
    error: type[BaseException] | None  # None: the call succeeds
    token_requests: int
    message: str = ""  # a fragment the error message must contain
    attrs: dict[str, Any] = field(default_factory=dict)
    timeout: float = 10.0
    bug: str | None = None
    refused: bool = False
    errors_by_provider: dict[str, type[BaseException]] = field(default_factory=dict)
    recovery: bool = True  # after a fault, the next call recovers (checked with the same auth)


CASES = [
    Case(
        "500",
        same(E500, E500, E500),
        TokenEndpointUnavailableError,
        3,
        "HTTP 500 3 times",
        {"status_code": 500},
    ),
    Case(
        "502",
        same(E502, E502, E502),
        TokenEndpointUnavailableError,
        3,
        "HTTP 502 3 times",
        {"status_code": 502},
    ),
    Case(
        "503-retry-after",
        same(*[Canned(503, {}, {"Retry-After": "0"})] * 3),
        TokenEndpointUnavailableError,
        3,
        "HTTP 503",
        {"status_code": 503, "retry_after": 0.0},
    ),
    Case(
        "503-retry-after-too-long",
        same(Canned(503, {}, {"Retry-After": "999"})),
        TokenEndpointUnavailableError,
        1,
        "longer than max_retry_after",
        {"retry_after": 999.0},
    ),
    Case(
        "429-retry-after",
        same(*[Canned(429, {"error": "slow_down"}, {"Retry-After": "0"})] * 3),
        TokenEndpointUnavailableError,
        3,
        "HTTP 429",
        {"status_code": 429},
    ),
    Case(
        "429-retry-after-too-long",
        same(Canned(429, {}, {"Retry-After": "3600"})),
        TokenEndpointUnavailableError,
        1,
        "longer than max_retry_after",
        {"retry_after": 3600.0},
    ),
    Case("500-once-recovers", blip_then_good(E500), None, 2),
    Case("429-once-recovers", blip_then_good(Canned(429, {}, {"Retry-After": "0"})), None, 2),
    Case(
        "connection-refused",
        same(),
        TokenEndpointUnavailableError,
        0,
        "Could not reach",
        {"status_code": None},
        refused=True,
    ),
    Case(
        "reset-mid-body",
        same(*[Canned(200, {"access_token": "x" * 64, "expires_in": 60}, reset_mid_body=True)] * 3),
        TokenEndpointUnavailableError,
        3,
        "Could not reach",
    ),
    Case(
        "reset-mid-body-once-recovers",
        blip_then_good(Canned(200, {"access_token": "y" * 64}, reset_mid_body=True)),
        None,
        2,
    ),
    Case(
        "slower-than-timeout",
        # The server answers long after the client gave up, however slow the machine.
        same(*[Canned(200, {"access_token": "z" * 16}, delay=HANG)] * 3),
        TokenEndpointUnavailableError,
        3,
        "Could not reach",
        timeout=0.08,
        # A normal token request may take longer than 0.08 s on a busy machine; the other
        # cases show the recovery after a fault.
        recovery=False,
    ),
    Case(
        "html-502",
        same(html(502), html(502), html(502)),
        TokenEndpointUnavailableError,
        3,
        "HTTP 502",
    ),
    Case("html-200", same(html(200)), TokenRequestError, 1, "not JSON"),
    Case("empty-body", same(Canned(200, b"")), TokenRequestError, 1, "not JSON"),
    Case(
        "truncated-json",
        same(Canned(200, b'{"access_token": "abc", "expires_in": 36')),
        TokenRequestError,
        1,
        "not JSON",
    ),
    Case(
        "deeply-nested-json",
        same(Canned(200, b"[" * 100_000)),
        TokenRequestError,
        1,
        "not JSON",
    ),
    Case(
        "json-array",
        same(Canned(200, [{"access_token": "abc"}])),
        TokenRequestError,
        1,
        "a JSON list",
    ),
    Case(
        "access-token-missing",
        good(access_token=_DROP),
        TokenRequestError,
        1,
        "access_token is missing",
    ),
    Case(
        "access-token-empty",
        good(access_token=""),
        TokenRequestError,
        1,
        "access_token is not a non-empty string",
    ),
    Case(
        "access-token-number",
        good(access_token=12345),
        TokenRequestError,
        1,
        "access_token is not a non-empty string",
    ),
    Case(
        "access-token-object",
        good(access_token={"value": "abc"}),
        TokenRequestError,
        1,
        "access_token is not a non-empty string",
    ),
    Case("expires-in-missing", good(expires_in=_DROP), None, 1),
    Case("expires-in-zero", good(expires_in=0), TokenRequestError, 1, "positive"),
    Case("expires-in-negative", good(expires_in=-30), TokenRequestError, 1, "positive"),
    Case("expires-in-numeric-string", good(expires_in="3600"), None, 1),
    Case("expires-in-string", good(expires_in="soon"), TokenRequestError, 1, "expires_in"),
    Case("expires-in-huge", good(expires_in=10**12), None, 1),
    # An integer beyond any float is "as good as forever": capped at a year, like 10**12.
    Case("expires-in-beyond-float", good(expires_in=10**400), None, 1),
    Case("token-type-lowercase-bearer", good(token_type="bearer"), None, 1),
    Case("token-type-dhl-bearertoken", good(token_type="BearerToken"), None, 1),
    Case(
        "token-type-mac",
        good(token_type="mac"),
        TokenRequestError,
        1,
        "issued a token of type 'mac'",
    ),
    Case(
        "jwt-exp-beyond-float",
        lambda rig, provider: [
            Canned(200, {"access_token": rig.accept(provider, _jwt_with_exp(10**400))})
        ],
        None,
        1,
    ),
    Case(
        "invalid-client-echoes-secret",
        lambda rig, provider: [
            Canned(
                401,
                {
                    "error": "invalid_client",
                    "error_description": f"secret {CREDENTIALS[provider].client_secret} is wrong",
                },
            )
        ],
        InvalidClientError,
        1,
        "rejected the client credentials",
        {"status_code": 401},
    ),
    Case(
        "error-member-a-list",
        same(Canned(400, {"error": ["invalid_client"]})),
        InvalidClientError,
        1,
        "rejected the client credentials",
    ),
    Case(
        "invalid-grant",
        same(Canned(400, {"error": "invalid_grant", "error_description": "revoked"})),
        TokenRequestError,
        1,
        errors_by_provider={"yandex": TokenRevokedError},
    ),
]


def _jwt_with_exp(exp: int) -> str:
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'exp': exp})}.sig"


def _params(cases: list[Case]) -> list[Any]:
    params = []
    for case in cases:
        marks = [pytest.mark.xfail(strict=True, reason=f"bug: {case.bug}")] if case.bug else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", TOKEN_ENDPOINTS)
@pytest.mark.parametrize("case", _params(CASES))
def test_token_endpoint_fault(
    rig: Rig, make_auth: MakeAuth, refused_url: str, case: Case, provider: str, client: str
) -> None:
    options: dict[str, Any] = {"timeout": case.timeout}
    if case.refused:
        options["token_url"] = refused_url
    auth = make_auth(provider, **options)
    if provider == "yandex":
        # Yandex tokens are not fetched but renewed after a 401: revoke the initial one.
        rig.emu.revoke(CREDENTIALS["yandex"].token or "")
    rig.script_token(provider, *case.answers(rig, provider))
    api_before = 1 if provider == "yandex" else 0  # Yandex's 401 that starts the renewal

    expected = case.errors_by_provider.get(provider, case.error)
    if expected is None:
        outcome = call_api(client, auth, rig, provider)
        assert outcome.ok, outcome
        assert outcome.history == ([401] if provider == "yandex" else [])
        assert rig.count(provider, "api") == api_before + 1
    else:
        with pytest.raises(expected) as info:
            call_api(client, auth, rig, provider)
        error = info.value
        assert isinstance(error, DeliveryAuthError)
        assert case.message in str(error)
        for name, value in case.attrs.items():
            assert getattr(error, name) == value, name
        assert rig.count(provider, "api") == api_before, "nothing is sent without a token"
        assert_no_secrets(rig, exception_texts(error))
    assert rig.count_at_least(provider, "token", case.token_requests) == case.token_requests
    assert_no_secrets(rig, [repr(auth), str(auth)])

    if expected is not None and not case.refused and case.recovery:
        # The fault is over: the next call recovers with exactly one more token request.
        before = rig.count(provider, "token")
        outcome = call_api(client, auth, rig, provider)
        assert outcome.ok, outcome
        assert rig.count(provider, "token") == before + 1


@pytest.mark.parametrize("client", CLIENTS)
def test_bringg_created_at_beyond_float(rig: Rig, make_auth: MakeAuth, client: str) -> None:
    rig.script_token("bringg", lambda: token_payload(rig, "bringg", created_at=10**400))
    auth = make_auth("bringg")
    assert call_api(client, auth, rig, "bringg").ok
    assert rig.count("bringg", "token") == 1
