"""The auth objects users pass as ``auth=``: thin adapters for requests, httpx and httpx2.

One :class:`DeliveryAuth` object is at once a ``requests.auth.AuthBase``, an
``httpx.Auth`` and (when httpx2 is installed) an ``httpx2.Auth``. Every decision is
made by :mod:`delivery_auth.flow`, whose plans the drivers of :mod:`delivery_auth._drive`
carry out, and every token comes from the engine; this module only moves headers,
bodies and responses, and sends.

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
from collections.abc import AsyncGenerator, Generator, Mapping, MutableMapping, Sequence
from time import monotonic
from types import TracebackType
from typing import Any

import httpx
import requests
from requests.auth import AuthBase

from . import _decorate, _redirects
from ._drive import Driver
from ._peek import aread_httpx_body, read_httpx_body, read_requests_body
from .engine import Lease, TokenEngine, await_future
from .flow import Attempt, FailureDetector, Flow, Plan, StatusFailureDetector, Step, judge_response
from .headers import check_default_headers, check_header_name
from .hosts import HostPolicy
from .replay import (
    ResentResponse,
    Rewind,
    ahttpx_rewind,
    httpx_carry_cookies,
    httpx_rewind,
    requests_carry_cookies,
    seek_point,
)
from .token import Token

try:  # httpx2 clients accept only httpx2.Auth objects: be one when it is installed.
    from httpx2 import Auth as _Httpx2Auth
except ImportError:  # pragma: no cover - depends on the environment

    class _Httpx2Auth:  # type: ignore[no-redef]
        """Stands in for ``httpx2.Auth`` when httpx2 is not installed."""


__all__ = ["DeliveryAuth"]

logger = logging.getLogger("delivery_auth")


class DeliveryAuth(AuthBase, httpx.Auth, _Httpx2Auth):
    """Attach an engine's token to requests and retry once when the API rejects it.

    Subclasses build the engine (see :class:`ClientCredentialsAuth` and the providers).
    Use as ``auth=`` with requests, ``httpx.Client``/``AsyncClient`` (asyncio or trio)
    and httpx2 clients; one object may serve many threads, clients and event loops.

    ``header``: the request header the credential goes in (``Authorization``; an API
    such as ShipEngine's wants ``API-Key``). ``default_headers``: headers every request
    this object authorises gets unless it sets them itself (MyDHL's ``x-version``).
    """

    requires_request_body = False
    requires_response_body = False
    #: Computes each request's headers from the request itself (a signature, a second
    #: token on some requests); ``None``, the default, keeps the fast paths below. Set by
    #: subclasses that need it (see :mod:`delivery_auth._decorate`).
    _decorator: _decorate.RequestDecorator | None = None

    def __init__(
        self,
        engine: TokenEngine,
        *,
        allowed_hosts: Sequence[str] | str | None = None,
        failure_detector: FailureDetector | None = None,
        header: str = "Authorization",
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._engine = engine
        self._hosts = HostPolicy(allowed_hosts)
        self._header = check_header_name(header, "header")
        self._default_headers = check_default_headers(default_headers)
        # httpx drops only Authorization on a cross-origin redirect: the others need us
        self._confined = _redirects.header_names((self._header,))
        detector = failure_detector or StatusFailureDetector()
        self._driver = Driver(engine, Flow(detector, self._cannot_refresh, self._header))
        # ("scheme://netloc/", lease, hook) of the last body-less requests call: __call__
        self._requests_fast: tuple[str, Lease, _RequestsRetry] | None = None

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
        if self._decorator is not None:
            return _decorate.prepare_requests(self._decorator, self._hosts, self._driver, r)
        url = r.url or ""
        body: object = r.body  # typed bytes | str | None, but files and generators come too
        # The cached path: the same origin as the last body-less request, whose lease is
        # still the engine's current one and not yet due for refresh. Then the verdict of
        # the host check, the header and the (stateless) hook are all known already.
        fast = self._requests_fast
        if fast is not None and (body is None or isinstance(body, (bytes, str))):
            # "scheme://netloc/": requests always gives a URL a path, and what follows the
            # netloc cannot change the host, so this prefix decides the verdict.
            prefix_slash, lease, hook = fast
            if (
                lease is self._engine.lease
                and url.startswith(prefix_slash)
                and monotonic() < lease.refresh_at
            ):
                r.headers[self._header] = lease.header
                if self._default_headers:
                    _add_missing(r.headers, self._default_headers)
                try:
                    r.hooks["response"].append(hook)
                except KeyError:  # a hand-built PreparedRequest without the list
                    r.hooks["response"] = [hook]
                return r
        prefix, origin = self._hosts.admit(url)
        lease = self._engine.current()
        r.headers[self._header] = lease.header
        if self._default_headers:
            _add_missing(r.headers, self._default_headers)
        if body is None or isinstance(body, (bytes, str)):
            # Nothing to rewind: the hook is stateless, so one serves every request that
            # carries this lease to this origin.
            hook = _RequestsRetry(self._driver, Attempt(origin, lease), None)
            self._requests_fast = (prefix + "/", lease, hook)
        else:
            hook = _RequestsRetry(self._driver, Attempt(origin, lease), seek_point(body))
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
        origin = self._hosts.origin_for_url(request.url)
        lease = self._engine.current()
        request.headers[self._header] = lease.header
        if self._default_headers:
            _add_missing(request.headers, self._default_headers)
        if self._confined:
            _redirects.confine(request, self._confined)
        rewind = httpx_rewind(request)
        response = yield request
        plan = _httpx_plan(self._driver.flow, Attempt(origin, lease), response)
        if plan is None:
            return
        fresh = self._driver.run(plan, functools.partial(read_httpx_body, response), rewind)
        if fresh is not None:
            _httpx_prepare_resend(request, response, fresh, self._header)
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
        origin = self._hosts.origin_for_url(request.url)
        lease = await self._engine.acurrent()
        request.headers[self._header] = lease.header
        if self._default_headers:
            _add_missing(request.headers, self._default_headers)
        if self._confined:
            _redirects.aconfine(request, self._confined)
        rewind = await ahttpx_rewind(request)
        response = yield request
        plan = _httpx_plan(self._driver.flow, Attempt(origin, lease), response)
        if plan is None:
            return
        fresh = await self._driver.arun(plan, functools.partial(aread_httpx_body, response), rewind)
        if fresh is not None:
            _httpx_prepare_resend(request, response, fresh, self._header)
            yield request


def _httpx_plan(flow: Flow, attempt: Attempt, response: Any) -> Plan | None:
    """The flow's plan for an httpx or httpx2 response, or ``None``: done with it."""
    sent = response.request
    status_code, content_type = response.status_code, response.headers.get("content-type", "")
    header = flow.header
    # Another header may have been taken off a redirect on the way (see _redirects).
    carried = (
        sent.headers.get(header)
        if header == "Authorization"
        else _redirects.sent_header(sent, header)
    )
    step = judge_response(
        attempt,
        flow.detector,
        status_code,
        content_type,
        str(sent.url),
        carried,
    )
    return None if step is Step.DONE else flow.plan(attempt, step, status_code, content_type)


def _httpx_prepare_resend(request: Any, rejected: Any, fresh: Lease, header: str) -> None:
    request.headers[header] = fresh.header
    httpx_carry_cookies(request, rejected)


def _add_missing(headers: MutableMapping[str, str], defaults: tuple[tuple[str, str], ...]) -> None:
    """Set each default header the request does not set itself (names compare
    case-insensitively in both clients' header maps)."""
    for name, value in defaults:
        if name not in headers:
            headers[name] = value


class _RequestsRetry:
    """The response hook of one authorised requests call (``HTTPDigestAuth``'s model).

    requests copies hooks onto redirected requests, so this also sees responses after
    redirects. The flow judges only responses of the authorised origin that carried
    *this* attempt's token, and a resend carries a different token (the flow never
    resends the same one), so it retries at most once and keeps no state: one hook
    serves every body-less request with the same lease and origin.
    """

    __slots__ = ("attempt", "driver", "rewind")

    def __init__(self, driver: Driver, attempt: Attempt, rewind: Rewind) -> None:
        self.driver = driver
        self.attempt = attempt
        self.rewind = rewind

    def __call__(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        driver = self.driver
        flow = driver.flow
        header = flow.header
        if header != "Authorization" and r.is_redirect:
            # requests drops only Authorization on a redirect to another origin: drop
            # a credential sent in another header before it copies the request.
            _redirects.drop_before_redirect(r, r.request, (header,), self.attempt.origin)
        content_type = r.headers.get("Content-Type", "")
        step = judge_response(
            self.attempt,
            flow.detector,
            r.status_code,
            content_type,
            r.request.url or "",
            r.request.headers.get(header),
        )
        if step is Step.DONE:
            return r
        plan = flow.plan(self.attempt, step, r.status_code, content_type)
        # At most body_limit() bytes, and with stream=True only what can be read
        # without taking bytes from a user of r.raw (see _peek).
        streaming = kwargs.get("stream", True)
        fresh = driver.run(
            plan, lambda detector: read_requests_body(r, detector, streaming), self.rewind
        )
        if fresh is None:
            return r
        # Free the connection before sending again on the same adapter.
        r.content  # noqa: B018
        r.close()
        prep = r.request.copy()
        requests_carry_cookies(prep, r)
        prep.headers[header] = fresh.header
        # requests follows a redirect of the resent request by copying the request it
        # first sent: give that one the fresh token too, or the redirect would carry the
        # dead token (and this hook, judging it, would resend a second time).
        r.request.headers[header] = fresh.header
        connection = r.connection
        retried = ResentResponse.after(connection.send(prep, **kwargs), r)
        if header != "Authorization" and retried.is_redirect:
            # This hook does not see the resend's responses, and requests follows its
            # redirect by copying r.request: drop the credential there first.
            _redirects.drop_before_redirect(retried, r.request, (header,), self.attempt.origin)
        retried.request = prep
        return retried
