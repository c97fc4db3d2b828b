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
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from .engine import Lease
    from .token import Token

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
    "provider_name",
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

    def __init__(self, provider: str | type, on_event: EventHook | None = None) -> None:
        if on_event is not None and not callable(on_event):
            raise TypeError(
                f"on_event must be a callable taking one event, got {type(on_event).__name__}"
            )
        self._provider = provider
        self.on_event = on_event

    @property
    def provider(self) -> str:
        """The provider's short name that every event of this object carries (given as
        an auth class, it is looked up in the registry when first needed)."""
        provider = self._provider
        if not isinstance(provider, str):
            provider = self._provider = provider_name(provider)
        return provider

    @property
    def wanted(self) -> bool:
        """Whether anybody listens."""
        return self.on_event is not None or bool(_listeners)

    # -- what the engine and the fetcher report (each builds its event only when wanted)

    def fetched(
        self, token: Token, *, source: str, started: float, attempts: int, waiters: int
    ) -> None:
        """A new token (``started``: ``time.monotonic()`` when it was asked for)."""
        if self.wanted:
            self.emit(
                TokenFetched(
                    provider=self.provider,
                    fingerprint=token.fingerprint,
                    source=source,
                    duration=time.monotonic() - started,
                    attempts=attempts,
                    lifetime=token.lifetime,
                    waiters=waiters,
                )
            )

    def fetch_failed(
        self, error: BaseException, *, started: float, attempts: int, waiters: int
    ) -> None:
        """No token: ``error`` ended the request."""
        if self.wanted:
            self.emit(
                TokenFetchFailed(
                    provider=self.provider,
                    error=type(error).__name__,
                    duration=time.monotonic() - started,
                    attempts=attempts,
                    waiters=waiters,
                )
            )

    def retrying(
        self, attempt: int, attempts: int, status: int | None, error: str | None, backoff: float
    ) -> None:
        """Token-request attempt ``attempt`` failed; the next follows in ``backoff`` s."""
        if self.wanted:
            self.emit(
                TokenEndpointRetry(
                    provider=self.provider,
                    attempt=attempt,
                    attempts=attempts,
                    status=status,
                    error=error,
                    backoff=backoff,
                )
            )

    def refreshed_ahead(self, previous: Token, fresh: Token, remaining: float | None) -> None:
        """``previous`` was replaced by ``fresh`` before it expired."""
        if self.wanted:
            self.emit(
                TokenRefreshedAhead(
                    provider=self.provider,
                    fingerprint=fresh.fingerprint,
                    previous=previous.fingerprint,
                    remaining=remaining,
                )
            )

    def background_failed(
        self, current: Token | None, error: BaseException, retry_in: float
    ) -> None:
        """A refresh ahead of expiry failed; ``current`` stays in use."""
        if self.wanted:
            self.emit(
                BackgroundRefreshFailed(
                    provider=self.provider,
                    fingerprint=None if current is None else current.fingerprint,
                    error=type(error).__name__,
                    retry_in=retry_in,
                )
            )

    def landed(
        self,
        outcome: Lease | Exception,
        previous: Lease | None,
        *,
        background: bool,
        source: str,
        started: float,
        attempts: int,
        waiters: int,
        retry_in: float,
    ) -> None:
        """What a flight of the engine brought: a token (maybe replacing ``previous``
        ahead of its expiry) or an error (``background``: the current token stays)."""
        if not isinstance(outcome, Exception):
            self.fetched(
                outcome.token, source=source, started=started, attempts=attempts, waiters=waiters
            )
            if background and previous is not None:
                remaining = previous.usable_until - time.monotonic()
                self.refreshed_ahead(
                    previous.token, outcome.token, None if remaining == math.inf else remaining
                )
            return
        self.fetch_failed(outcome, started=started, attempts=attempts, waiters=waiters)
        if background:
            self.background_failed(None if previous is None else previous.token, outcome, retry_in)

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

_names: dict[type, str] = {}


def provider_name(auth_class: type) -> str:
    """The registry's short name of ``auth_class`` (or of the nearest registered class
    it derives from), else the class's own name.

    Example::

        provider_name(DHLeCommerceAuth)   # 'dhl'
    """
    found = _names.get(auth_class)
    if found is None:
        from .providers.spec import registry

        classes = {spec.auth_class: name for name, spec in registry().items()}
        found = next((classes[c] for c in auth_class.__mro__ if c in classes), None)
        found = _names[auth_class] = found or auth_class.__name__
    return found
