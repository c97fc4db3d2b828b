"""The per-request flow, without I/O: whether a response is about our token, and what
follows when it is.

One authorised send goes like this; the adapters in :mod:`delivery_auth.auth` (requests,
httpx, httpx2; sync or async) do the I/O, every decision is made here on plain values:

1. The adapter asks the engine for a lease, puts its header on the request, records how
   to replay the body (:mod:`delivery_auth.replay`) and sends. (No decision is needed
   for that, and the first send is the hot path: it stays in the adapter.)
2. :func:`judge_response` judges the response from its status line and headers: done
   (most responses end here, and no plan is made for them), read the body first, or
   retry. The detector is asked first (:func:`judge_status`), and only a response it
   does not call done is checked for being ours: most responses are done from their
   status alone, and with a status-only detector (:attr:`Flow.failure_statuses`) the
   adapters decide that without reading a single header.
3. Otherwise :meth:`Flow.plan` describes what follows, as a :data:`Plan`: a generator
   that yields instructions and receives the driver's answers:

   ========================  ===========================================================
   instruction               the driver answers with
   ========================  ===========================================================
   :data:`READ_BODY`         the body, at most ``body_limit(detector)`` bytes of it, or
                             ``None`` when it is longer and was not read; the plan then
                             judges it (:func:`judge_body`)
   :class:`Invalidate`       whether the engine can get a token other than this rejected
                             one (it drops the rejected one either way)
   :data:`REWIND_BODY`       whether the body was put back where the first send started
   :data:`FRESH_LEASE`       a lease fetched for the retry
   ========================  ===========================================================

   The plan returns the lease to resend the request with (once, to the origin it was
   authorised for), or ``None``: the response goes back to the caller as it is. It
   logs why it gives up (a warning) or that it resends (info).

The drivers (:mod:`delivery_auth._drive`) answer the instructions; the adapters send.

Example, with plain values (the drivers do the same with a real engine and response)::

    flow = Flow(StatusFailureDetector(), cannot_refresh=print)
    attempt = Attempt("https://api.example.com:443", lease)
    step = judge_response(attempt, flow.detector, 401, "", url, lease.header)  # RETRY
    plan = flow.plan(attempt, step, 401, "")
    plan.send(None)          # Invalidate(token=lease.token)
    plan.send(True)          # REWIND_BODY
    plan.send(True)          # FRESH_LEASE
    plan.send(fresh_lease)   # raises StopIteration(fresh_lease): resend with it
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Collection, Generator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from .engine import Lease
from .events import SILENT, Events, TokenRejected
from .hosts import origin_of
from .token import Token

__all__ = [
    "DEFAULT_MAX_BODY",
    "FRESH_LEASE",
    "READ_BODY",
    "REWIND_BODY",
    "Attempt",
    "FailureDetector",
    "Flow",
    "FreshLease",
    "Instruction",
    "Invalidate",
    "Plan",
    "ReadBody",
    "RewindBody",
    "StatusFailureDetector",
    "Step",
    "body_limit",
    "declared_length",
    "failure_statuses",
    "judge_body",
    "judge_response",
    "judge_status",
    "owned",
    "same_origin",
]

logger = logging.getLogger("delivery_auth")

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

    Both answers must depend on their arguments only (the flow may ask in any order, and
    about responses it then finds are not about its token).

    A detector that judges by the status alone may also have a ``failure_statuses``
    attribute (a ``frozenset`` of ints), promising that ``needs_body`` is always
    ``False`` and ``is_auth_failure`` is ``status_code in failure_statuses``: the
    adapters then call every other status done without a call or a header read. It is
    read once, when the auth object is built.
    """

    def needs_body(self, status_code: int, content_type: str) -> bool: ...

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool: ...


class StatusFailureDetector:
    """The default detector: an auth failure is one of ``statuses`` (HTTP 401).

    Immutable: the auth objects read its ``failure_statuses`` once, when they are built.

    Example::

        StatusFailureDetector({401, 419})
    """

    __slots__ = ("_statuses",)

    def __init__(self, statuses: Collection[int] = (401,)) -> None:
        self._statuses = frozenset(statuses)

    def __repr__(self) -> str:
        return f"StatusFailureDetector({sorted(self._statuses)!r})"

    @property
    def statuses(self) -> frozenset[int]:
        """The statuses that mean "this token is no longer accepted"."""
        return self._statuses

    @property
    def failure_statuses(self) -> frozenset[int] | None:
        """``statuses`` (see :class:`FailureDetector`), or ``None`` for a subclass that
        answers ``needs_body`` or ``is_auth_failure`` its own way."""
        cls = type(self)
        if (
            cls.needs_body is StatusFailureDetector.needs_body
            and cls.is_auth_failure is StatusFailureDetector.is_auth_failure
        ):
            return self._statuses
        return None

    def needs_body(self, status_code: int, content_type: str) -> bool:
        return False

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool:
        return status_code in self._statuses


class Step(enum.Enum):
    """The verdict on a response: done with it, read its body first, or retry."""

    DONE = "done"
    READ_BODY = "read body"
    RETRY = "retry"


class Attempt(NamedTuple):
    """One authorised send: the origin it was authorised for and the lease it carried."""

    origin: str
    lease: Lease


# -- instructions a plan yields to its driver ----------------------------------------


@dataclass(frozen=True, slots=True)
class ReadBody:
    """Read the response body: at most ``body_limit(detector)`` bytes, else ``None``."""


@dataclass(frozen=True, slots=True)
class Invalidate:
    """Drop ``token`` from the engine; answer whether another token can be had."""

    token: Token


@dataclass(frozen=True, slots=True)
class RewindBody:
    """Put the request body back where the first send started; answer whether it was."""


