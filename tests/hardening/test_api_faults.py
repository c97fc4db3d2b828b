"""API faults and credential routing, every provider x requests / httpx / httpx async.

The failure signal of each provider (401; Delivery Tracker's GraphQL UNAUTHENTICATED)
twice in a row, after redirects, on bodies that cannot be replayed and on huge bodies:
at most one refresh and one resend, never a loop. And the token never travels where
it must not: outside ``allowed_hosts``, over plain http, across origins.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from loopback import LoopbackServer

from delivery_auth import DisallowedHostError, InsecureTransportError
from delivery_auth.providers.spec import registry

from .conftest import MakeAuth
from .harness import (
    CLIENTS,
    JSON,
    PAGES,
    PROVIDERS,
    RENEWABLE,
    TOKEN_ENDPOINTS,
    Canned,
    Outcome,
    Rig,
    body_for,
    bounded,
    first_tokens,
    send,
)

#: What the user sees when a provider rejects the token (status, GraphQL code or None).
SIGNAL = {
    "tracker": (200, "UNAUTHENTICATED"),
    "bringg": (401, None),
    "dhl": (401, None),
    "yandex": (401, None),
}


def rejected(provider: str, outcome: Outcome) -> bool:
    status, code = SIGNAL.get(provider, (PAGES[provider].rejection.status, None))
    return outcome.status == status and (code is None or code in outcome.graphql_codes())


def reject_answer(provider: str) -> Canned:
    """The provider's "token rejected" answer, as a scripted API reply."""
    if provider == "tracker":
        return Canned(
            200,
            {
                "data": None,
                "errors": [{"message": "expired", "extensions": {"code": "UNAUTHENTICATED"}}],
            },
        )
    return Canned(401, {"message": "Unauthorized"}, {"WWW-Authenticate": "Bearer"})


def streams_are_refused(provider: str) -> bool:
    """Auth that signs the body (``requires_request_body``) refuses a stream up front."""
    return bool(registry()[provider].auth_class.requires_request_body)


def refreshes(provider: str) -> int:
    """Token requests of one first call plus one refresh (Yandex starts with its token;
    static credentials and locally minted or signed ones make none)."""
    return first_tokens(provider) + (provider in RENEWABLE and provider in TOKEN_ENDPOINTS)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", RENEWABLE)  # the others: test_unrenewable_...
