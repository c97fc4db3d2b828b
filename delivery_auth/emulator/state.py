"""The emulator's memory: issued tokens, settings, faults and counters.

Everything here is shared by the server's request threads and the test that drives
the emulator, so every mutation happens under one lock. Nothing in this module
speaks HTTP, and nothing names a provider: what differs between them (credentials,
token shapes, their own settings) comes from their pages (:mod:`.page`).

Example::

    state = EmulatorState(token_ttl=60)
    token = state.issue("dhl", CREDENTIALS["dhl"].client_id)
    state.check_token("dhl", token.value)     # 'ok'
    state.revoke_all()
    state.check_token("dhl", token.value)     # 'revoked'
    state.settings.token_ttl = 30             # every knob lives in ``state.settings``
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .page import Credentials, Page, PageField, pages
from .settings import COMMON_SETTINGS, DEVICE_OUTCOMES, Settings, seconds
from .stats import Counter, Stats, TokenRequestRecord

__all__ = [
    "CREDENTIALS",
    "DEVICE_OUTCOMES",
    "ENDPOINTS",
    "FAULT_KINDS",
    "Counter",
    "Credentials",
    "DeviceCode",
    "EmulatorState",
    "Fault",
    "IssuedToken",
    "Settings",
    "Stats",
    "TokenRequestRecord",
]

#: The fixed test credentials each provider's page accepts, by provider name.
CREDENTIALS: Mapping[str, Credentials] = PageField(lambda page: page.credentials)

#: Which endpoint a fault applies to.
ENDPOINTS: tuple[str, ...] = ("token", "resource")

#: Fault kinds accepted by :meth:`EmulatorState.inject_fault`.
FAULT_KINDS: tuple[str, ...] = (
    "server_error",  # HTTP 5xx (``status``, default 503) with a JSON error body
    "rate_limit",  # HTTP 429 with ``Retry-After: <retry_after>``
    "delay",  # wait ``delay`` seconds, then answer normally
    "garbage",  # HTTP 200 whose body is not JSON at all
    "html",  # an HTML error page (``status``, default 502), as a proxy would send
    "reset",  # the connection is reset before any response is sent
    "auth_failure",  # the provider's own "credentials rejected" answer
    "reply",  # a scripted answer: ``status`` (default 200), ``body`` and ``headers``
)

TokenStatus = Literal["ok", "unknown", "expired", "revoked", "wrong_provider"]


@dataclass(frozen=True)
class Fault:
    """One injected failure; see :data:`FAULT_KINDS` (``body``/``headers``: ``reply``)."""

    kind: str
    status: int | None = None
    retry_after: float = 1.0
    delay: float = 0.5
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class IssuedToken:
    """An access token the emulator handed out."""

    value: str
    provider: str
    client_id: str
    expires_at: float | None  # time.monotonic() of expiry; None: never
    revoked: bool = False


@dataclass
class DeviceCode:
    """A pending device-code login (RFC 8628)."""

    device_code: str
    user_code: str
    client_id: str
    expires_at: float
    polls: int = 0
    done: bool = False


class EmulatorState:
    """All mutable state of one emulator; safe to use from any thread.

    ``pages`` defaults to the registry's (:func:`~delivery_auth.emulator.page.pages`).
    """

    def __init__(
        self,
        *,
        token_ttl: float = 3600.0,
        clock_offset: float = 0.0,
        pages: Mapping[str, Page] | None = None,
    ) -> None:
        self.pages: dict[str, Page] = dict(_registered() if pages is None else pages)
        self._declared = dict(COMMON_SETTINGS)
        for page in self.pages.values():
            self._declared.update(page.settings)
        self._initial = {"token_ttl": token_ttl, "clock_offset": clock_offset}
        self.settings = Settings(self._declared, self._initial)
        self._lock = threading.RLock()
        self.stats = Stats(tuple(self.pages))
        self.stopping = threading.Event()
        self.reset()

    def check_provider(self, provider: str) -> str:
        """Return ``provider`` if a page plays it, else raise a ``ValueError`` listing them."""
        if provider not in self.pages:
            raise ValueError(
                f"unknown provider {provider!r}; the emulator plays {', '.join(self.pages)}"
            )
        return provider

    def reset(self) -> None:
        """Forget every token, fault and count; settings go back to the constructor's values."""
        with self._lock:
            self.settings = Settings(self._declared, self._initial)
            self._tokens: dict[str, IssuedToken] = {}
            # refresh token -> (provider, client_id)
            self._refresh_tokens: dict[str, tuple[str, str]] = {}
            self._devices: dict[str, DeviceCode] = {}
            self._faults: dict[tuple[str, str], collections.deque[Fault]] = {}
            self.stats.clear()
            for name, page in self.pages.items():  # pre-issued tokens live until revoked
                known = page.credentials
                if known.token is not None:
                    self._tokens[known.token] = IssuedToken(
                        known.token, name, known.client_id, expires_at=None
                    )
                if known.refresh_token is not None:
                    self._refresh_tokens[known.refresh_token] = (name, known.client_id)

    def server_time(self) -> float:
        """The emulator's wall clock: the real one plus ``clock_offset``."""
        offset: float = self.settings.clock_offset
        return time.time() + offset

    # -- tokens ------------------------------------------------------------------------

    def issue(self, provider: str, client_id: str, ttl: float | None = None) -> IssuedToken:
        """Create and remember a token; ``ttl`` overrides the default lifetime."""
        page = self.pages[self.check_provider(provider)]
        lifetime: float = self.settings.token_ttl if ttl is None else ttl
        if page.mint is not None:
            value = page.mint(client_id, lifetime, self.server_time())
        else:
            value = f"emu-{provider}-{secrets.token_urlsafe(24)}"
        expires_at = time.monotonic() + lifetime if page.tokens_expire else None
        issued = IssuedToken(value, provider, client_id, expires_at)
        with self._lock:
            self._tokens[value] = issued
        self.stats.count(self.stats.tokens_issued, provider)
        return issued

    def accept(self, provider: str, value: str, ttl: float | None = None) -> IssuedToken:
        """Make the API of ``provider`` accept ``value`` (``ttl`` seconds, or until revoked)."""
        page = self.pages[self.check_provider(provider)]
        if not isinstance(value, str) or not value or any(c in value for c in "\r\n\x00 "):
            raise ValueError("a token must be a non-empty string without spaces or newlines")
        expires_at = None if ttl is None else time.monotonic() + seconds("ttl").check(ttl)
        issued = IssuedToken(value, provider, page.credentials.client_id, expires_at)
        with self._lock:
            self._tokens[value] = issued
        return issued

    def check_token(self, provider: str, value: str | None) -> TokenStatus:
        """Whether ``value`` is a live token of ``provider``."""
        with self._lock:
            issued = self._tokens.get(value or "")
            if issued is None:
                return "unknown"
            if issued.provider != provider:
                return "wrong_provider"
            if issued.revoked:
                return "revoked"
            if issued.expires_at is not None and time.monotonic() >= issued.expires_at:
                return "expired"
            return "ok"

    def revoke(self, value: str) -> bool:
        """Revoke one access token; ``False`` if the emulator never issued it."""
        with self._lock:
            issued = self._tokens.get(value)
            if issued is None:
                return False
            issued.revoked = True
            return True

    def revoke_all(self, provider: str | None = None, *, refresh_tokens: bool = False) -> int:
        """Revoke every access token (of one provider, or all); return how many.

        Refresh tokens survive unless ``refresh_tokens=True``.
        """
        if provider is not None:
            self.check_provider(provider)
        with self._lock:
            revoked = 0
            for issued in self._tokens.values():
                if (provider is None or issued.provider == provider) and not issued.revoked:
                    issued.revoked = True
                    revoked += 1
            if refresh_tokens:
                for value, (owner, _) in list(self._refresh_tokens.items()):
                    if provider is None or owner == provider:
                        del self._refresh_tokens[value]
            return revoked

    def expire_all(self, provider: str | None = None) -> int:
        """Make every live token with a lifetime expire now (tokens age, not revoked)."""
        if provider is not None:
            self.check_provider(provider)
        now = time.monotonic()
        with self._lock:
            expired = 0
            for issued in self._tokens.values():
                if provider is not None and issued.provider != provider:
                    continue
                if issued.expires_at is not None and issued.expires_at > now:
                    issued.expires_at = now
                    expired += 1
            return expired

    def new_refresh_token(self, provider: str, client_id: str) -> str:
        value = f"emu-{provider}-refresh-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._refresh_tokens[value] = (provider, client_id)
        return value

    def forget_refresh_token(self, value: str) -> None:
        with self._lock:
            self._refresh_tokens.pop(value, None)

    def refresh_token_owner(self, provider: str, value: str) -> str | None:
        """The client id a live refresh token of ``provider`` belongs to, else ``None``."""
        with self._lock:
            owner = self._refresh_tokens.get(value)
        return owner[1] if owner is not None and owner[0] == provider else None

    # -- device codes (RFC 8628) ----------------------------------------------------------

    def new_device_code(self, client_id: str) -> DeviceCode:
        code = DeviceCode(
            device_code=secrets.token_urlsafe(24),
            user_code=f"{secrets.randbelow(10**8):08d}",
            client_id=client_id,
            expires_at=time.monotonic() + self.settings.device_expires_in,
        )
        with self._lock:
            self._devices[code.device_code] = code
        return code

    def poll_device_code(self, device_code: str, client_id: str) -> str:
        """One poll: 'pending', 'approve', 'deny', 'expire' or 'unknown'."""
        with self._lock:
            code = self._devices.get(device_code)
            if code is None or code.client_id != client_id or code.done:
                return "unknown"
            if time.monotonic() >= code.expires_at:
                code.done = True
                return "expire"
            code.polls += 1
            if code.polls <= self.settings.device_pending_polls:
                return "pending"
            code.done = True
            outcome: str = self.settings.device_outcome
            return outcome

    # -- faults --------------------------------------------------------------------------

    def inject_fault(self, provider: str, endpoint: str, fault: Fault, times: int) -> None:
        self.check_provider(provider)
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {ENDPOINTS}, got {endpoint!r}")
        if fault.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {fault.kind!r}; choose one of {', '.join(FAULT_KINDS)}"
            )
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an integer >= 1, got {times!r}")
        with self._lock:
            queue = self._faults.setdefault((provider, endpoint), collections.deque())
            queue.extend([fault] * times)

    def next_fault(self, provider: str, endpoint: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get((provider, endpoint))
            return queue.popleft() if queue else None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self, provider: str, endpoint: str = "token") -> int:
        with self._lock:
            return len(self._faults.get((provider, endpoint), ()))


def _registered() -> dict[str, Page]:
    return pages()
