"""The libraries under test, each behind the same small interface.

A *contender* is one library used through one HTTP client (``requests``, ``httpx``,
``httpx-async``, ``httpx2``, ``httpx2-async``). :func:`build` returns a :class:`Handle`
that makes one authorised API call (``call`` or ``acall``) over loopback and closes what
it opened. (The in-process scenarios use :mod:`benchmarks.subjects` instead.)

Every library is used the way its documentation shows, with one setting aligned for a
fair rotation test: the "treat the token as expired this early" knob is 0.5 s
everywhere (delivery_auth's default ``refresh_margin`` is capped at a quarter of the
lifetime, which is 0.5 s for the 2 s tokens of the rotation scenario).

``observe=True`` wraps the auth step so that each call records when its auth step
started and ended (see :data:`OBSERVED`); the rotation scenario uses that to count the
calls that waited for a token request.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from .server import CLIENT_ID, CLIENT_SECRET, STATIC_TOKEN

#: ``list`` of (start, end) monotonic intervals of the current call's auth step(s).
OBSERVED: contextvars.ContextVar[list[tuple[float, float]] | None] = contextvars.ContextVar(
    "observed", default=None
)

EARLY_EXPIRY = 0.5
FLOOR_HEADER = f"Bearer {STATIC_TOKEN}"


def _record(start: float) -> None:
    sink = OBSERVED.get()
    if sink is not None:
        sink.append((start, time.monotonic()))


# -- floors ------------------------------------------------------------------------------


class FloorRequestsAuth(AuthBase):
    """The floor for requests: set one precomputed header."""

    def __init__(self, header: str) -> None:
        self.header = header

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.header
        return r


def _returns_at_once(
    r: requests.Response,
    stream: Any = None,
    timeout: Any = None,
    verify: Any = None,
    cert: Any = None,
    proxies: Any = None,
    **more: Any,
) -> requests.Response:
    return r


class HookBoundRequestsAuth(AuthBase):
    """Shown beside the floor: the least a requests auth that sees the response costs.

    requests shows an auth the response only through a response hook on the request, so
    an auth that retries after a rejected token adds one to every request; this one adds
    a hook that returns at once (keyword parameters named: the cheapest form to call)."""

    def __init__(self, header: str) -> None:
        self.header = header

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.header
        r.hooks["response"].append(_returns_at_once)
        return r


class FloorHttpxAuth(httpx.Auth):
    """The floor for httpx: the idiomatic custom auth (``auth_flow``, like ``BasicAuth``)."""

    def __init__(self, header: str) -> None:
        self.header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header
        yield request


class DirectHttpxAuth(httpx.Auth):
    """Shown beside the floor: a header setter that overrides ``sync_auth_flow`` itself."""

    def __init__(self, header: str) -> None:
        self.header = header

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header
        yield request


def _floor_httpx2_auth(header: str) -> Any:
    import httpx2

    class FloorHttpx2Auth(httpx2.Auth):  # type: ignore[misc]
        def auth_flow(self, request: Any) -> Generator[Any, Any, None]:
            request.headers["Authorization"] = header
            yield request

    return FloorHttpx2Auth()


# -- observation wrappers ----------------------------------------------------------------


class TimedRequestsAuth(AuthBase):
    """Records the duration of a requests auth call; delegates everything else."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        start = time.monotonic()
        try:
            result: requests.PreparedRequest = self.inner(r)
            return result
        finally:
            _record(start)