def test_auth_failure_twice_in_a_row_retries_once(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    auth = make_auth(provider)
    rig.emu.inject_fault(provider, "auth_failure", times=2, endpoint="resource")
    outcome = bounded(send, client, auth, rig.api_url(provider), body_for(provider))
    assert rejected(provider, outcome), outcome
    assert len(outcome.history) == 1
    first, second = rig.requests_of(provider, "api")
    assert first.authorization != second.authorization, "the resend carries a fresh token"
    assert first.body_sha == second.body_sha
    assert rig.count(provider, "api") == 2
    assert rig.count(provider, "token") == refreshes(provider)


@pytest.mark.parametrize("status", [200, 400, 401, 500])
@pytest.mark.parametrize("client", CLIENTS)
def test_unauthenticated_twice_at_any_status_retries_once(
    rig: Rig, make_auth: MakeAuth, client: str, status: int
) -> None:
    rig.emu.tracker_unauthenticated_status = status
    auth = make_auth("tracker")
    rig.emu.inject_fault("tracker", "auth_failure", times=2, endpoint="resource")
    outcome = bounded(send, client, auth, rig.api_url("tracker"), body_for("tracker"))
    assert (outcome.status, outcome.graphql_codes(), outcome.history) == (
        status,
        ["UNAUTHENTICATED"],
        [status],
    )
    assert rig.count("tracker", "api") == 2
    assert rig.count("tracker", "token") == 2


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("provider", "options"),
    [
        ("tracker", {"method": "api_key"}),
        ("yandex", {"refresh_token": None}),
        *((p, {}) for p in PROVIDERS if p not in RENEWABLE),
    ],
    ids=[
        "tracker-api-key",
        "yandex-without-refresh-token",
        *(p for p in PROVIDERS if p not in RENEWABLE),
    ],
)
def test_unrenewable_credentials_are_not_resent(
    rig: Rig,
    make_auth: MakeAuth,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    options: dict[str, Any],
    client: str,
) -> None:
    auth = make_auth(provider, **options)
    rig.emu.inject_fault(provider, "auth_failure", times=2, endpoint="resource")
    outcome = bounded(send, client, auth, rig.api_url(provider), body_for(provider))
    assert rejected(provider, outcome)
    assert outcome.history == []
    assert rig.count(provider, "api") == 1
    assert rig.count(provider, "token") == 0
    assert any(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_401_on_the_retried_request_after_a_same_origin_redirect(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    auth = make_auth(provider)
    rig.emu.inject_fault(provider, "auth_failure", times=2, endpoint="resource")
    url = rig.redirect_url(provider, rig.api_url(provider))
    outcome = bounded(send, client, auth, url, body_for(provider))
    assert rejected(provider, outcome), outcome
    sends = 1 + (provider in RENEWABLE)  # static credentials: no resend
    assert rig.count(provider, "api") == sends, "at most one resend, no loop"
    assert rig.count(provider, "redirect") <= 2
    assert rig.count(provider, "token") == refreshes(provider)
    if provider in RENEWABLE:
        tokens = {s.authorization for s in rig.requests_of(provider, "api")}
        assert len(tokens) == 2


@pytest.fixture
def elsewhere() -> Iterator[LoopbackServer]:
    """Another origin (another port on loopback) that records what it receives."""
    with LoopbackServer() as server:
        yield server


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_cross_origin_redirect_carries_no_token_and_is_not_retried(
    rig: Rig, make_auth: MakeAuth, elsewhere: LoopbackServer, provider: str, client: str
) -> None:
    auth = make_auth(provider)
    url = rig.redirect_url(provider, elsewhere.url("/api/orders"))
    outcome = bounded(send, client, auth, url, body_for(provider))
    assert outcome.status == 401  # the other origin's answer, returned as it is
    assert rig.count(provider, "token") == first_tokens(provider)
    assert rig.count(provider, "redirect") == 1
    carried = [seen.headers.get(auth.header) for seen in elsewhere.state.api_requests]
    if auth.header != "Authorization" and client != "requests":
        # httpx keeps every header but Authorization across origins (documented in
        # ApiKeyAuth); it follows redirects only when asked to, as this harness does.
        pytest.xfail(f"httpx carries {auth.header} on a cross-origin redirect")
    assert carried == [None]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_retry_redirected_to_another_origin_carries_no_token(
    rig: Rig, make_auth: MakeAuth, elsewhere: LoopbackServer, provider: str, client: str
) -> None:
    auth = make_auth(provider)
    away = Canned(307, b"", {"Location": elsewhere.url("/api/orders")})
    rig.script_api(provider, reject_answer(provider), away)
    outcome = bounded(send, client, auth, rig.api_url(provider), body_for(provider))
    assert outcome.status == 401
    renewable = provider in RENEWABLE  # static credentials: no retry, nothing goes away
    assert rig.count(provider, "api") == 1 + renewable
    carried = [seen.headers.get(auth.header) for seen in elsewhere.state.api_requests]
    assert carried == ([None] if renewable else [])
    assert rig.count(provider, "token") == refreshes(provider)


def _lookalikes(provider: str) -> list[str]:
    if provider not in ("tracker", "bringg", "dhl", "yandex"):  # from its default hosts
        hosts = [h.removeprefix("*.") for h in registry()[provider].default_hosts]
        return [f"https://{h}.evil.example/" for h in hosts if "." in h and "/" not in h]
    return {
        "tracker": [
            "https://tracker.delivery.evil.example/graphql",
            "https://eviltracker.delivery/",
        ],
        "bringg": ["https://admin-api.bringg.com.evil.example/", "https://evilbringg.com/x"],
        "dhl": ["https://api.dhlecs.com.evil.example/", "https://notdhlecs.com/x"],
        "yandex": ["https://courier.yandex.ru.evil.example/", "https://api.example.com/x"],
    }[provider]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_token_never_sent_outside_allowed_hosts(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    auth = make_auth(provider)
    for url in _lookalikes(provider):
        with pytest.raises(DisallowedHostError) as info:
            bounded(send, client, auth, url, b"{}")
        host = url.split("/")[2]
        assert host in str(info.value)
        assert "allowed_hosts" in str(info.value)
    assert rig.count(provider, "token") == 0, "refused before any token request"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_token_never_sent_over_plain_http_to_a_remote_host(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    auth = make_auth(provider, allowed_hosts=None)
    with pytest.raises(InsecureTransportError, match="plain http"):
        # TEST-NET-3: never routed; the error must come before any connection attempt.
        bounded(send, client, auth, "http://203.0.113.7/api", b"{}")
    assert rig.count(provider, "token") == 0


def _sync_chunks(data: bytes) -> Iterator[bytes]:
    yield data[:10]
    yield data[10:]


async def _async_chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data[:10]
    yield data[10:]


def _generator_body(client: str, data: bytes) -> Any:
    return _async_chunks(data) if client == "httpx-async" else _sync_chunks(data)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_auth_failure_with_a_generator_body_is_returned_not_resent(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    if streams_are_refused(provider):
        pytest.skip("signs the body: a stream is refused before sending (its own tests)")
    auth = make_auth(provider)
    assert bounded(send, client, auth, rig.api_url(provider), body_for(provider)).ok
    rig.emu.revoke_all(provider)
    data = body_for(provider)
    outcome = bounded(send, client, auth, rig.api_url(provider), _generator_body(client, data))
    assert rejected(provider, outcome)
    assert outcome.history == []
    last = rig.requests_of(provider, "api")[-1]
    assert last.body_sha == hashlib.sha256(data).hexdigest(), "the one send was complete"
    assert rig.count(provider, "api") == 2


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", RENEWABLE)  # a static credential stays rejected
def test_generator_body_auth_failure_drops_the_rejected_token(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    if streams_are_refused(provider):
        pytest.skip("signs the body: a stream is refused before sending (its own tests)")
    auth = make_auth(provider)
    assert bounded(send, client, auth, rig.api_url(provider), body_for(provider)).ok
    rig.emu.revoke_all(provider)
    data = body_for(provider)
    first = bounded(send, client, auth, rig.api_url(provider), _generator_body(client, data))
    assert rejected(provider, first)
    # The server said the token is dead: the next streamed upload must get a fresh one.
    second = bounded(send, client, auth, rig.api_url(provider), _generator_body(client, data))
    assert second.ok, second
    assert second.history == []


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", RENEWABLE)  # static credentials are never resent
def test_huge_json_request_body_is_resent_intact(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    auth = make_auth(provider)
    filler = "x" * (2 * 1024 * 1024)
    payload = {"query": QUERY_TEXT, "padding": filler} if provider == "tracker" else {"pad": filler}
    data = json.dumps(payload).encode()
    rig.script_api(provider, reject_answer(provider))
    outcome = bounded(send, client, auth, rig.api_url(provider), data)
    assert outcome.ok, outcome
    first, second = rig.requests_of(provider, "api")
    assert first.body_length == second.body_length == len(data)
    assert first.body_sha == second.body_sha == hashlib.sha256(data).hexdigest()


QUERY_TEXT = "query { carriers(first: 1) { edges { node { id } } } }"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_huge_json_response_is_passed_through_without_a_retry(
    rig: Rig, make_auth: MakeAuth, provider: str, client: str
) -> None:
    """A multi-MB JSON answer (with UNAUTHENTICATED buried past the detector's limit)."""
    auth = make_auth(provider)
    rows = [{"id": n, "status": "DELIVERED", "note": "y" * 200} for n in range(12_000)]
    body = {"data": {"rows": rows}, "errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}
    data = json.dumps(body).encode()
    assert len(data) > 2 * 1024 * 1024
    rig.script_api(provider, Canned(200, data, headers=dict(JSON)))
    outcome = bounded(send, client, auth, rig.api_url(provider), body_for(provider))
    assert outcome.status == 200
    assert outcome.body == data
    assert outcome.history == []
    assert rig.count(provider, "api") == 1
    assert rig.count(provider, "token") == first_tokens(provider)
