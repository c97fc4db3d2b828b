"""Per-request decoration: headers computed from each request itself, on the same flow.

Most auth objects put one ready-made header on every request (the engine's lease), and
:mod:`delivery_auth.auth` keeps its fast paths for them. Some credentials need the
request to make their headers: an HMAC signature over the method, path, timestamp and
body bytes (:mod:`delivery_auth.signing`), or a second token sent only on some requests
(:mod:`delivery_auth.dependent`). Their auth objects carry a :class:`RequestDecorator`
(``DeliveryAuth._decorator``, ``None`` for everybody else), and the adapters hand such
requests to this module.

Nothing about the retry is decided here: a decorated request goes through the same
:mod:`delivery_auth.flow` plan and :mod:`delivery_auth._drive` driver as any other. The
one difference is the resend: the plan returns the engine's fresh lease and the request
is decorated again with it (a new signature with a new timestamp, a new dependent
token), and it is resent only when the credential it carries differs from the rejected
one (the flow's rule: never resend the same credential).

Example (what an adapter does for a decorated auth object)::

    sent = prepare_httpx(decorator, hosts, driver, request)
    response = yield request
    if sent.resend(response):
        yield request
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from requests.compat import is_urllib3_1

from . import _redirects
from ._drive import Driver
from ._peek import aread_httpx_body, read_httpx_body, read_requests_body
from .engine import Lease
from .errors import DeliveryAuthError
from .flow import Attempt, Flow, Plan, Step, judge_response
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

__all__ = [
    "Decoration",
    "OutgoingRequest",
    "RequestDecorator",
    "UnsignableBodyError",
    "prepare_httpx",
    "prepare_httpx_async",
    "prepare_requests",
]

logger = logging.getLogger("delivery_auth")


class UnsignableBodyError(DeliveryAuthError, ValueError):
    """The request body is a stream (a generator, a file, an iterator): its bytes cannot be
    known before it is sent, so a credential computed over them cannot be made."""


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    """What a decorator sees of one request, as it will be sent.

    ``target`` is the request target as written on the wire: the path and, when there is
    one, ``?`` and the query, percent-encoded exactly as sent (``/v3/quotations?x=1``).
    ``body`` is the exact body bytes (``b""`` for none) when the decorator declares
    ``needs_body``, else ``None`` (the body may then be a stream that is not read).
    """

    method: str
    url: str
    target: str
    body: bytes | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class Decoration:
    """The headers one request carries, and how the flow recognises them.

    ``lease`` is what the flow judges the attempt by: its ``header`` is the value of the
    ``credential_header`` actually sent (a signature, or the bearer value itself), its
    ``token`` the engine's token that a rejection invalidates. ``memo`` is the decorator's
    own record (a timestamp, the dependent token it added), handed back to it as
    ``rejected`` when the request is decorated again for a resend.
    """

    lease: Lease
    headers: Mapping[str, str] = field(repr=False)
    credential_header: str = "Authorization"
    memo: Any = field(default=None, repr=False)


class RequestDecorator(Protocol):
    """Computes the headers of one request from the engine's lease and the request.

    ``needs_body``: the decorator reads the body bytes (a signature); the adapters then
    refuse a streamed body with :class:`UnsignableBodyError` before anything is sent.
    ``rejected`` is ``None`` on the first send; on the one resend after a rejection it is
    the rejected request's :class:`Decoration`, and ``lease`` is the engine's fresh one.
    ``adecorate`` is the same for asyncio and trio, never blocking the event loop.
    """

    needs_body: bool

    def decorate(
        self, lease: Lease, request: OutgoingRequest, rejected: Decoration | None
    ) -> Decoration: ...

    async def adecorate(
        self, lease: Lease, request: OutgoingRequest, rejected: Decoration | None
    ) -> Decoration: ...


def unsignable(kind: str) -> UnsignableBodyError:
    return UnsignableBodyError(
        f"This auth object computes its credential over the request body, and the body is "
        f"{kind} whose bytes cannot be known before it is sent (reading it would use it up). "
        "Nothing was sent. Pass the body as bytes or a string (json=, data= or content=)."
    )


def same_credential(status_code: int) -> None:
    logger.warning(
        "The API rejected the request (HTTP %s) and decorating it again produced the same "
        "credential: returning the response instead of resending it.",
        status_code,
    )


def _plan(
    flow: Flow, attempt: Attempt, status: int, content_type: str, url: str, sent: Any
) -> Plan | None:
    step = judge_response(attempt, flow.detector, status, content_type, url, sent)
    return None if step is Step.DONE else flow.plan(attempt, step, status, content_type)


# -- requests ------------------------------------------------------------------------


def _requests_outgoing(r: requests.PreparedRequest, needs_body: bool) -> OutgoingRequest:
    body: object = r.body
    payload: bytes | None = None
    if needs_body:
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            # Sign the bytes urllib3 will send (it encodes a str body as UTF-8; urllib3 1
            # as Latin-1, as requests' own Content-Length assumes) and send exactly those.
            payload = body.encode("latin-1" if is_urllib3_1 else "utf-8")
            r.body = payload
        else:
            raise unsignable(f"a {type(body).__name__}")
    return OutgoingRequest(r.method or "GET", r.url or "", r.path_url, payload)


def _apply(headers: Any, decoration: Decoration) -> None:
    for name, value in decoration.headers.items():
        headers[name] = value


def prepare_requests(
    decorator: RequestDecorator, hosts: HostPolicy, driver: Driver, r: requests.PreparedRequest
) -> requests.PreparedRequest:
    """Decorate a requests ``PreparedRequest`` and give it the response hook that resends."""
    _prefix, origin = hosts.admit(r.url or "")
    outgoing = _requests_outgoing(r, decorator.needs_body)
    rewind = None if decorator.needs_body else seek_point(r.body)
    decoration = decorator.decorate(driver.engine.current(), outgoing, None)
    _apply(r.headers, decoration)
    hook = _RequestsResend(decorator, driver, origin, decoration, rewind)
    r.hooks.setdefault("response", []).append(hook)
    return r


class _RequestsResend:
    """The response hook of one decorated requests call (see ``_requests_hook.RequestsRetry``).

    The resend is decorated from the request being resent (after a same-origin redirect
    that is the redirected one: requests does not call the auth object again for it).
    """

    __slots__ = ("decoration", "decorator", "driver", "origin", "rewind")

    def __init__(
        self,
        decorator: RequestDecorator,
        driver: Driver,
        origin: str,
        decoration: Decoration,
        rewind: Rewind,
    ) -> None:
        self.decorator = decorator
        self.driver = driver
        self.origin = origin
        self.decoration = decoration
        self.rewind = rewind

    def __call__(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        decoration = self.decoration
        if r.is_redirect:  # requests drops only Authorization when a redirect leaves
            _redirects.drop_before_redirect(r, r.request, _kept_home(decoration), self.origin)
        attempt = Attempt(self.origin, decoration.lease)
        content_type = r.headers.get("Content-Type", "")
        sent = r.request.headers.get(decoration.credential_header)
        plan = _plan(
            self.driver.flow, attempt, r.status_code, content_type, r.request.url or "", sent
        )
        if plan is None:
            return r
        streaming = kwargs.get("stream", True)
        fresh = self.driver.run(
            plan, lambda detector: read_requests_body(r, detector, streaming), self.rewind
        )
        if fresh is None:
            return r
        prep = r.request.copy()
        again = self.decorator.decorate(
            fresh, _requests_outgoing(prep, self.decorator.needs_body), decoration
        )
        if again.lease.header == decoration.lease.header:
            same_credential(r.status_code)
            return r
        r.content  # noqa: B018 - free the connection before sending again
        r.close()
        requests_carry_cookies(prep, r)
        _apply(prep.headers, again)
        # A redirect of the resent request is built from the request first sent: give it
        # the new credential too (see _requests_hook.RequestsRetry).
        _apply(r.request.headers, again)
        retried = ResentResponse.after(r.connection.send(prep, **kwargs), r)
        if retried.is_redirect:  # followed by copying r.request (see auth._RequestsRetry)
            _redirects.drop_before_redirect(retried, r.request, _kept_home(again), self.origin)
        retried.request = prep
        return retried


def _kept_home(decoration: Decoration) -> list[str]:
    """The headers of ``decoration`` that must not follow a redirect to another origin:
    all but ``Authorization``, which the clients drop themselves."""
    return [name for name in decoration.headers if name.lower() != "authorization"]


# -- httpx and httpx2 ----------------------------------------------------------------


def _httpx_body(request: Any) -> bytes | None:
    """The body if it is in memory; ``None`` when it is a stream not read yet."""
    try:
        content: bytes = request.content
    except Exception:  # httpx.RequestNotRead / httpx2.RequestNotRead
        return None
    return content


def _httpx_outgoing(request: Any, body: bytes | None) -> OutgoingRequest:
    url = request.url
    return OutgoingRequest(request.method, str(url), url.raw_path.decode("ascii"), body)


def _multipart(request: Any) -> bool:
    # httpx builds files= bodies as a MultipartStream: re-iterable (it seeks file fields
    # back to 0), so reading it, as httpx's own requires_request_body does, sends the
    # same bytes. Every other stream (content= a generator, iterator or file) is one-shot.
    return type(request.stream).__name__ == "MultipartStream"


class _HttpxSend:
    """One decorated httpx or httpx2 send: the state :meth:`resend` needs."""

    __slots__ = ("decoration", "decorator", "driver", "origin", "request", "rewind")

    def __init__(
        self,
        decorator: RequestDecorator,
        driver: Driver,
        origin: str,
        request: Any,
        decoration: Decoration,
        rewind: Rewind,
    ) -> None:
        self.decorator = decorator
        self.driver = driver
        self.origin = origin
        self.request = request
        self.decoration = decoration
        self.rewind = rewind

    def _plan(self, response: Any) -> Plan | None:
        sent = response.request
        return _plan(
            self.driver.flow,
            Attempt(self.origin, self.decoration.lease),
            response.status_code,
            response.headers.get("content-type", ""),
            str(sent.url),
            _redirects.sent_header(sent, self.decoration.credential_header),
        )

    def _body(self) -> bytes | None:
        return _httpx_body(self.request) if self.decorator.needs_body else None

    def _finish(
        self, response: Any, again: Decoration, confine: Callable[[Any, frozenset[bytes]], None]
    ) -> bool:
        if again.lease.header == self.decoration.lease.header:
            same_credential(response.status_code)
            return False
        _apply(self.request.headers, again)
        confine(self.request, _redirects.header_names(again.headers))
        httpx_carry_cookies(self.request, response)
        return True

    def resend(self, response: Any) -> bool:
        """Judge ``response``; ``True``: the request was decorated again, send it once more."""
        plan = self._plan(response)
        if plan is None:
            return False
        fresh = self.driver.run(plan, functools.partial(read_httpx_body, response), self.rewind)
        if fresh is None:
            return False
        outgoing = _httpx_outgoing(self.request, self._body())
        again = self.decorator.decorate(fresh, outgoing, self.decoration)
        return self._finish(response, again, _redirects.confine)

    async def aresend(self, response: Any) -> bool:
        """:meth:`resend` for asyncio and trio."""
        plan = self._plan(response)
        if plan is None:
            return False
        read = functools.partial(aread_httpx_body, response)
        fresh = await self.driver.arun(plan, read, self.rewind)
        if fresh is None:
            return False
        outgoing = _httpx_outgoing(self.request, self._body())
        again = await self.decorator.adecorate(fresh, outgoing, self.decoration)
        return self._finish(response, again, _redirects.aconfine)


def _httpx_start(decorator: RequestDecorator, hosts: HostPolicy, request: Any) -> tuple[str, bool]:
    """Admit the URL; ``True`` when the body must still be read (a multipart stream)."""
    origin = hosts.origin_for_url(request.url)
    if not decorator.needs_body or _httpx_body(request) is not None:
        return origin, False
    if not _multipart(request):
        raise unsignable("a stream (a generator, iterator or file passed as content=)")
    return origin, True


def prepare_httpx(
    decorator: RequestDecorator, hosts: HostPolicy, driver: Driver, request: Any
) -> _HttpxSend:
    """Decorate an httpx or httpx2 request (sync clients) before its first send."""
    origin, unread = _httpx_start(decorator, hosts, request)
    if unread:
        request.read()
    rewind = None if decorator.needs_body else httpx_rewind(request)
    body = _httpx_body(request) if decorator.needs_body else None
    decoration = decorator.decorate(driver.engine.current(), _httpx_outgoing(request, body), None)
    _apply(request.headers, decoration)
    _redirects.confine(request, _redirects.header_names(decoration.headers))
    return _HttpxSend(decorator, driver, origin, request, decoration, rewind)


async def prepare_httpx_async(
    decorator: RequestDecorator, hosts: HostPolicy, driver: Driver, request: Any
) -> _HttpxSend:
    """:func:`prepare_httpx` for ``AsyncClient`` (asyncio or trio)."""
    origin, unread = _httpx_start(decorator, hosts, request)
    if unread:
        await request.aread()
    rewind = None if decorator.needs_body else await ahttpx_rewind(request)
    body = _httpx_body(request) if decorator.needs_body else None
    lease = await driver.engine.acurrent()
    decoration = await decorator.adecorate(lease, _httpx_outgoing(request, body), None)
    _apply(request.headers, decoration)
    _redirects.aconfine(request, _redirects.header_names(decoration.headers))
    return _HttpxSend(decorator, driver, origin, request, decoration, rewind)


def with_header(lease: Lease, header: str) -> Lease:
    """``lease`` as the flow sees a request that carried ``header`` as its credential."""
    return lease if lease.header == header else dataclasses.replace(lease, header=header)
