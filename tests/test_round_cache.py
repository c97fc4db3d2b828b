"""The cheap whole round: a response is done from its status before anyone looks at its
URL or headers; per-origin verdicts, hooks and attempts live in bounded LRU caches; a URL
is parsed once per miss; a subclass can opt out of every cached path.

Behaviour only: nothing here measures time (speed lives in ``benchmarks/``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import httpx2
import pytest
import requests
from conftest import CLIENTS, call
from loopback import LoopbackServer

from delivery_auth import (
    ClientCredentialsAuth,
    DeliveryAuth,
    DisallowedHostError,
    MemoryTokenCache,
    RefreshPolicy,
    StatusFailureDetector,
    Token,
)
from delivery_auth import hosts as hosts_module
from delivery_auth.engine import Lease, TokenEngine
from delivery_auth.flow import Flow, failure_statuses
from delivery_auth.hosts import ORIGIN_CACHE_LIMIT, HostPolicy, RecentlyUsed

MakeAuth = Callable[..., ClientCredentialsAuth]
API = "https://api.example.com/v1/orders"
EVIL = "https://evil.example/v1/orders"


class CountingSource:
    """A token source that hands out ``token-1``, ``token-2``, ... and counts them."""

    def __init__(self) -> None:
        self.fetched = 0

    def fetch(self) -> Token:
        self.fetched += 1
        return Token(f"token-{self.fetched}")

    def close(self) -> None:
        pass

    def reset_after_fork(self) -> None:
        pass


def offline_auth(cls: type[DeliveryAuth] = DeliveryAuth, **options: Any) -> DeliveryAuth:
    """An auth object whose tokens come from a :class:`CountingSource` (no network)."""
    engine = TokenEngine(
        CountingSource(),
        cache=MemoryTokenCache(),
        key="k",
        policy=RefreshPolicy(),
        format_header=lambda token: f"Bearer {token.access_token}",
    )
    return cls(engine, **options)


def fetched(auth: DeliveryAuth) -> int:
    return auth.token_requests


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every URL that hosts.py parses from now on."""
    seen: list[str] = []
    parse = hosts_module._parse

    def counting(url: str) -> Any:
        seen.append(url)
        return parse(url)

    monkeypatch.setattr(hosts_module, "_parse", counting)
    return seen


class Trap:
    """Fails the test when anything reads it: stands for headers and URLs that must not
    be looked at."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{self._what}.{name} was read")


class StatusOnlyResponse:
    """An httpx-like response of which only the status may be read."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code

    @property
    def headers(self) -> Any:
        raise AssertionError("response.headers was read")

    @property
    def request(self) -> Any:
        raise AssertionError("response.request was read")


# -- the LRU cache ---------------------------------------------------------------------


class TestRecentlyUsed:
    def test_evicts_the_least_recently_used_one_at_a_time(self) -> None:
        cache: RecentlyUsed[str, int] = RecentlyUsed(3)
        for value, key in enumerate("abc"):
            cache.put(key, value)
        assert cache.get("a") == 0  # "a" is now the most recently used
        cache.put("d", 3)  # so "b" goes
        assert cache.get("b") is None
        assert [cache.get(key) for key in "acd"] == [0, 2, 3]  # order of use: a, c, d
        cache.put("c", 20)  # putting again counts as a use: a, d, c
        cache.put("e", 4)  # "a" goes
        assert cache.get("a") is None
        assert [cache.get(key) for key in "dce"] == [3, 20, 4]
        assert len(cache) == 3

    def test_never_empties_itself(self) -> None:
        cache: RecentlyUsed[int, int] = RecentlyUsed(100)
        for key in range(250):
            cache.put(key, key)
            assert len(cache) == min(key + 1, 100)
        assert [cache.get(key) for key in range(150, 250)] == list(range(150, 250))
        assert cache.get(149) is None

    def test_caches_start_empty_and_apart(self) -> None:
        first: RecentlyUsed[str, int] = RecentlyUsed(2)
        second: RecentlyUsed[str, int] = RecentlyUsed(2)
        first.put("a", 1)
        assert second.get("a") is None
        assert len(second) == 0
        assert first.get("a") == 1


