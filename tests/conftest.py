"""Shared fixtures: real loopback servers and one way to call every supported client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import httpx2
import pytest
import requests
from hypothesis import HealthCheck, settings
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer

from delivery_auth import BackoffPolicy, ClientCredentialsAuth, DeliveryAuth

# Users get our fixtures through the pytest11 entry point. Here that entry point is disabled
# (-p no:delivery_auth in pyproject.toml) because it would import the package before
# pytest-cov starts measuring; loading the same plugin from this conftest keeps coverage true.
pytest_plugins = ["delivery_auth.pytest_plugin"]

# Hypothesis' defaults fail a test whose example takes over 200 ms (deadline) or whose data
# is slow to generate (too_slow): both measure the machine, not the code. Every @settings in
# the suite inherits this profile (it is loaded before the test modules are imported).
settings.register_profile(
    "delivery-auth", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("delivery-auth")

AuthT = TypeVar("AuthT", bound=DeliveryAuth)

#: Every client an auth object must work with.
CLIENTS = ["requests", "httpx", "httpx-async", "httpx2"]
FAST_BACKOFF = BackoffPolicy(attempts=3, base_delay=0.001, max_delay=0.01)


@dataclass
class Result:
    status: int
    history: list[int]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def call(client: str, auth: Any, method: str, url: str, **kw: Any) -> Result:
    """Send one request with ``client``; ``body=`` is the request body in any form."""
    body = kw.pop("body", None)
    follow = kw.pop("follow_redirects", True)
    if client == "requests":
        r = requests.request(
            method, url, auth=auth, data=body, allow_redirects=follow, timeout=10, **kw
        )
        return Result(r.status_code, [h.status_code for h in r.history], r.content)
    if client == "httpx":
        with httpx.Client(auth=auth, follow_redirects=follow, timeout=10) as c:
            r = c.request(method, url, content=body, **kw)
            return Result(r.status_code, [h.status_code for h in r.history], r.content)
    if client == "httpx2":
        with httpx2.Client(auth=auth, follow_redirects=follow, timeout=10) as c2:
            r2 = c2.request(method, url, content=body, **kw)
            return Result(r2.status_code, [h.status_code for h in r2.history], r2.content)
    if client == "httpx-async":

        async def go() -> Result:
            async with httpx.AsyncClient(auth=auth, follow_redirects=follow, timeout=10) as c:
                r = await c.request(method, url, content=body, **kw)
                return Result(r.status_code, [h.status_code for h in r.history], r.content)

        return asyncio.run(go())
    raise AssertionError(client)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer() as srv:
        yield srv


@pytest.fixture
def other_server() -> Iterator[LoopbackServer]:
    """A second origin (another port), e.g. a redirect target."""
    with LoopbackServer() as srv:
        yield srv


def closing(build: Callable[..., AuthT]) -> Iterator[Callable[..., AuthT]]:
    """For a factory fixture: yield ``build``, then close every auth object it made."""
    made: list[AuthT] = []

    def make(*args: Any, **kwargs: Any) -> AuthT:
        auth = build(*args, **kwargs)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.fixture
def make_auth(server: LoopbackServer) -> Iterator[Callable[..., ClientCredentialsAuth]]:
    def build(**options: Any) -> ClientCredentialsAuth:
        options.setdefault("backoff", FAST_BACKOFF)
        return ClientCredentialsAuth(server.token_url, CLIENT_ID, CLIENT_SECRET, **options)

    yield from closing(build)


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record at DEBUG, from every logger."""
    caplog.set_level(logging.DEBUG)
    return caplog
