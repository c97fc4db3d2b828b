"""The httpx and httpx2 adapters' per-origin memory and their response-side helpers.

:class:`HttpxRoutes` remembers, per origin, the :class:`~delivery_auth.flow.Attempt` a
call made with the engine's current lease, so the next call to that origin skips the
host check and the engine (see :attr:`DeliveryAuth._reuse_rounds`); :func:`plan` asks
the flow about a response; :func:`prepare_resend` readies the request for its resend.
"""

from __future__ import annotations

from time import monotonic
from typing import Any

from . import _redirects
from .engine import Lease, TokenEngine
from .flow import Attempt, Flow, Plan, Step, judge_status, same_origin
from .hosts import ORIGIN_CACHE_LIMIT, RecentlyUsed
from .replay import httpx_carry_cookies

__all__ = ["HttpxRoutes", "plan", "prepare_resend"]

#: httpx's parsed (scheme, userinfo, host, port) of an origin, and the attempt to send there
_Route = tuple[tuple[object, ...], Attempt]


class HttpxRoutes:
    """The attempts of one auth object's httpx calls, per origin, while the engine's
    lease is unchanged (``reuse=False``: remember nothing, every call goes the full way).

    Example::

        routes = HttpxRoutes(engine, reuse=True)
        attempt = routes.cached(request.url) or routes.attempt(request.url, origin, lease)
    """

    __slots__ = ("_attempts", "_engine", "_last", "_reuse")

    def __init__(self, engine: TokenEngine, reuse: bool) -> None:
        self._engine = engine
        self._reuse = reuse
        # parsed (scheme, userinfo, host, port) -> (that key, the attempt to send there)
        self._attempts: RecentlyUsed[tuple[object, ...], _Route] = RecentlyUsed(ORIGIN_CACHE_LIMIT)
        self._last: _Route | None = None  # the last one used, checked first

    def cached(self, url: Any) -> Attempt | None:
        """The attempt an earlier call to ``url``'s origin made with the engine's current
        lease, while that lease is not due for refresh; else ``None``.

        Origins are told apart by httpx's parsed ``(scheme, userinfo, host, port)``,
        which decides everything the host check looks at (see
        :meth:`HostPolicy.origin_for_url`); the last one used is compared part by part,
        which costs less than hashing a new key.
        """
        reference = getattr(url, "_uri_reference", None)  # httpx's parsed URL tuple
        if not isinstance(reference, tuple):
            return None
        current = self._engine.lease
        route = self._last
        if (
            route is None
            or route[1].lease is not current
            or reference[2] != route[0][2]  # the host first: it differs most often
            or reference[3] != route[0][3]
            or reference[0] != route[0][0]
            or reference[1] != route[0][1]
        ):
            if not self._reuse:
                return None
            key = reference[:4]
            entries = self._attempts.entries  # RecentlyUsed.get, inlined: a hot path
            route = entries.get(key)
            if route is None or route[1].lease is not current:
                return None
            try:  # noqa: SIM105 - contextlib.suppress costs more than this whole lookup
                entries.move_to_end(key)
            except KeyError:  # pragma: no cover - evicted by another thread meanwhile
                pass
            self._last = route
        if current is not None and monotonic() < current.refresh_at:
            return route[1]
        return None

    def attempt(self, url: Any, origin: str, lease: Lease) -> Attempt:
        """The attempt to send to ``url`` (of ``origin``, admitted) with ``lease``: the one
        remembered for them when there is one, else a new one, remembered."""
        reference = getattr(url, "_uri_reference", None)
        if not self._reuse or not isinstance(reference, tuple):
            return Attempt(origin, lease)
        key = reference[:4]
        route = self._attempts.get(key)
        if route is None or route[1].lease is not lease:
            route = (key, Attempt(origin, lease))
            self._attempts.put(key, route)
        self._last = route
        return route[1]


def plan(flow: Flow, attempt: Attempt, url: Any, response: Any) -> Plan | None:
    """The flow's plan for an httpx or httpx2 response to a request sent to ``url``, or
    ``None``: done with it.

    The detector is asked first; only a response it does not call done is checked for
    being ours (our token on the request, the origin it was authorised for: a request
    whose URL is still the very object we admitted is, without formatting it).
    """
    status_code = response.status_code
    content_type = response.headers.get("content-type", "")
    step = judge_status(flow.detector, status_code, content_type)
    if step is Step.DONE:
        return None
    sent = response.request
    header = flow.header
    # Another header may have been taken off a redirect on the way (see _redirects).
    carried = (
        sent.headers.get(header)
        if header == "Authorization"
        else _redirects.sent_header(sent, header)
    )
    if carried != attempt.lease.header:
        return None
    if sent.url is not url and not same_origin(str(sent.url), attempt.origin):
        return None
    return flow.plan(attempt, step, status_code, content_type)


def prepare_resend(request: Any, rejected: Any, fresh: Lease, header: str) -> None:
    request.headers[header] = fresh.header
    httpx_carry_cookies(request, rejected)