def test_host_verdicts_outlive_the_old_clear_all_at_512(parses: list[str]) -> None:
    policy = HostPolicy(None)
    urls = [f"https://h{number}.example/x" for number in range(1000)]
    for url in urls:
        policy.origin_for(url)
    parses.clear()
    for url in urls:
        assert policy.origin_for(url) == url.removesuffix("/x") + ":443"
    assert parses == []  # every one of 1,000 origins was still known
    assert len(policy._origins) == 1000 <= ORIGIN_CACHE_LIMIT


# -- one parse per miss ----------------------------------------------------------------


class TestOneParsePerMiss:
    def test_host_policy(self, parses: list[str]) -> None:
        policy = HostPolicy(["api.example.com"])
        assert policy.origin_for(API) == "https://api.example.com:443"
        assert len(parses) == 1
        assert policy.origin_for(API + "?page=2") == "https://api.example.com:443"
        assert len(parses) == 1  # a hit parses nothing
        fresh = HostPolicy(["api.example.com"])
        assert fresh.origin_for_url(httpx.URL(API)) == "https://api.example.com:443"
        assert len(parses) == 2
        with pytest.raises(DisallowedHostError):
            fresh.origin_for(EVIL)
        assert len(parses) == 3  # a refusal is one parse too

    def test_requests_round(self, parses: list[str]) -> None:
        auth = offline_auth()
        prepared = requests.Request("GET", API).prepare()
        auth(prepared)
        response = requests.Response()
        response.status_code, response.request = 200, prepared
        (hook,) = prepared.hooks["response"]
        assert hook(response) is response
        assert parses == [API]  # the host check of the miss, and nothing else

    @pytest.mark.parametrize("library", [httpx, httpx2])
    def test_httpx_round(self, parses: list[str], library: Any) -> None:
        auth = offline_auth()
        request = library.Request("GET", API)
        flow = auth.sync_auth_flow(request)
        sent = next(flow)
        with pytest.raises(StopIteration):
            flow.send(library.Response(200, request=sent))
        assert parses == [API]


# -- done from the status alone ----------------------------------------------------------


class TestDoneFromTheStatus:
    """With a status-only detector, a response whose status is not a failure is done
    before any header or URL is read; every other response is judged in full."""

    def test_requests(self) -> None:
        auth = offline_auth()
        prepared = requests.Request("GET", API).prepare()
        auth(prepared)
        (hook,) = prepared.hooks["response"]
        for status in (200, 204, 302, 403, 500):
            response = requests.Response()
            response.status_code = status
            response.headers = Trap("response.headers")  # type: ignore[assignment]
            response.request = Trap("response.request")  # type: ignore[assignment]
            assert hook(response, stream=False, timeout=None) is response

    def test_httpx_sync(self) -> None:
        auth = offline_auth()
        for status in (200, 204, 403):
            flow = auth.sync_auth_flow(httpx.Request("GET", API))
            next(flow)
            with pytest.raises(StopIteration):
                flow.send(StatusOnlyResponse(status))

    def test_httpx_async(self) -> None:
        auth = offline_auth()

        async def main() -> None:
            for status in (200, 204, 403):
                flow = auth.async_auth_flow(httpx.Request("GET", API))
                await flow.__anext__()
                with pytest.raises(StopAsyncIteration):
                    await flow.asend(StatusOnlyResponse(status))

        asyncio.run(main())

    def test_a_body_detector_is_asked_before_the_request_is_looked_at(self) -> None:
        class JsonOnly:
            def needs_body(self, status_code: int, content_type: str) -> bool:
                return "json" in content_type

            def is_auth_failure(
                self, status_code: int, content_type: str, body: bytes | None
            ) -> bool:
                return False

        auth = offline_auth(failure_detector=JsonOnly())
        flow = auth.sync_auth_flow(httpx.Request("GET", API))
        next(flow)
        html = httpx.Response(200, headers={"content-type": "text/html"})
        html._request = Trap("response.request")  # type: ignore[assignment]
        with pytest.raises(StopIteration):
            flow.send(html)

    def test_only_plain_status_detectors_skip_the_detector(self) -> None:
        plain = StatusFailureDetector({401, 419})
        assert plain.failure_statuses == plain.statuses == frozenset({401, 419})
        with pytest.raises(AttributeError):  # read once by the auth: it must not change
            plain.statuses = frozenset({403})  # type: ignore[misc]

        class ReadsBodies(StatusFailureDetector):
            def needs_body(self, status_code: int, content_type: str) -> bool:
                return True

        class OwnVerdict(StatusFailureDetector):
            def is_auth_failure(
                self, status_code: int, content_type: str, body: bytes | None
            ) -> bool:
                return status_code == 403

        assert ReadsBodies().failure_statuses is None
        assert OwnVerdict().failure_statuses is None

        class Declared:
            failure_statuses: ClassVar[object] = {401, 498}

            def needs_body(self, status_code: int, content_type: str) -> bool:
                return False

            def is_auth_failure(
                self, status_code: int, content_type: str, body: bytes | None
            ) -> bool:
                return status_code in {401, 498}

        class Nonsense(Declared):
            failure_statuses: ClassVar[object] = {"401"}

        assert failure_statuses(Declared()) == frozenset({401, 498})
        assert failure_statuses(Nonsense()) is None
        flow = Flow(OwnVerdict(), cannot_refresh=print)
        assert flow.failure_statuses is None

    def test_a_subclass_that_reads_bodies_still_gets_them(self) -> None:
        class ExpiredInBody(StatusFailureDetector):
            def needs_body(self, status_code: int, content_type: str) -> bool:
                return True

            def is_auth_failure(
                self, status_code: int, content_type: str, body: bytes | None
            ) -> bool:
                return body == b"expired"

        auth = offline_auth(failure_detector=ExpiredInBody())
        flow = auth.sync_auth_flow(httpx.Request("GET", API))
        sent = next(flow)
        first = sent.headers["Authorization"]
        retried = flow.send(httpx.Response(200, request=sent, content=b"expired"))
        assert retried.headers["Authorization"] != first
        assert fetched(auth) == 2


