"""aiohttp (3.12 and later) client middleware: :class:`AuthMiddleware`.

The middleware drives the same sans-I/O flow as the httpx adapters
(:mod:`delivery_auth.flow`, carried out by :class:`~delivery_auth._drive.Driver`): the
token comes from the auth object's engine, so one object serves requests, httpx and
aiohttp at once with one token; a rejected token is replaced and the request resent
once, with the same body bytes or not at all.

aiohttp is an optional dependency (``pip install 'delivery-auth[aiohttp]'``); importing
:mod:`delivery_auth` never imports it, only importing this module does.

Example::

    from delivery_auth.aiohttp import AuthMiddleware

    auth = ClientCredentialsAuth("https://auth.example.com/oauth2/token", "id", "secret")
    async with aiohttp.ClientSession(middlewares=(AuthMiddleware(auth),)) as session:
        async with session.get("https://api.example.com/v1/orders") as response:
            orders = await response.json()
"""

from __future__ import annotations

import contextvars
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._decorate import Decoration, OutgoingRequest, same_credential, unsignable
from .auth import DeliveryAuth
from .flow import Attempt, FailureDetector, Step, body_limit, declared_length, judge_response
from .headers import add_missing
from .hosts import origin_of
from .replay import UNREPLAYABLE, merge_cookie_headers

if TYPE_CHECKING:
    from aiohttp import ClientRequest, ClientResponse
    from aiohttp.client_middlewares import ClientHandlerType

