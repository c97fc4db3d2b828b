"""The requests response hook: judges the response of one authorised call and resends once.

requests has no auth flow: an auth object sees the request (see
:meth:`delivery_auth.auth.DeliveryAuth.__call__`) and, through a response hook, each
response, redirects included. :class:`RequestsRetry` is that hook; like everything else
it asks :mod:`delivery_auth.flow` what to do and lets the sync driver do it.
"""

from __future__ import annotations

import functools
from collections.abc import Container
from typing import Any

import requests
from requests.models import REDIRECT_STATI

from . import _redirects
from ._drive import Driver
from ._peek import read_requests_body
from .flow import Attempt, Step, judge_status, same_origin
from .replay import ResentResponse, Rewind, requests_carry_cookies

__all__ = ["RequestsRetry"]

_UNSET: Any = object()


class _EveryStatus:
    """The statuses to judge when the detector reads more than the status: all."""

    __slots__ = ()

    def __contains__(self, status: object) -> bool:
        return True


_EVERY_STATUS = _EveryStatus()


@functools.lru_cache(maxsize=16)
def _with_redirects(statuses: frozenset[int]) -> frozenset[int]:
    """``statuses`` and the redirect statuses (one set per detector, not per hook)."""
    return statuses | frozenset(REDIRECT_STATI)


class RequestsRetry:
    """The response hook of one authorised requests call (``HTTPDigestAuth``'s model).

    requests copies hooks onto redirected requests, so this also sees responses after
    redirects. The flow judges only responses of the authorised origin that carried
    *this* attempt's token, and a resend carries a different token (the flow never
    resends the same one), so it retries at most once and keeps no state: one hook
    serves every body-less request with the same lease and origin. ``prefix`` is the
    ``scheme://netloc/`` the request was admitted with, as written.
    """

    __slots__ = (
        "attempt",
        "driver",
        "failure_statuses",
        "header",
        "judged",
        "lease",
        "prefix",
        "refresh_at",
        "rewind",
        "strip_on_redirect",
        "value",
    )

    def __init__(self, driver: Driver, attempt: Attempt, rewind: Rewind, prefix: str) -> None:
        self.driver = driver
        self.attempt = attempt
        self.lease = attempt.lease
        self.rewind = rewind
        self.prefix = prefix
        self.failure_statuses = driver.flow.failure_statuses
        self.header = driver.flow.header
        # requests drops only Authorization on a redirect to another origin: a credential
        # in another header is dropped here, before requests copies the request.
        self.strip_on_redirect = self.header.lower() != "authorization"
        # What the cached path of DeliveryAuth.__call__ reads, one attribute each.
        self.value = self.lease.header
        self.refresh_at = self.lease.refresh_at
        # The statuses that need more than "return r": the failure statuses, and the
        # redirects when a credential must be dropped before one. Any other response is
        # done on one membership test. A detector that reads more than the status is
        # asked about every response.
        statuses = self.failure_statuses
        if statuses is None:
            self.judged: Container[int] = _EVERY_STATUS
        elif self.strip_on_redirect:
            self.judged = _with_redirects(statuses)
        else:
            self.judged = statuses

    # requests calls a hook with the keyword arguments of Session.send (stream, timeout,
    # verify, cert, proxies). Named, they cost no dict on the way in; collecting them in
    # **kwargs would copy them into a new one for every response. _UNSET: not passed.
    def __call__(
        self,
        r: requests.Response,
        stream: Any = _UNSET,
        timeout: Any = _UNSET,
        verify: Any = _UNSET,
        cert: Any = _UNSET,
        proxies: Any = _UNSET,
        **more: Any,
    ) -> requests.Response:
        if r.status_code not in self.judged:
            return r  # the full judgement would say done too, whosever response this is
        if self.strip_on_redirect and r.is_redirect:
            _redirects.drop_before_redirect(r, r.request, (self.header,), self.attempt.origin)
        statuses = self.failure_statuses
        if statuses is not None and r.status_code not in statuses:
            return r
        passed = {
            "stream": stream,
            "timeout": timeout,
            "verify": verify,
            "cert": cert,
            "proxies": proxies,
        }
        kwargs = {name: value for name, value in passed.items() if value is not _UNSET}
        return self._judge(r, kwargs | more)

    def _judge(self, r: requests.Response, kwargs: dict[str, Any]) -> requests.Response:
        """Judge ``r`` in full and resend when the flow says so (``kwargs``: what
        requests passed the hook, to send the resend with)."""
        driver = self.driver
        flow = driver.flow
        content_type = r.headers.get("Content-Type", "")
        step = judge_status(flow.detector, r.status_code, content_type)
        if step is Step.DONE or not self._owns(r.request):
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
        prep.headers[self.header] = fresh.header
        # requests follows a redirect of the resent request by copying the request it
        # first sent: give that one the fresh token too, or the redirect would carry the
        # dead token (and this hook, judging it, would resend a second time).
        r.request.headers[self.header] = fresh.header
        connection = r.connection
        retried = ResentResponse.after(connection.send(prep, **kwargs), r)
        if self.strip_on_redirect and retried.is_redirect:
            # This hook does not see the resend's responses, and requests follows its
            # redirect by copying r.request: drop the credential there first.
            _redirects.drop_before_redirect(retried, r.request, (self.header,), self.attempt.origin)
        retried.request = prep
        return retried

    def _owns(self, sent: requests.PreparedRequest) -> bool:
        """Whether ``sent`` carried this attempt's token to the origin it was authorised
        for (a URL that starts with the admitted prefix does, without parsing it)."""
        if sent.headers.get(self.header) != self.lease.header:
            return False
        url = sent.url or ""
        return url.startswith(self.prefix) or same_origin(url, self.attempt.origin)