# -- only our own responses are judged ---------------------------------------------------


class TestOnlyOurResponses:
    """A 401 is judged as ours only when its request carried this attempt's token to the
    origin it was authorised for."""

    @pytest.mark.parametrize("library", [httpx, httpx2])
    def test_httpx(self, library: Any) -> None:
        auth = offline_auth()
        ours = auth.get_token()
        header = f"Bearer {ours.access_token}"
        others = [
            library.Request("GET", EVIL, headers={"Authorization": header}),  # redirected
            library.Request("GET", API, headers={"Authorization": "Bearer other"}),
            library.Request("GET", API),  # no token at all
        ]
        for other in others:
            flow = auth.sync_auth_flow(library.Request("GET", API))
            next(flow)
            with pytest.raises(StopIteration):
                flow.send(library.Response(401, request=other))
        assert fetched(auth) == 1
        assert auth.get_token() == ours
        # and a 401 of our own request is ours
        flow = auth.sync_auth_flow(library.Request("GET", API))
        sent = next(flow)
        assert flow.send(library.Response(401, request=sent)).headers["Authorization"] != header
        assert fetched(auth) == 2

    def test_httpx_request_pointed_elsewhere_after_the_auth(self) -> None:
        # An event hook may give the request another URL after the auth has run: the
        # URL the auth admitted is what counts, not the request object.
        auth = offline_auth()
        flow = auth.sync_auth_flow(httpx.Request("GET", API))
        sent = next(flow)
        sent.url = httpx.URL(EVIL)
        with pytest.raises(StopIteration):
            flow.send(httpx.Response(401, request=sent))
        assert fetched(auth) == 1

    def test_requests(self, caplog: pytest.LogCaptureFixture) -> None:
        auth = offline_auth()
        prepared = requests.Request("GET", API).prepare()
        auth(prepared)
        header = prepared.headers["Authorization"]
        (hook,) = prepared.hooks["response"]
        elsewhere = [
            requests.Request("GET", EVIL, headers={"Authorization": header}).prepare(),
            requests.Request("GET", API, headers={"Authorization": "Bearer other"}).prepare(),
            requests.Request("GET", "https://api.example.com:8443/v1").prepare(),
        ]
        elsewhere[2].headers["Authorization"] = header  # same host, another port
        caplog.set_level(logging.INFO, logger="delivery_auth")
        for sent in elsewhere:
            response = requests.Response()
            response.status_code, response.request = 401, sent
            assert hook(response) is response
        assert fetched(auth) == 1
        assert caplog.records == []


# -- many origins on one object ----------------------------------------------------------


