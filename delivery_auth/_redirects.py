"""Credential headers stay at the origin they were authorised for, across redirects.

requests, httpx and httpx2 drop only ``Authorization`` when a redirect leaves the
origin. Every other header an auth object adds (ShipEngine's ``API-Key``, a signature in
``X-Signature``, USPS's payment token) would be copied onto the redirected request and
sent to the other origin. This module keeps them home; ``Authorization`` is left to the
clients (they already drop it, and it needs nothing from us).

- requests: the response hook sees each redirect before requests copies the request to
  follow it; :func:`drop_before_redirect` takes the headers off the request it will copy
  (so they stay off for every later hop, back at the origin too, like ``Authorization``).
- httpx and httpx2: with ``follow_redirects=True`` the auth flow sees only the final
  response. The request's ``trace`` extension is the public hook that sees every hop:
  httpcore calls it around each step of sending a request (sync callbacks for sync
  clients, coroutines for async ones), and httpx copies a request's extensions onto the
  redirects it builds. :func:`confine` (:func:`aconfine` for ``AsyncClient``) installs a
  callback that, when a request's headers are about to be written
  (``http11.send_request_headers.started`` / ``http2.send_request_headers.started``),
  takes our headers off if the request goes to another origin. The first hop that
  leaves also swaps the callback on its own extensions for one that strips on every hop
  after it, so ``A -> B -> A`` does not carry them back either, as with
  ``Authorization``; :func:`sent_header` tells the flow a hop went without them. A
  user's own ``trace`` callback is kept and called after ours (it sees what is sent).

A transport that never calls the ``trace`` extension (``MockTransport``, the ASGI and
WSGI transports, transports not built on httpcore) gets the redirected request as httpx
built it, our headers included: in-process transports send nothing anywhere, and for a
network transport of that kind ``follow_redirects`` should stay off.

Example (what the httpx adapters do before the first send)::

    names = header_names(["API-Key"])        # frozenset({b'api-key'})
    if names:
        confine(request, names)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from .hosts import origin_of

__all__ = ["aconfine", "confine", "drop_before_redirect", "header_names", "sent_header"]

logger = logging.getLogger("delivery_auth")

#: (scheme, host, port) of a request: lower-case bytes, the scheme's default port filled in.
_Origin = tuple[bytes, bytes, int | None]
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_HEADERS_STARTED = "send_request_headers.started"


def header_names(names: Iterable[str]) -> frozenset[bytes]:
    """The names that need keeping home, as httpcore compares them: every name but
    ``Authorization`` (the clients drop it themselves), lower-case bytes."""
    return frozenset(
        lowered
        for lowered in (name.lower().encode() for name in names)
        if lowered != b"authorization"
    )


def _origin(scheme: bytes, host: bytes, port: int | None) -> _Origin:
    scheme = scheme.lower()
    return scheme, host.lower(), _DEFAULT_PORTS.get(scheme) if port is None else port


def _hop_origin(url: Any) -> _Origin | None:
    """The origin an httpcore request goes to; ``None`` when it cannot be told."""
    target: bytes = url.target
    if target[:1] == b"/" or target == b"*":
        return _origin(url.scheme, url.host, url.port)
    # Absolute form: plain http through a forward proxy, whose origin is in ``url``.
    try:
        parts = urlsplit(target.decode("ascii"))
        return _origin(parts.scheme.encode(), (parts.hostname or "").encode(), parts.port)
    except ValueError:  # UnicodeDecodeError too; an odd target is another origin
        return None


class _Confine:
    """The trace callback: ``home`` is the authorised origin, ``None`` once the chain
    has left it (then ``names`` come off every hop); ``inner`` is the user's callback."""

    __slots__ = ("home", "inner", "names")

    def __init__(self, names: frozenset[bytes], home: _Origin | None, inner: Any) -> None:
        self.names = names
        self.home = home
        self.inner = inner

    def _keep_home(self, event: str, info: Mapping[str, Any]) -> None:
        if not event.endswith(_HEADERS_STARTED):
            return
        request = info.get("request")
        headers = getattr(request, "headers", None)
        names = self.names
        if not headers or not any(name.lower() in names for name, _ in headers):
            return  # nothing of ours on it (a proxy's CONNECT, for one)
        assert request is not None
        if self.home is not None and _hop_origin(request.url) == self.home:
            return
        # httpcore writes the headers from this list right after this event.
        headers[:] = [(name, value) for name, value in headers if name.lower() not in names]
        if self.home is not None:
            # The redirects built after this hop copy its extensions: strip there too.
            request.extensions["trace"] = type(self)(names, None, self.inner)
        logger.debug(
            "Not sending %s on a redirect to %s: it left the origin the request was "
            "authorised for.",
            ", ".join(sorted(name.decode() for name in names)),
            _shown(request.url),
        )


def _shown(url: Any) -> str:
    port = "" if url.port is None else f":{url.port}"
    return f"{url.scheme.decode()}://{url.host.decode()}{port}"


class _SyncConfine(_Confine):
    __slots__ = ()

    def __call__(self, event: str, info: Mapping[str, Any]) -> Any:
        self._keep_home(event, info)
        inner = self.inner
        # What the user's callback returns goes back to httpcore, which checks it.
        return None if inner is None else inner(event, info)


class _AsyncConfine(_Confine):
    __slots__ = ()

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        self._keep_home(event, info)
        inner = self.inner
        if inner is None:
            return
        result = inner(event, info)
        if not inspect.iscoroutine(result):  # httpcore's own check, kept for the user
            raise TypeError(
                "The `trace` extension of a request sent with an async client must be an "
                f"async function; {inner!r} returned {type(result).__name__}."
            )
        await result


def _install(kind: type[_Confine], request: Any, names: frozenset[bytes]) -> None:
    extensions = request.extensions
    inner = extensions.get("trace")
    if isinstance(inner, _Confine):  # sent again (a resend, or a Request sent twice)
        names = names | inner.names
        inner = inner.inner
    url = request.url
    extensions["trace"] = kind(names, _origin(url.raw_scheme, url.raw_host, url.port), inner)


def confine(request: Any, names: frozenset[bytes]) -> None:
    """Keep ``names`` off every redirect of an httpx or httpx2 ``request`` (sync clients)
    that goes to another origin than the request's own."""
    if names:
        _install(_SyncConfine, request, names)


def aconfine(request: Any, names: frozenset[bytes]) -> None:
    """:func:`confine` for ``AsyncClient`` (asyncio or trio): its trace callbacks are
    awaited."""
    if names:
        _install(_AsyncConfine, request, names)


def sent_header(request: Any, header: str) -> str | None:
    """The value of ``header`` on the wire for an httpx or httpx2 ``request`` (the one
    that got a response): ``None`` when the callback took it off that hop."""
    trace = request.extensions.get("trace")
    if (
        isinstance(trace, _Confine)
        and trace.home is None
        and header.lower().encode() in trace.names
    ):
        return None
    value: str | None = request.headers.get(header)
    return value


def drop_before_redirect(
    redirect: requests.Response,
    copied: requests.PreparedRequest,
    names: Iterable[str],
    origin: str,
) -> None:
    """requests follows ``redirect`` by copying ``copied``: when the redirect leaves
    ``origin``, take ``names`` off it first."""
    target = urljoin(redirect.url or "", redirect.headers.get("location", ""))
    try:
        same = origin_of(target) == origin
    except ValueError:
        same = False
    if not same:
        for name in names:
            copied.headers.pop(name, None)
