"""The events auth objects emit in real flows (real servers on 127.0.0.1, a real Redis),
what they carry, and that they never carry a secret or a token."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from conftest import FAST_BACKOFF
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer, Reply
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis_server import RedisServer

from delivery_auth import ClientCredentialsAuth, RedisTokenCache, otel
from delivery_auth.demo import run_demo
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.events import (
    AuthEvent,
    BackgroundRefreshFailed,
    SharedCacheOutage,
    SharedCacheRecovered,
    TokenEndpointRetry,
    TokenFetched,
    TokenFetchFailed,
    TokenRefreshedAhead,
    TokenRejected,
    add_listener,
    remove_listener,
)


class Recorder:
    def __init__(self) -> None:
        self.events: list[AuthEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: AuthEvent) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind: type[AuthEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def seen() -> Recorder:
    return Recorder()


@pytest.fixture
def build(server: LoopbackServer, seen: Recorder) -> Iterator[Callable[..., ClientCredentialsAuth]]:
    made: list[ClientCredentialsAuth] = []

    def make(**options: Any) -> ClientCredentialsAuth:
        options.setdefault("backoff", FAST_BACKOFF)
        auth = ClientCredentialsAuth(
            server.token_url, CLIENT_ID, CLIENT_SECRET, on_event=seen, **options
        )
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


def test_a_fetch_and_a_rejection_with_its_resend(
    server: LoopbackServer, build: Callable[..., ClientCredentialsAuth], seen: Recorder
) -> None:
    auth = build()
    assert requests.get(server.url(), auth=auth, timeout=10).status_code == 200
    (first,) = seen.of(TokenFetched)
    assert (first.provider, first.source, first.attempts, first.waiters) == (
        "ClientCredentialsAuth",
        "token endpoint",
        1,
        0,
    )
    assert first.lifetime == 3600
    assert first.duration >= 0
    assert first.fingerprint == auth.get_token().fingerprint
    server.state.revoke_all()
    assert httpx.get(server.url(), auth=auth, timeout=10).status_code == 200
    (rejected,) = seen.of(TokenRejected)
    assert (rejected.status, rejected.resent, rejected.reason) == (401, True, "resent")
    assert rejected.fingerprint == first.fingerprint
    assert rejected.replacement == auth.get_token().fingerprint != first.fingerprint
    assert len(seen.of(TokenFetched)) == 2


def test_a_rejection_that_is_not_resent_says_why(
    server: LoopbackServer, build: Callable[..., ClientCredentialsAuth], seen: Recorder
) -> None:
    auth = build()
    server.state.api_script.append(Reply(401, {"error": "invalid_token"}))

    def stream() -> Iterator[bytes]:
        yield b"one-shot"

    response = requests.post(server.url(), data=stream(), auth=auth, timeout=10)
    assert response.status_code == 401
    (rejected,) = seen.of(TokenRejected)
    assert (rejected.resent, rejected.reason, rejected.replacement) == (
        False,
        "body cannot be replayed",
        None,
    )


def test_failed_attempts_then_a_token(
    server: LoopbackServer, build: Callable[..., ClientCredentialsAuth], seen: Recorder
) -> None:
    server.state.token_script.extend([Reply(503, "down"), Reply(429, {}, {"Retry-After": "0"})])
    auth = build()
    auth.get_token()
    retries = seen.of(TokenEndpointRetry)
    assert [(r.attempt, r.attempts, r.status, r.error) for r in retries] == [
        (1, 3, 503, None),
        (2, 3, 429, None),
    ]
    assert all(r.backoff >= 0 for r in retries)
    (fetched,) = seen.of(TokenFetched)
    assert fetched.attempts == 3


def test_a_failed_fetch_names_the_error(
    server: LoopbackServer, build: Callable[..., ClientCredentialsAuth], seen: Recorder
) -> None:
    server.state.token_script.append(Reply(401, {"error": "invalid_client"}))
    with pytest.raises(Exception, match="rejected"):
        build().get_token()
    (failed,) = seen.of(TokenFetchFailed)
    assert (failed.error, failed.attempts) == ("InvalidClientError", 1)


def test_single_flight_waiters_are_counted(
    server: LoopbackServer, build: Callable[..., ClientCredentialsAuth], seen: Recorder
) -> None:
    auth = build()
    gate = threading.Event()
    server.state.token_gate = gate
    threads = [threading.Thread(target=auth.get_token) for _ in range(8)]
    for thread in threads:
        thread.start()
    # Hold the token request until every caller has joined its flight.
    assert server.state.token_arrived.wait(600)
    while auth._engine._waiters < 7:
        if not any(thread.is_alive() for thread in threads):  # pragma: no cover
            break
        threading.Event().wait(0.01)
    gate.set()
    for thread in threads:
        thread.join(600)
    (fetched,) = seen.of(TokenFetched)
    assert fetched.waiters == 7


def test_refreshed_ahead_and_a_failed_background_refresh(
    server: LoopbackServer, build: Callable[..., ClientCredentialsAuth], seen: Recorder
) -> None:
    auth = build(refresh_ratio=0.0)  # due for refresh as soon as it arrives
    old = auth.get_token()
    auth.get_token()  # served at once; one background refresh
    assert auth._engine._flight is None or auth._engine._flight.result(600)
    (ahead,) = seen.of(TokenRefreshedAhead)
    assert ahead.previous == old.fingerprint != ahead.fingerprint
    assert ahead.remaining is not None
    assert ahead.remaining > 0
    server.state.token_script.extend([Reply(500, "down")] * 3)
    auth.get_token()
    flight = auth._engine._flight
    if flight is not None:
        with pytest.raises(Exception, match="500"):
            flight.result(600)
    (failed,) = seen.of(BackgroundRefreshFailed)
    assert failed.error == "TokenEndpointUnavailableError"
    assert failed.fingerprint == auth.get_token().fingerprint  # still the current token


def test_a_shared_cache_outage_and_its_end(seen: Recorder) -> None:
    redis = RedisServer()  # its port, not started yet: an outage from the first call
    with LoopbackServer() as server:
        cache = RedisTokenCache(url=redis.url)
        cache.probe_interval = 0.0
        auth = ClientCredentialsAuth(
            server.token_url, CLIENT_ID, CLIENT_SECRET, cache=cache, on_event=seen
        )
        try:
            with auth:
                assert requests.get(server.url(), auth=auth, timeout=10).status_code == 200
                (outage,) = seen.of(SharedCacheOutage)
                assert outage.provider == "ClientCredentialsAuth"
                assert outage.cache == "RedisTokenCache"
                redis.start()
                server.state.revoke_all()  # the next call asks the cache again
                assert requests.get(server.url(), auth=auth, timeout=10).status_code == 200
                (recovered,) = seen.of(SharedCacheRecovered)
                assert recovered.outage >= 0
                assert len(seen.of(SharedCacheOutage)) == 1
        finally:
            redis.__exit__()


def test_a_hook_that_raises_never_breaks_a_request(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: AuthEvent) -> None:
        raise RuntimeError("hook bug")

    with ClientCredentialsAuth(
        server.token_url, CLIENT_ID, CLIENT_SECRET, backoff=FAST_BACKOFF, on_event=broken
    ) as auth:
        assert requests.get(server.url(), auth=auth, timeout=10).status_code == 200
    assert "raised RuntimeError on TokenFetched; ignored" in caplog.text


def test_every_provider_names_itself_and_nothing_secret_in_a_demo_run() -> None:
    """The demo drives every provider through every client: every event field, and every
    span attribute, is scanned for every test credential and every token seen."""
    events = Recorder()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    add_listener(events)
    otel.instrument(tracer_provider=provider)
    try:
        import io

        assert run_demo(io.StringIO(), clients=["requests", "httpx async"])
    finally:
        otel.uninstrument()
        remove_listener(events)
    names = {e.provider for e in events.events}
    from delivery_auth.providers.spec import registry

    assert names == set(registry())  # every provider reported, under its short name
    assert {type(e) for e in events.events} >= {TokenFetched, TokenRejected}
    secrets = {
        value
        for known in CREDENTIALS.values()
        for value in (known.client_secret, known.token, known.refresh_token, *known.extra.values())
        if value and len(value) > 6
    }
    texts = [repr(dataclasses.asdict(e)) for e in events.events]
    texts += [repr(dict(span.attributes or {})) for span in spans.get_finished_spans()]
    assert spans.get_finished_spans()
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "Bearer " not in text  # no header
        assert "eyJ" not in text  # no JWT


def test_async_callers_report_too(
    server: LoopbackServer, build: Callable[..., ClientCredentialsAuth], seen: Recorder
) -> None:
    auth = build()

    async def main() -> None:
        async with httpx.AsyncClient(auth=auth) as client:
            await asyncio.gather(*(client.get(server.url()) for _ in range(16)))

    asyncio.run(main())
    (fetched,) = seen.of(TokenFetched)
    assert fetched.source == "token endpoint"


def test_every_auth_class_takes_on_event() -> None:
    from delivery_auth import (
        ApiKeyAuth,
        BasicCredentialsAuth,
        ClientCredentialsAuth,
        HmacSigningAuth,
        PasswordGrantAuth,
    )
    from delivery_auth.providers.base import keyword_options
    from delivery_auth.providers.spec import registry
    from delivery_auth.self_signed_jwt import SelfSignedJWTAuth

    classes = [spec.auth_class for spec in registry().values()]
    classes += [
        ApiKeyAuth,
        BasicCredentialsAuth,
        ClientCredentialsAuth,
        HmacSigningAuth,
        PasswordGrantAuth,
        SelfSignedJWTAuth,
    ]
    missing = [cls.__name__ for cls in classes if "on_event" not in keyword_options(cls)]
    assert missing == []