class TestManyOrigins:
    def test_requests_hooks_are_kept_per_origin(self) -> None:
        auth = offline_auth()
        urls = [f"https://h{number}.example/x" for number in range(1000)]

        def hooks() -> list[object]:
            found = []
            for url in urls:
                prepared = requests.Request("GET", url).prepare()
                auth(prepared)
                found.append(prepared.hooks["response"][0])
            return found

        first, second = hooks(), hooks()
        assert all(a is b for a, b in zip(first, second, strict=True))
        assert len({id(hook) for hook in first}) == 1000  # one per origin
        auth._engine.invalidate(auth.get_token())
        third = hooks()  # a new lease: new hooks, carrying it
        assert not any(a is b for a, b in zip(first, third, strict=True))
        assert fetched(auth) == 2

    @pytest.mark.parametrize("client", CLIENTS)
    def test_a_new_token_reaches_every_cached_origin(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        auth = make_auth()
        port = server.server_address[1]
        first, second = server.url(), f"http://localhost:{port}/api/orders"
        for url in (first, second, first, second):  # both origins cached
            assert call(client, auth, "GET", url).status == 200
        server.state.revoke_all()
        assert call(client, auth, "GET", first).status == 200  # 401, then the retry
        assert call(client, auth, "GET", second).status == 200  # at once the new token
        sent = [seen.headers["Authorization"] for seen in server.state.api_requests]
        old, new = sent[0], f"Bearer {auth.get_token().access_token}"
        assert sent == [old] * 5 + [new] * 2
        assert len(server.state.token_requests) == 2


# -- what the cached paths never skip ------------------------------------------------------


def test_default_headers_go_on_every_requests_call_to_a_cached_origin() -> None:
    """An object with default headers keeps no last-call hook (see __call__), so each
    call adds them: three calls to one origin, then to a second one and back."""
    auth = offline_auth(default_headers={"X-Version": "3"})
    urls = [API, API, API, "https://other.example/x", API]
    seen = []
    for url in urls:
        prepared = requests.Request("GET", url).prepare()
        auth(prepared)
        seen.append((prepared.headers.get("X-Version"), len(prepared.hooks["response"])))
    assert seen == [("3", 1)] * len(urls)
    assert fetched(auth) == 1


def test_a_credential_header_other_than_authorization_is_dropped_on_a_redirect() -> None:
    """The requests hook returns at once for every status it need not judge; a redirect
    must still reach it when the credential is in a header requests keeps."""
    auth = offline_auth(header="API-Key")
    prepared = requests.Request("GET", API).prepare()
    auth(prepared)
    (hook,) = prepared.hooks["response"]
    response = requests.Response()
    response.status_code, response.request, response.url = 302, prepared, API
    response.headers["Location"] = "https://elsewhere.example/x"
    assert hook(response) is response
    assert "API-Key" not in prepared.headers


def static_auth(token: Token) -> tuple[DeliveryAuth, list[str]]:
    """An auth object serving ``token`` and never another one, and a list of the engine's
    ``current``/``acurrent`` calls."""
    engine = TokenEngine(
        CountingSource(),
        cache=MemoryTokenCache(),
        key="k",
        policy=RefreshPolicy(),
        format_header=lambda token: f"Bearer {token.access_token}",
        initial=token,
        refreshable=False,  # no background refresh: nothing changes behind the test
    )
    calls: list[str] = []
    current, acurrent = engine.current, engine.acurrent

    def counting(*, fresh: bool = False) -> Lease:
        calls.append("current")
        return current(fresh=fresh)

    async def acounting(*, fresh: bool = False) -> Lease:
        calls.append("acurrent")
        return await acurrent(fresh=fresh)

    engine.current = counting  # type: ignore[method-assign]
    engine.acurrent = acounting  # type: ignore[method-assign]
    return DeliveryAuth(engine), calls


def three_rounds(auth: DeliveryAuth) -> list[str]:
    """Three calls through each adapter; the headers they sent."""
    sent = []
    for _ in range(3):
        prepared = requests.Request("GET", API).prepare()
        auth(prepared)
        sent.append(prepared.headers["Authorization"])
        flow = auth.sync_auth_flow(httpx.Request("GET", API))
        sent.append(next(flow).headers["Authorization"])

        async def once() -> str:
            aflow = auth.async_auth_flow(httpx.Request("GET", API))
            return str((await aflow.__anext__()).headers["Authorization"])

        sent.append(asyncio.run(once()))
    return sent


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        # fresh: the engine once for requests, once for httpx (sync and async share)
        (0.0, ["current", "current"]),
        (2000.0, ["current", "current", "acurrent"] * 3),  # due for refresh: every time
    ],
)
def test_a_lease_due_for_refresh_always_goes_to_the_engine(age: float, expected: list[str]) -> None:
    # Due for refresh after half its lifetime, still usable until a minute before the end.
    token = Token("static", lifetime=3600, obtained_at=time.monotonic() - age)
    auth, calls = static_auth(token)
    assert three_rounds(auth) == ["Bearer static"] * 9
    assert calls == expected