class TimedHttpxAuth(httpx.Auth):
    """Records how long an httpx auth flow takes to yield its first request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def sync_auth_flow(self, request: httpx.Request) -> Generator[Any, Any, None]:
        start = time.monotonic()
        flow = self.inner.sync_auth_flow(request)
        try:
            outgoing = next(flow)
        finally:
            _record(start)
        while True:
            response = yield outgoing
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        start = time.monotonic()
        flow = self.inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
        finally:
            _record(start)
        while True:
            response = yield outgoing
            try:
                outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return


def _timed(function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            _record(start)

    return timed


def _atimed(function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return await function(*args, **kwargs)
        finally:
            _record(start)

    return timed


# -- handles -----------------------------------------------------------------------------


@dataclass
class Handle:
    """One ready-to-use contender.

    ``call`` (sync clients) or ``acall`` (async clients) makes one API call and returns
    its final status.
    """

    call: Callable[[], int] | None = None
    acall: Callable[[], Awaitable[int]] | None = None
    close: Callable[[], None] = lambda: None
    aclose: Callable[[], Awaitable[None]] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Contender:
    library: str
    client: str
    build: Callable[[str, str, bool], Handle]  # (token_url, api_url, observe)
    floor: bool = False
    extra: bool = False  # shown for information, not a competitor

    @property
    def name(self) -> str:
        return f"{self.library} [{self.client}]"


def _requests_session(pool: int = 64) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool)
    session.mount("http://", adapter)
    return session


def _limits() -> httpx.Limits:
    return httpx.Limits(max_connections=128, max_keepalive_connections=64)


#: HTTP sends in flight per async client. httpx 0.28's connection pool does work
#: quadratic in the number of queued requests: with 1000 queued it starves the event
#: loop until connects time out. The cap sits in the transport, *after* the auth step,
#: so all coroutines still ask for a token at once.
ASYNC_SEND_CAP = 100


def _capped_transport(module: Any) -> Any:
    """A transport of ``module`` (httpx or httpx2) that caps concurrent sends."""
    import asyncio

    class CappedTransport(module.AsyncBaseTransport):  # type: ignore[misc]
        def __init__(self) -> None:
            self.inner = module.AsyncHTTPTransport(
                limits=module.Limits(max_connections=ASYNC_SEND_CAP)
            )
            self.gate: asyncio.Semaphore | None = None

        async def handle_async_request(self, request: Any) -> Any:
            if self.gate is None:
                self.gate = asyncio.Semaphore(ASYNC_SEND_CAP)
            async with self.gate:
                response = await self.inner.handle_async_request(request)
                await response.aread()
                return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    return CappedTransport()


def _reset_global_caches() -> None:
    """requests-auth and httpx-auth keep tokens in one process-wide cache."""
    import httpx_auth
    import requests_auth

    requests_auth.OAuth2.token_cache.clear()
    httpx_auth.OAuth2.token_cache.clear()


# -- requests ----------------------------------------------------------------------------


def _requests_handle(auth: Any, api_url: str, observe: bool) -> Handle:
    session = _requests_session()
    session.auth = TimedRequestsAuth(auth) if observe else auth

    def call() -> int:
        return session.get(api_url).status_code

    return Handle(
        call=call,
        close=session.close,
    )


def floor_requests(token_url: str, api_url: str, observe: bool) -> Handle:
    return _requests_handle(FloorRequestsAuth(FLOOR_HEADER), api_url, observe)


def ours_requests(token_url: str, api_url: str, observe: bool) -> Handle:
    from delivery_auth import ClientCredentialsAuth

    auth = ClientCredentialsAuth(token_url, CLIENT_ID, CLIENT_SECRET)
    handle = _requests_handle(auth, api_url, observe)
    inner_close = handle.close

    def close() -> None:
        inner_close()
        auth.close()

    handle.close = close
    return handle


def requests_auth_requests(token_url: str, api_url: str, observe: bool) -> Handle:
    import requests_auth

    _reset_global_caches()
    auth = requests_auth.OAuth2ClientCredentials(
        token_url, CLIENT_ID, CLIENT_SECRET, early_expiry=EARLY_EXPIRY
    )
    return _requests_handle(auth, api_url, observe)


def authlib_requests(token_url: str, api_url: str, observe: bool) -> Handle:
    from authlib.integrations.requests_client import OAuth2Session

    session = OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - not a secret
        token_endpoint=token_url,
        grant_type="client_credentials",
        leeway=EARLY_EXPIRY,
    )
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)
    session.mount("http://", adapter)
    token_auth = session.token_auth
    if observe:
        session.token_auth = TimedRequestsAuth(token_auth)
    fetch = _timed(session.fetch_token) if observe else session.fetch_token

    def call() -> int:
        # Authlib's session refuses to send without a token: the documented first fetch.
        if not session.token:
            fetch(token_url, grant_type="client_credentials")
        return session.get(api_url).status_code

    handle = Handle(call=call, close=session.close)
    handle.notes.append("first token fetched by the caller (OAuth2Session needs it)")
    return handle


# -- httpx -------------------------------------------------------------------------------


def _httpx_handle(auth: Any, api_url: str, observe: bool, owned: Any = None) -> Handle:
    client = httpx.Client(auth=TimedHttpxAuth(auth) if observe else auth, limits=_limits())

    def call() -> int:
        return client.get(api_url).status_code

    def close() -> None:
        client.close()
        if owned is not None:
            owned.close()

    return Handle(
        call=call,
        close=close,
    )


def _async_httpx_handle(auth: Any, api_url: str, observe: bool, owned: Any = None) -> Handle:
    client = httpx.AsyncClient(
        auth=TimedHttpxAuth(auth) if observe else auth, transport=_capped_transport(httpx)
    )

    async def acall() -> int:
        return (await client.get(api_url)).status_code

    async def aclose() -> None:
        await client.aclose()
        if owned is not None:
            owned.close()

    return Handle(acall=acall, aclose=aclose)


def floor_httpx(token_url: str, api_url: str, observe: bool) -> Handle:
    return _httpx_handle(FloorHttpxAuth(FLOOR_HEADER), api_url, observe)


def direct_httpx(token_url: str, api_url: str, observe: bool) -> Handle:
    return _httpx_handle(DirectHttpxAuth(FLOOR_HEADER), api_url, observe)


def floor_httpx_async(token_url: str, api_url: str, observe: bool) -> Handle:
    return _async_httpx_handle(FloorHttpxAuth(FLOOR_HEADER), api_url, observe)


def ours_httpx(token_url: str, api_url: str, observe: bool) -> Handle:
    from delivery_auth import ClientCredentialsAuth

    auth = ClientCredentialsAuth(token_url, CLIENT_ID, CLIENT_SECRET)
    return _httpx_handle(auth, api_url, observe, owned=auth)


def ours_httpx_async(token_url: str, api_url: str, observe: bool) -> Handle:
    from delivery_auth import ClientCredentialsAuth

    auth = ClientCredentialsAuth(token_url, CLIENT_ID, CLIENT_SECRET)
    return _async_httpx_handle(auth, api_url, observe, owned=auth)


def _httpx_auth_object(token_url: str) -> Any:
    import httpx_auth

    _reset_global_caches()
    return httpx_auth.OAuth2ClientCredentials(
        token_url, CLIENT_ID, CLIENT_SECRET, early_expiry=EARLY_EXPIRY
    )


def httpx_auth_httpx(token_url: str, api_url: str, observe: bool) -> Handle:
    return _httpx_handle(_httpx_auth_object(token_url), api_url, observe)


def httpx_auth_httpx_async(token_url: str, api_url: str, observe: bool) -> Handle:
    handle = _async_httpx_handle(_httpx_auth_object(token_url), api_url, observe)
    handle.notes.append("token request runs synchronously on the event loop")
    return handle


# -- httpx2 (Authlib's httpx integration uses httpx2 when it is installed) ---------------


def floor_httpx2(token_url: str, api_url: str, observe: bool) -> Handle:
    import httpx2

    auth = _floor_httpx2_auth(FLOOR_HEADER)
    client = httpx2.Client(auth=auth, limits=httpx2.Limits(max_connections=128))

    def call() -> int:
        return int(client.get(api_url).status_code)

    return Handle(
        call=call,
        close=client.close,
    )


def floor_httpx2_async(token_url: str, api_url: str, observe: bool) -> Handle:
    import httpx2

    client = httpx2.AsyncClient(
        auth=_floor_httpx2_auth(FLOOR_HEADER), transport=_capped_transport(httpx2)
    )

    async def acall() -> int:
        return int((await client.get(api_url)).status_code)

    return Handle(acall=acall, aclose=client.aclose)


def _authlib_kwargs(token_url: str) -> dict[str, Any]:
    import httpx2

    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_endpoint_auth_method": "client_secret_post",
        "token_endpoint": token_url,
        "grant_type": "client_credentials",
        "leeway": EARLY_EXPIRY,
        "limits": httpx2.Limits(max_connections=128),
    }


def authlib_httpx2(token_url: str, api_url: str, observe: bool) -> Handle:
    from authlib.integrations.httpx_client import OAuth2Client

    client = OAuth2Client(**_authlib_kwargs(token_url))
    ensure = client.ensure_active_token
    if observe:
        client.ensure_active_token = _timed(ensure)
    fetch = _timed(client.fetch_token) if observe else client.fetch_token

    def call() -> int:
        if not client.token:
            fetch(token_url, grant_type="client_credentials")
        return int(client.get(api_url).status_code)

    handle = Handle(call=call, close=client.close)
    handle.notes.append("first token fetched by the caller (OAuth2Client needs it)")
    return handle


def authlib_httpx2_async(token_url: str, api_url: str, observe: bool) -> Handle:
    import httpx2
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    kwargs = _authlib_kwargs(token_url)
    kwargs["transport"] = _capped_transport(httpx2)
    del kwargs["limits"]
    client = AsyncOAuth2Client(**kwargs)
    if observe:
        client.ensure_active_token = _atimed(client.ensure_active_token)
    fetch = _atimed(client.fetch_token) if observe else client.fetch_token

    async def acall() -> int:
        if not client.token:
            await fetch(token_url, grant_type="client_credentials")
        return int((await client.get(api_url)).status_code)

    handle = Handle(acall=acall, aclose=client.aclose)
    handle.notes.append("first token fetched by the caller (AsyncOAuth2Client needs it)")
    return handle


CONTENDERS: list[Contender] = [
    Contender("floor", "requests", floor_requests, floor=True),
    Contender("delivery_auth", "requests", ours_requests),
    Contender("authlib", "requests", authlib_requests),
    Contender("requests-auth", "requests", requests_auth_requests),
    Contender("floor", "httpx", floor_httpx, floor=True),
    Contender("direct header auth", "httpx", direct_httpx, extra=True),
    Contender("delivery_auth", "httpx", ours_httpx),
    Contender("httpx-auth", "httpx", httpx_auth_httpx),
    Contender("floor", "httpx2", floor_httpx2, floor=True),
    Contender("authlib", "httpx2", authlib_httpx2),
    Contender("floor", "httpx-async", floor_httpx_async, floor=True),
    Contender("delivery_auth", "httpx-async", ours_httpx_async),
    Contender("httpx-auth", "httpx-async", httpx_auth_httpx_async),
    Contender("floor", "httpx2-async", floor_httpx2_async, floor=True),
    Contender("authlib", "httpx2-async", authlib_httpx2_async),
]


def by_client(client: str, *, extras: bool = False) -> list[Contender]:
    return [c for c in CONTENDERS if c.client == client and (extras or not c.extra)]
