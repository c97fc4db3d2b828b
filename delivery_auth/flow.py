"""The per-request flow, without I/O: what to attach, and whether a response earns a retry.

The adapters in :mod:`delivery_auth.auth` do the sending (requests, httpx, httpx2,
sync or async); every decision is made here, on plain values:

1. ``authorize(url)`` checks the URL may carry the token and records its origin.
2. ``inspect(...)`` looks at the response status and headers: done, or the failure
   detector needs the body, or retry.
3. ``inspect_body(...)`` decides with the body in hand: at most ``body_limit(detector)``
   bytes of it, or ``None`` when the body is longer and was not read.

At most one retry follows, with a fresh token, to the origin the request was
authorised for.

Example::

    detector = StatusFailureDetector()
    detector.is_auth_failure(401, "application/json", None)   # True
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from typing import Protocol

from .engine import Lease
from .hosts import origin_of

__all__ = [
    "DEFAULT_MAX_BODY",
    "Attempt",
    "FailureDetector",
    "StatusFailureDetector",
    "Step",
    "body_limit",
    "declared_length",
    "inspect",
    "inspect_body",
]

#: How many bytes of a body the adapters read for a detector without a ``max_body``
#: attribute. An auth error is a few hundred bytes; a longer body is not read at all.
DEFAULT_MAX_BODY = 1024 * 1024


class FailureDetector(Protocol):
    """Tells whether a response means "this token is no longer accepted".

    ``needs_body`` is asked first, with the status and ``Content-Type`` only; the body
    is read (and passed to ``is_auth_failure``) only when it answers ``True``, and only
    when it has at most ``max_body`` bytes (an optional ``int`` attribute of the
    detector; :data:`DEFAULT_MAX_BODY` when absent). A longer body is not read (a
    streamed response stays the user's to stream) and ``is_auth_failure`` gets ``None``.
    """

    def needs_body(self, status_code: int, content_type: str) -> bool: ...

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool: ...


class StatusFailureDetector:
    """The default detector: an auth failure is one of ``statuses`` (HTTP 401).

    Example::

        StatusFailureDetector({401, 419})
    """

    __slots__ = ("statuses",)

    def __init__(self, statuses: Collection[int] = (401,)) -> None:
        self.statuses = frozenset(statuses)

    def __repr__(self) -> str:
        return f"StatusFailureDetector({sorted(self.statuses)!r})"

    def needs_body(self, status_code: int, content_type: str) -> bool:
        return False

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool:
        return status_code in self.statuses


class Step(enum.Enum):
    """What the adapter does next with a response."""

    DONE = "done"
    READ_BODY = "read body"
    RETRY = "retry"


class Attempt:
    """One authorised send: the origin it was made for and the lease it carried."""

    __slots__ = ("lease", "origin")

    def __init__(self, origin: str, lease: Lease) -> None:
        self.origin = origin
        self.lease = lease


def inspect(
    attempt: Attempt,
    detector: FailureDetector,
    status_code: int,
    content_type: str,
    final_url: str,
    sent_header: str | None,
) -> Step:
    """Decide from the status line and headers alone.

    A response is ours to judge only when it came from the origin the request was
    authorised for and its request carried our token: after a redirect to another
    origin the token was not sent, so a 401 there is not about our token.
    """
    if sent_header != attempt.lease.header:
        return Step.DONE
    if detector.needs_body(status_code, content_type):
        return Step.READ_BODY if _same_origin(final_url, attempt.origin) else Step.DONE
    if detector.is_auth_failure(status_code, content_type, None):
        return Step.RETRY if _same_origin(final_url, attempt.origin) else Step.DONE
    return Step.DONE


def inspect_body(
    detector: FailureDetector, status_code: int, content_type: str, body: bytes | None
) -> Step:
    """Decide with the body in hand (after :data:`Step.READ_BODY`); ``None``: the body was
    longer than :func:`body_limit` allows, so it was not read."""
    if detector.is_auth_failure(status_code, content_type, body):
        return Step.RETRY
    return Step.DONE


def body_limit(detector: FailureDetector) -> int:
    """The most bytes of a body the adapters may read for ``detector``: its ``max_body``
    when it has a non-negative ``int`` one, else :data:`DEFAULT_MAX_BODY`.

    Example::

        body_limit(GraphQLFailureDetector(max_body=4096))   # 4096
        body_limit(StatusFailureDetector())                 # 1048576
    """
    limit = getattr(detector, "max_body", None)
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        return limit
    return DEFAULT_MAX_BODY


def declared_length(value: str | None) -> int | None:
    """A ``Content-Length`` header's value as a number, or ``None`` when it is absent or
    not one plain number (then the length is unknown until the body ends)."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _same_origin(url: str, origin: str) -> bool:
    try:
        return origin_of(url) == origin
    except ValueError:
        return False