__all__ = ["AuthMiddleware"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class _Redirected:
    """A redirect this middleware passed on: where it points, and the origin the chain of
    requests was authorised for (only that origin gets the token on the next hop)."""

    location: str
    origin: str


class AuthMiddleware:
    """Authorises the requests of an :class:`aiohttp.ClientSession` with a
    :class:`~delivery_auth.DeliveryAuth` object (any provider preset).

    It gives aiohttp what the httpx adapter gives httpx: the token of the auth object's
    engine (single flight across coroutines and event loops, never blocking the loop),
    host binding and the https rule, and one resend after the provider's failure signal
    (HTTP 401, or Delivery Tracker's ``UNAUTHENTICATED`` at any status) with a fresh
    token, never with a body that cannot be sent again. The rejected response is
    released before the resend. A redirect to another origin carries no token.

    Example::

        middleware = AuthMiddleware(DHLeCommerceAuth.from_env())
        async with aiohttp.ClientSession(middlewares=(middleware,)) as session:
            ...

    Args:
        auth: the auth object; it may serve other clients at the same time.
    """

    __slots__ = ("_auth", "_redirected")

    def __init__(self, auth: DeliveryAuth) -> None:
        if not isinstance(auth, DeliveryAuth):
            raise TypeError(
                "AuthMiddleware takes a delivery_auth auth object (ClientCredentialsAuth, "
                f"a provider preset, ...), got {type(auth).__name__}"
            )
        self._auth = auth
        # aiohttp calls a session's middlewares once per request it sends, redirects
        # included, in the caller's task: the redirect a response announces is recorded
        # here so that its next hop is recognised.
        self._redirected: contextvars.ContextVar[_Redirected | None] = contextvars.ContextVar(
            f"delivery_auth_redirect_{id(self):x}", default=None
        )

    def __repr__(self) -> str:
        return f"AuthMiddleware({self._auth!r})"

    @property
    def auth(self) -> DeliveryAuth:
        """The auth object whose tokens this middleware sends."""
        return self._auth

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        url = str(request.url)
        redirected = self._redirected.get()
        if redirected is not None:
            self._redirected.set(None)
            if redirected.location == url and _origin(url) != redirected.origin:
                # A redirect to another origin: aiohttp dropped our header, and the
                # token stays with the origin it was authorised for.
                response = await handler(request)
                self._note_redirect(response, redirected.origin)
                return response
        auth = self._auth
        origin = auth._hosts.origin_for_url(url)
        decorator = auth._decorator
        outgoing: OutgoingRequest | None = None
        decoration: Decoration | None = None
        if decorator is not None:  # a signature, a second token: made from the request
            outgoing = await _outgoing(request, decorator.needs_body)
            lease = await auth._engine.acurrent()
            decoration = await decorator.adecorate(lease, outgoing, None)
            request.headers.update(decoration.headers)
            header, lease = decoration.credential_header, decoration.lease
        else:
            header, lease = auth._header, await auth._engine.acurrent()
            request.headers[header] = lease.header
            if auth._default_headers:
                add_missing(request.headers, auth._default_headers)
        response = await handler(request)
        attempt = Attempt(origin, lease)
        driver = auth._driver
        flow = driver.flow
        content_type = response.headers.get("Content-Type", "")
        step = judge_response(
            attempt,
            flow.detector,
            response.status,
            content_type,
            str(response.url),
            request.headers.get(header),
        )
        if step is Step.DONE:
            self._note_redirect(response, origin)
            return response
        plan = flow.plan(attempt, step, response.status, content_type)
        # The body went out with the first send: aiohttp can send it again unless it was
        # a stream it consumed (an async generator, a file it could not seek).
        rewind = None if _replayable(request) else UNREPLAYABLE

        async def read_body(detector: FailureDetector) -> bytes | None:
            return await _peek(response, detector)

        fresh = await driver.arun(plan, read_body, rewind)
        if fresh is None:
            self._note_redirect(response, origin)
            return response
        if decorator is not None and outgoing is not None and decoration is not None:
            again = await decorator.adecorate(fresh, outgoing, decoration)
            if again.lease.header == decoration.lease.header:
                same_credential(response.status)
                self._note_redirect(response, origin)
                return response
            request.headers.update(again.headers)
        else:
            request.headers[header] = fresh.header
        cookies = "; ".join(f"{m.key}={m.coded_value}" for m in response.cookies.values())
        response.release()
        merged = merge_cookie_headers(request.headers.get("Cookie"), cookies or None)
        if merged is not None:
            request.headers["Cookie"] = merged
        resent = await handler(request)
        self._note_redirect(resent, origin)
        return resent

    def _note_redirect(self, response: ClientResponse, origin: str) -> None:
        if response.status not in _REDIRECTS:
            return
        location = response.headers.get("Location") or response.headers.get("URI")
        if location is None:
            return
        try:
            target = str(response.url.join(type(response.url)(location)))
        except ValueError:
            return
        self._redirected.set(_Redirected(target, origin))


def _origin(url: str) -> str | None:
    try:
        return origin_of(url)
    except ValueError:
        return None


async def _outgoing(request: ClientRequest, needs_body: bool) -> OutgoingRequest:
    """The request as a decorator sees it; its body bytes when the decorator signs them
    (a body aiohttp streams, such as an async generator or a file, cannot be signed)."""
    from aiohttp.payload import BytesPayload

    body = request.body
    data: bytes | None = None
    if needs_body:
        if not body:
            data = b""
        elif isinstance(body, BytesPayload):
            data = await body.as_bytes()
        else:
            raise unsignable(f"a {type(body).__name__} (a stream)")
    url = request.url
    return OutgoingRequest(request.method, str(url), url.raw_path_qs, data)


def _replayable(request: ClientRequest) -> bool:
    body = request.body
    return not body or not getattr(body, "consumed", False)


async def _peek(response: ClientResponse, detector: FailureDetector) -> bytes | None:
    """At most ``body_limit(detector)`` bytes of the (decoded) body, or ``None`` when it is
    longer. What was read is put back into the response's stream, so the caller still
    reads every byte (``read()``, ``json()``, ``content.iter_chunked()``)."""
    limit = body_limit(detector)
    length = declared_length(response.headers.get("Content-Length"))
    if length is not None and length > limit and "Content-Encoding" not in response.headers:
        return None
    stream = response.content
    head: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await stream.readany()
        if not chunk:
            break
        head.append(chunk)
        size += len(chunk)
    data = b"".join(head)
    if data:
        with warnings.catch_warnings():
            # Deprecated, but the one way to hand bytes back to aiohttp's stream.
            warnings.simplefilter("ignore", DeprecationWarning)
            stream.unread_data(data)
    return data if size <= limit else None
