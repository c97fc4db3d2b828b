"""What an auth object tells observers: small frozen events, delivered to ``on_event=``.

Every auth object accepts ``on_event=`` (a callable taking one event), and
:func:`add_listener` adds a callable that hears the events of every auth object in the
process (how :mod:`delivery_auth.otel` turns them into spans and metrics). Events name
the provider and a token's fingerprint, never a token, a secret or a password. A
callback that raises is logged and ignored: it never breaks a request.

============================  ===================================================
event                         when
============================  ===================================================
:class:`TokenFetched`         a new token was obtained (token endpoint, minted, or
                              taken from a shared cache another process filled)
:class:`TokenFetchFailed`     a token request failed for good (after its retries)
:class:`TokenEndpointRetry`   one token-request attempt failed; another follows
:class:`TokenRefreshedAhead`  a token was replaced before it expired
:class:`BackgroundRefreshFailed`  that replacement failed; the old token stays
:class:`TokenRejected`        the API rejected a token; ``resent`` says whether the
                              request was sent again, ``reason`` why (not)
:class:`SharedCacheOutage`    a shared cache stopped answering (fallback in use)
:class:`SharedCacheRecovered` it answers again
============================  ===================================================

Example::

    def record(event: AuthEvent) -> None:
        print(type(event).__name__, event.provider, event.fingerprint)

    auth = DHLeCommerceAuth.from_env(on_event=record)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = [
    "AuthEvent",
    "BackgroundRefreshFailed",
    "EventHook",
    "Events",
    "SharedCacheOutage",
    "SharedCacheRecovered",
    "TokenEndpointRetry",
    "TokenFetchFailed",
    "TokenFetched",
    "TokenRefreshedAhead",
    "TokenRejected",
    "add_listener",
    "remove_listener",
]

logger = logging.getLogger("delivery_auth")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthEvent:
    """What every event carries.

    Attributes:
        provider: the provider's short name (``"dhl"``), or the auth class's name for
            auth objects of no registered provider.
        fingerprint: the fingerprint of the token concerned (a short hash, safe to log),
            or ``None`` when no token is.
        time: when it happened (seconds since the epoch).
    """

    provider: str
    fingerprint: str | None = None
    time: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenFetched(AuthEvent):
    """A new token: ``source`` is ``"token endpoint"`` (a token request), ``"minted"``
    (signed locally) or the shared cache that had it (``"redis"``, ``"file"``, ...).
    ``duration`` in seconds, ``attempts`` token-request attempts it took (0 from a cache),
    ``lifetime`` in seconds (``None``: unknown), ``waiters`` the other callers that
    waited for it (single flight)."""

    source: str
    duration: float
    attempts: int
    lifetime: float | None
    waiters: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenFetchFailed(AuthEvent):
    """No token: ``error`` is the error's class name, after ``attempts`` attempts."""

    error: str
    duration: float
    attempts: int
    waiters: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenEndpointRetry(AuthEvent):
    """Attempt ``attempt`` of ``attempts`` failed (``status`` or ``error``, a class name);
    the next follows in ``backoff`` seconds."""

    attempt: int
    attempts: int
    status: int | None
    error: str | None
    backoff: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRefreshedAhead(AuthEvent):
    """Token ``previous`` was replaced by ``fingerprint`` ``remaining`` seconds before it
    would have expired (``None``: it had no known expiry)."""

    previous: str
    remaining: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class BackgroundRefreshFailed(AuthEvent):
    """Refreshing ahead of expiry failed (``error``, a class name); the current token
    (``fingerprint``) stays in use and the refresh is tried again in ``retry_in`` s."""

    error: str
    retry_in: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRejected(AuthEvent):
    """The API answered ``status`` rejecting token ``fingerprint``. ``resent``: whether
    the request went out again (with ``replacement``); ``reason``: ``"resent"``,
    ``"no other credentials"``, ``"body cannot be replayed"`` or ``"same token issued"``."""

    status: int
    resent: bool
    reason: str
    replacement: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedCacheOutage(AuthEvent):
    """The shared cache ``cache`` (its class name) failed with ``error`` (a class name);
    each process uses its own fallback until it answers again."""

    cache: str
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedCacheRecovered(AuthEvent):
    """The shared cache ``cache`` answers again after ``outage`` seconds."""

    cache: str
    outage: float


#: What ``on_event=`` and :func:`add_listener` take.
EventHook: TypeAlias = Callable[[AuthEvent], object]

_listeners: tuple[EventHook, ...] = ()
_listeners_lock = threading.Lock()


def add_listener(hook: EventHook) -> None:
    """Hear the events of every auth object in this process (in addition to their own
    ``on_event``). Adding the same callable twice adds it once.

    Example::

        add_listener(lambda event: metrics.count(type(event).__name__))
    """
    global _listeners
    if not callable(hook):
        raise TypeError(f"add_listener takes a callable, got {type(hook).__name__}")
    with _listeners_lock:
        if hook not in _listeners:
            _listeners = (*_listeners, hook)


def remove_listener(hook: EventHook) -> None:
    """Stop ``hook`` hearing every auth object's events (no error if it did not)."""
    global _listeners
    with _listeners_lock:
        _listeners = tuple(h for h in _listeners if h != hook)


class Events:
    """The events of one auth object: its ``on_event`` and the process's listeners.

    :attr:`wanted` is false when nobody listens, so the code that would build an event
    skips it (no allocation on the hot path). :meth:`emit` never raises.

    Example::

        events = Events("dhl", on_event=print)
        if events.wanted:
            events.emit(TokenRejected(provider=events.provider, status=401, resent=True,
                                      reason="resent"))
    """

    __slots__ = ("__weakref__", "_provider", "on_event")

    def __init__(self, provider: str, on_event: EventHook | None = None) -> None:
        if on_event is not None and not callable(on_event):
            raise TypeError(
                f"on_event must be a callable taking one event, got {type(on_event).__name__}"
            )
        self._provider = provider
        self.on_event = on_event

    @property
    def provider(self) -> str:
        """The provider's short name that every event of this object carries."""
        return self._provider

    @property
    def wanted(self) -> bool:
        """Whether anybody listens."""
        return self.on_event is not None or bool(_listeners)

    def emit(self, event: AuthEvent) -> None:
        """Deliver ``event``; a hook that raises is logged and skipped."""
        hooks = _listeners if self.on_event is None else (self.on_event, *_listeners)
        for hook in hooks:
            try:
                hook(event)
            except Exception as exc:
                logger.warning(
                    "An on_event hook (%s) raised %s on %s; ignored.",
                    getattr(hook, "__qualname__", type(hook).__name__),
                    type(exc).__name__,
                    type(event).__name__,
                )


#: For objects built without an Events (direct TokenEngine users, tests).
SILENT = Events("unknown")
