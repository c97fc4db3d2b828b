"""The auth objects users pass as ``auth=``: thin adapters for requests, httpx and httpx2.

One :class:`DeliveryAuth` object is at once a ``requests.auth.AuthBase``, an
``httpx.Auth`` and (when httpx2 is installed) an ``httpx2.Auth``. Every decision is
made by :mod:`delivery_auth.flow`, whose plans the drivers of :mod:`delivery_auth._drive`
carry out, and every token comes from the engine; this module only moves headers,
bodies and responses, and sends (requests' response hook is in
:mod:`delivery_auth._requests_hook`).

A call to an origin that an earlier call with the engine's current lease went to reuses
what that call worked out (host verdict, :class:`~delivery_auth.flow.Attempt`, requests
hook), kept per origin in bounded LRU caches; see ``DeliveryAuth._reuse_rounds``.

Example::

    auth = ClientCredentialsAuth("https://auth.example.com/oauth2/token", "id", "secret")
    requests.get("https://api.example.com/v1/orders", auth=auth)
    with httpx.Client(auth=auth) as client:
        client.get("https://api.example.com/v1/orders")
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import threading
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from time import monotonic
from types import TracebackType
from typing import Any, ClassVar

import httpx
import requests
from requests.auth import AuthBase

from . import _decorate, _httpx_routes, _redirects
from ._drive import Driver
from ._peek import aread_httpx_body, read_httpx_body
from ._requests_hook import RequestsRetry
from .engine import Lease, TokenEngine, await_future
from .events import EventHook, Events
from .flow import (
    Attempt,
    FailureDetector,
    Flow,
    StatusFailureDetector,
)
from .headers import add_missing, check_default_headers, check_header_name
from .hosts import ORIGIN_CACHE_LIMIT, HostPolicy, RecentlyUsed
from .replay import (
    SeekPoints,
    httpx_rewind,
    seek_point,
)
from .token import Token

try:  # httpx2 clients accept only httpx2.Auth objects: be one when it is installed.
    from httpx2 import Auth as _Httpx2Auth
except ImportError:  # pragma: no cover - depends on the environment

    class _Httpx2Auth:  # type: ignore[no-redef]
        """Stands in for ``httpx2.Auth`` when httpx2 is not installed."""


__all__ = ["DeliveryAuth"]

#: httpx's parsed (scheme, userinfo, host, port) of an origin, and the attempt to send there
_Route = tuple[tuple[object, ...], Attempt]

logger = logging.getLogger("delivery_auth")


class DeliveryAuth(AuthBase, httpx.Auth, _Httpx2Auth):
    """Attach an engine's token to requests and retry once when the API rejects it.

    Subclasses build the engine (see :class:`ClientCredentialsAuth` and the providers).
    Use as ``auth=`` with requests, ``httpx.Client``/``AsyncClient`` (asyncio or trio)
    and httpx2 clients; one object may serve many threads, clients and event loops.

    ``header``: the request header the credential goes in (``Authorization``; an API
    such as ShipEngine's wants ``API-Key``). ``default_headers``: headers every request
    this object authorises gets unless it sets them itself (MyDHL's ``x-version``).
    ``on_event``: a callable that gets this object's events (:mod:`delivery_auth.events`:
    tokens fetched, refreshed, rejected; failed attempts; shared-cache outages).
    """

    requires_request_body = False
    requires_response_body = False
    #: Computes each request's headers from the request itself (a signature, a second
    #: token on some requests); ``None``, the default, keeps the cached paths below. Set
    #: by subclasses that need it (see :mod:`delivery_auth._decorate`).
    _decorator: _decorate.RequestDecorator | None = None

    #: Whether a call may reuse what an earlier call to the same origin worked out while
    #: the engine's lease is unchanged (the host verdict, the :class:`Attempt`, the
    #: requests hook), skipping the engine and the host check. A subclass that must see
    #: every request on its way out (to sign it, say) sets this to ``False``; then every
    #: call takes the full path (:meth:`_requests_round`, :meth:`_httpx_attempt`).
    _reuse_rounds: ClassVar[bool] = True

    def __init__(
        self,
        engine: TokenEngine,
        *,
        allowed_hosts: Sequence[str] | str | None = None,
        failure_detector: FailureDetector | None = None,
        header: str = "Authorization",
        default_headers: Mapping[str, str] | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self._engine = engine
        self._hosts = HostPolicy(allowed_hosts)
        self._header = check_header_name(header, "header")
        self._default_headers = check_default_headers(default_headers)
        # httpx drops only Authorization on a cross-origin redirect: the others need us
        self._confined = _redirects.header_names((self._header,))
        detector = failure_detector or StatusFailureDetector()
        #: what this object tells ``on_event`` and the process's listeners
        self._events = Events(type(self), on_event)
        self._flow = Flow(detector, self._cannot_refresh, self._header, self._events)
        engine.attach(self._events)
        self._driver = Driver(engine, self._flow)
        # The cached paths (see _reuse_rounds): each entry is valid while its lease is
        # the engine's current one (identity) and not due for refresh.
        # requests: "scheme://netloc/" as written -> the hook of body-less calls there
        self._requests_hooks: RecentlyUsed[str, RequestsRetry] = RecentlyUsed(ORIGIN_CACHE_LIMIT)
        # the last one used, checked first (never kept with default headers)
        self._requests_last: RequestsRetry | None = None
        # httpx/httpx2: the attempt per origin (see _httpx_routes)
        self._httpx = _httpx_routes.HttpxRoutes(engine, self._reuse_rounds)

    # -- identity ---------------------------------------------------------------------

    def _identity(self) -> tuple[object, ...]:
        return (id(self),)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, DeliveryAuth)
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    @property
    def allowed_hosts(self) -> tuple[str, ...] | None:
        """The host patterns credentials may be sent to (``None``: any https host)."""
        return self._hosts.patterns

    @property
    def header(self) -> str:
        """The request header the credential goes in (``Authorization`` by default)."""
        return self._header

    @property
    def default_headers(self) -> dict[str, str]:
        """Headers added to every authorised request that does not set them itself."""
        return dict(self._default_headers)

    @property
    def token_requests(self) -> int:
        """How many token requests this object has made (a counter for tests and demos)."""
        return self._engine.fetch_count

    def get_token(self) -> Token:
        """The current token, fetched or refreshed as needed (blocking).

        Example::

            token = auth.get_token()
            token.lifetime      # e.g. 3600.0
        """
        return self._engine.current().token

    async def aget_token(self) -> Token:
        """:meth:`get_token` for asyncio and trio."""
        return (await self._engine.acurrent()).token

    # -- life cycle -------------------------------------------------------------------

    def close(self) -> None:
        """Release the token session and stop background refreshes."""
        self._engine.close()
        close_decorator = getattr(self._decorator, "close", None)
        if close_decorator is not None:  # a dependent token's own engine
            close_decorator()

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                self.close()
                done.set_result(None)
            except BaseException as exc:  # pragma: no cover - close() does not raise
                done.set_exception(exc)

        threading.Thread(target=run, name="delivery-auth-close", daemon=True).start()
        await await_future(done)

    def __enter__(self) -> DeliveryAuth:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> DeliveryAuth:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- hooks for providers ----------------------------------------------------------

    def _cannot_refresh(self, status_code: int) -> None:
        """The API rejected a token and there is no way to get another one."""
        logger.warning(
            "The API rejected the credentials (HTTP %s) and %s cannot obtain new ones; "
            "returning the response as it is.",
            status_code,
            type(self).__name__,
        )

    # -- requests ---------------------------------------------------------------------

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        # The cached paths: a call with no body to rewind, to an origin that a call with
        # the engine's current lease went to before, while that lease is not due for
        # refresh. Its hook is stateless, so the host verdict, the header and the hook
        # are all known already. The hook of the last call is tried first, then the one
        # remembered for the URL's origin. Objects with default headers keep no last
        # one, so the first branch need not check for them. A request decorator comes
        # first: DependentToken.attach may add one to an object already used.
        if self._decorator is not None:
            return _decorate.prepare_requests(self._decorator, self._hosts, self._driver, r)
        hook = self._requests_last
        url = r.url
        if hook is not None and url is not None and url.startswith(hook.prefix):
            if (
                hook.lease is self._engine.lease
                and monotonic() < hook.refresh_at
                and (r.body is None or isinstance(r.body, (bytes, str)))
            ):
                r.headers[self._header] = hook.value
                try:
                    r.hooks["response"].append(hook)
                except KeyError:  # a hand-built PreparedRequest without the list
                    r.hooks["response"] = [hook]
                return r
        elif url is not None:
            # Keys are "scheme://netloc/" prefixes as written (see _requests_round), and
            # any URL that starts with one has its origin and verdict. So any slice of the
            # URL that is found is right; this one (up to the first "/" past "https://")
            # is cheap, and "" (no such "/") is never found.
            key = url[: url.find("/", 8) + 1]
            entries = self._requests_hooks.entries  # RecentlyUsed.get, inlined
            hook = entries.get(key)
            if (
                hook is not None
                and hook.lease is self._engine.lease
                and monotonic() < hook.refresh_at
                and (r.body is None or isinstance(r.body, (bytes, str)))
            ):
                try:  # noqa: SIM105 - contextlib.suppress costs more than this lookup
                    entries.move_to_end(key)
                except KeyError:  # pragma: no cover - evicted by another thread meanwhile
                    pass
                r.headers[self._header] = hook.value
                if self._default_headers:
                    add_missing(r.headers, self._default_headers)
                else:
                    self._requests_last = hook
                try:
                    r.hooks["response"].append(hook)
                except KeyError:  # a hand-built PreparedRequest without the list
                    r.hooks["response"] = [hook]
                return r
        return self._requests_round(r, url or "", r.body)

    def _requests_round(
        self, r: requests.PreparedRequest, url: str, body: object
    ) -> requests.PreparedRequest:
        """The full path of a requests call: host check, lease, response hook."""
        prefix, origin = self._hosts.admit(url)
        lease = self._engine.current()
        r.headers[self._header] = lease.header
        if self._default_headers:
            add_missing(r.headers, self._default_headers)
        key = prefix + "/"
        if body is None or isinstance(body, (bytes, str)):
            # Nothing to rewind: the hook is stateless, so one serves every request that
            # carries this lease to this origin.
            hook = self._requests_hooks.get(key) if self._reuse_rounds else None
            if hook is None or hook.lease is not lease:
                hook = RequestsRetry(self._driver, Attempt(origin, lease), None, key)
                if self._reuse_rounds:
                    self._requests_hooks.put(key, hook)
            if self._reuse_rounds and not self._default_headers:
                self._requests_last = hook  # see __call__
        else:
            hook = RequestsRetry(self._driver, Attempt(origin, lease), seek_point(body), key)
        # What register_hook does for a callable, without its per-call type checks (and
        # without failing on a hand-built PreparedRequest that lacks the list).
        r.hooks.setdefault("response", []).append(hook)
        return r

    # -- httpx and httpx2 -------------------------------------------------------------

    def auth_flow(self, request: Any) -> Generator[Any, Any, None]:  # pragma: no cover
        raise RuntimeError("DeliveryAuth drives httpx through sync_auth_flow/async_auth_flow")

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        if self._decorator is not None:
            sent = _decorate.prepare_httpx(self._decorator, self._hosts, self._driver, request)
            if sent.resend((yield request)):
                yield request
            return
        url = request.url  # immutable: a response whose request has this one is from here
        attempt = self._httpx.cached(url)
        if attempt is None:
            origin = self._hosts.origin_for_url(url)  # refused hosts never cost a token
            attempt = self._httpx_attempt(url, origin, self._engine.current())
        request.headers[self._header] = attempt.lease.header
        if self._default_headers:
            add_missing(request.headers, self._default_headers)
        if self._confined:
            _redirects.confine(request, self._confined)
        rewind = httpx_rewind(request)
        response = yield request
        statuses = self._flow.failure_statuses
        if statuses is not None and response.status_code not in statuses:
            return  # the full judgement would say done too, whosever response this is
        plan = _httpx_routes.plan(self._flow, attempt, url, response)
        if plan is None:
            return
        fresh = self._driver.run(plan, functools.partial(read_httpx_body, response), rewind)
        if fresh is not None:
            _httpx_routes.prepare_resend(request, response, fresh, self._header)
            yield request

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        if self._decorator is not None:
            decorator = self._decorator
            sent = await _decorate.prepare_httpx_async(
                decorator, self._hosts, self._driver, request
            )
            if await sent.aresend((yield request)):
                yield request
            return
        url = request.url
        attempt = self._httpx.cached(url)
        if attempt is None:
            origin = self._hosts.origin_for_url(url)
            attempt = self._httpx_attempt(url, origin, await self._engine.acurrent())
        request.headers[self._header] = attempt.lease.header
        if self._default_headers:
            add_missing(request.headers, self._default_headers)
        if self._confined:
            _redirects.aconfine(request, self._confined)
        rewind = httpx_rewind(request, asynchronous=True)
        if isinstance(rewind, SeekPoints):  # async files report where they stand: await it
            rewind = await rewind.settle()
        response = yield request
        statuses = self._flow.failure_statuses
        if statuses is not None and response.status_code not in statuses:
            return
        plan = _httpx_routes.plan(self._flow, attempt, url, response)
        if plan is None:
            return
        fresh = await self._driver.arun(plan, functools.partial(aread_httpx_body, response), rewind)
        if fresh is not None:
            _httpx_routes.prepare_resend(request, response, fresh, self._header)
            yield request

    def _httpx_attempt(self, url: Any, origin: str, lease: Lease) -> Attempt:
        """The attempt to send to ``url`` (of ``origin``, admitted) with ``lease``."""
        return self._httpx.attempt(url, origin, lease)