@dataclass(frozen=True, slots=True)
class FreshLease:
    """Answer with a lease fetched for the retry (not one that is due for refresh)."""


READ_BODY = ReadBody()
REWIND_BODY = RewindBody()
FRESH_LEASE = FreshLease()

Instruction = ReadBody | Invalidate | RewindBody | FreshLease

#: What follows a response that may be about our token: yields instructions, receives
#: their answers, returns the lease to resend with or ``None`` (return the response).
Plan = Generator[Instruction, Any, Lease | None]


class Flow:
    """The flow of one auth object: its failure detector, and how it reports a rejected
    token that it cannot replace (``cannot_refresh(status_code)``: providers word that
    warning themselves), and the request header its credential goes in (``header``,
    whose sent value :func:`judge_response` compares with the attempt's).

    ``failure_statuses`` is :func:`failure_statuses` of the detector: when it is not
    ``None``, a response whose status is not in it is done, whatever else it says.
    """

    __slots__ = ("cannot_refresh", "detector", "events", "failure_statuses", "header")

    def __init__(
        self,
        detector: FailureDetector,
        cannot_refresh: Callable[[int], None],
        header: str = "Authorization",
        events: Events = SILENT,
    ) -> None:
        self.detector = detector
        self.cannot_refresh = cannot_refresh
        self.header = header
        #: told of every rejected token, and whether the request was resent
        self.events = events
        self.failure_statuses = failure_statuses(detector)

    def plan(self, attempt: Attempt, step: Step, status_code: int, content_type: str) -> Plan:
        """What follows :func:`judge_response`'s ``step`` (``READ_BODY`` or ``RETRY``) for a
        response of ``attempt`` with this status and ``Content-Type``."""
        if step is Step.READ_BODY:
            body = yield READ_BODY
            step = judge_body(self.detector, status_code, content_type, body)
        if step is not Step.RETRY:
            return None
        rejected = attempt.lease
        # The token is dead either way: drop it, so later requests do not send it again.
        if not (yield Invalidate(rejected.token)):
            self.cannot_refresh(status_code)
            self._rejected(rejected, status_code, "no other credentials")
            return None
        # Rewind before fetching the fresh token: an unreplayable body costs no token request.
        if not (yield REWIND_BODY):
            _cannot_resend(status_code)
            self._rejected(rejected, status_code, "body cannot be replayed")
            return None
        fresh: Lease = yield FRESH_LEASE
        if fresh.header == rejected.header:  # never resend the same token
            logger.warning(
                "The API rejected token %s (HTTP %s) and the token endpoint issued the same "
                "token again: returning the response instead of resending it.",
                rejected.token.fingerprint,
                status_code,
            )
            self._rejected(rejected, status_code, "same token issued")
            return None
        logger.info(
            "The API rejected token %s (HTTP %s); resending once with token %s",
            rejected.token.fingerprint,
            status_code,
            fresh.token.fingerprint,
        )
        self._rejected(rejected, status_code, "resent", fresh)
        return fresh

    def _rejected(
        self, rejected: Lease, status_code: int, reason: str, fresh: Lease | None = None
    ) -> None:
        events = self.events
        if events.wanted:
            events.emit(
                TokenRejected(
                    provider=events.provider,
                    fingerprint=rejected.token.fingerprint,
                    status=status_code,
                    resent=fresh is not None,
                    reason=reason,
                    replacement=None if fresh is None else fresh.token.fingerprint,
                )
            )


def _cannot_resend(status_code: int) -> None:
    logger.warning(
        "The API rejected the token (HTTP %s), but the request body is a generator or "
        "one-shot stream that cannot be sent twice: returning the response. Pass bytes "
        "or a seekable file to have such requests retried.",
        status_code,
    )


def failure_statuses(detector: FailureDetector) -> frozenset[int] | None:
    """The detector's ``failure_statuses`` when it has a set of ints there, else ``None``
    (then only its answers tell; see :class:`FailureDetector`)."""
    statuses = getattr(detector, "failure_statuses", None)
    if isinstance(statuses, (set, frozenset)) and all(
        isinstance(status, int) for status in statuses
    ):
        return frozenset(statuses)
    return None


def judge_status(detector: FailureDetector, status_code: int, content_type: str) -> Step:
    """The detector's verdict from the status and ``Content-Type``, for a response known
    to be about our token: read the body first, retry, or done."""
    if detector.needs_body(status_code, content_type):
        return Step.READ_BODY
    if detector.is_auth_failure(status_code, content_type, None):
        return Step.RETRY
    return Step.DONE


def owned(attempt: Attempt, final_url: str, sent_header: str | None) -> bool:
    """Whether a response is about ``attempt``'s token: its request carried that token
    and it came from the origin the request was authorised for (after a redirect to
    another origin the token was not sent, so a 401 there is not about it)."""
    return sent_header == attempt.lease.header and same_origin(final_url, attempt.origin)


def judge_response(
    attempt: Attempt,
    detector: FailureDetector,
    status_code: int,
    content_type: str,
    final_url: str,
    sent_header: str | None,
) -> Step:
    """Decide from the status line and headers alone: :func:`judge_status`, for a
    response that is :func:`owned` by ``attempt`` (any other is done).

    The detector is asked first: most responses are done by their status alone, and
    then nobody needs to look at the URL or the request's headers.
    """
    step = judge_status(detector, status_code, content_type)
    if step is Step.DONE or owned(attempt, final_url, sent_header):
        return step
    return Step.DONE


def judge_body(
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


def same_origin(url: str, origin: str) -> bool:
    """Whether ``url`` has the normalised ``origin`` (``False`` for a URL that has none)."""
    try:
        return origin_of(url) == origin
    except ValueError:
        return False