def test_url_objects_other_than_httpx_s_are_checked_every_time(parses: list[str]) -> None:
    class PlainRequest:
        def __init__(self, url: str) -> None:
            self.url = url  # no parsed parts to key a cache with
            self.headers: dict[str, str] = {}
            self.stream = httpx.ByteStream(b"")

    auth = offline_auth(allowed_hosts=["api.example.com"])
    for _ in range(2):
        flow = auth.sync_auth_flow(PlainRequest(API))
        assert next(flow).headers["Authorization"] == "Bearer token-1"
        with pytest.raises(StopIteration):
            flow.send(StatusOnlyResponse(200))
    with pytest.raises(DisallowedHostError):
        next(auth.sync_auth_flow(PlainRequest(EVIL)))
    assert parses == [API, EVIL]  # the verdict by URL prefix is still remembered


# -- the opt-out for subclasses ------------------------------------------------------------


class FullPathEveryTime(DeliveryAuth):
    """What a subclass that must see every request does (see ``_reuse_rounds``)."""

    _reuse_rounds = False

    def __init__(self, engine: TokenEngine) -> None:
        super().__init__(engine)
        self.full_rounds = 0

    def _requests_round(self, r: Any, url: str, body: object) -> Any:
        self.full_rounds += 1
        return super()._requests_round(r, url, body)

    def _httpx_attempt(self, url: Any, origin: str, lease: Lease) -> Any:
        self.full_rounds += 1
        return super()._httpx_attempt(url, origin, lease)


class CountingFullPath(FullPathEveryTime):
    _reuse_rounds = True


@pytest.mark.parametrize(("cls", "expected"), [(FullPathEveryTime, 3), (CountingFullPath, 1)])
def test_a_subclass_can_opt_out_of_every_cached_path(
    cls: type[FullPathEveryTime], expected: int
) -> None:
    for drive in ("requests", "httpx", "httpx-async"):
        auth = offline_auth(cls)
        assert isinstance(auth, FullPathEveryTime)
        for _ in range(3):
            if drive == "requests":
                prepared = requests.Request("GET", API).prepare()
                auth(prepared)
                assert prepared.headers["Authorization"] == "Bearer token-1"
            elif drive == "httpx":
                flow = auth.sync_auth_flow(httpx.Request("GET", API))
                assert next(flow).headers["Authorization"] == "Bearer token-1"
            else:

                async def once(auth: DeliveryAuth = auth) -> None:
                    flow = auth.async_auth_flow(httpx.Request("GET", API))
                    sent = await flow.__anext__()
                    assert sent.headers["Authorization"] == "Bearer token-1"

                asyncio.run(once())
        assert auth.full_rounds == expected, drive


# -- building a HostPolicy ----------------------------------------------------------------


class TestBuildingHostPolicies:
    def test_bad_patterns_are_refused_every_time(self) -> None:
        for _ in range(2):  # a refusal is never remembered as a verdict
            with pytest.raises(ValueError, match="allowed_hosts entry"):
                HostPolicy(["api.example.com", "x.com:443"])

    def test_names_made_of_hex_letters_are_host_names(self) -> None:
        policy = HostPolicy(["cafe.be", "dead.beef", "10.0.0.0/8", "fe80::1%eth0"])
        assert policy.admits("cafe.be")
        assert policy.admits("DEAD.beef.")
        assert policy.admits("10.200.0.1")
        assert not policy.admits("11.0.0.1")
        assert not policy.admits("be")

    def test_equal_pattern_lists_build_equal_policies(self) -> None:
        patterns = ["api.example.com", "*.example.org", "127.0.0.0/8", "::1"]
        first, second = HostPolicy(patterns), HostPolicy(tuple(patterns))
        for host in ("api.example.com", "a.example.org", "127.0.0.9", "::1", "evil.example"):
            assert first.admits(host) == second.admits(host)
        assert first.patterns == second.patterns == tuple(patterns)
