"""The emulator's memory: known credentials, issued tokens, knobs, faults and counters.

Everything here is shared by the server's request threads and the test that drives
the emulator, so every mutation happens under one lock. Nothing in this module
speaks HTTP.

Example::

    state = EmulatorState(token_ttl=60)
    token = state.issue("dhl", CREDENTIALS["dhl"].client_id)
    state.check_token("dhl", token.value)     # 'ok'
    state.revoke_all()
    state.check_token("dhl", token.value)     # 'revoked'
"""

from __future__ import annotations

import base64
import collections
import json
import math
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CREDENTIALS",
    "DEVICE_OUTCOMES",
    "ENDPOINTS",
    "FAULT_KINDS",
    "PROVIDER_NAMES",
    "Counter",
    "Credentials",
    "DeviceCode",
    "EmulatorState",
    "Fault",
    "IssuedToken",
    "Stats",
    "TokenRequestRecord",
    "check_provider",
]

#: The providers the emulator plays, as used in URLs (``/dhl/...``) and ``emu.auth("dhl")``.
PROVIDER_NAMES: tuple[str, ...] = ("tracker", "bringg", "dhl", "yandex")

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
)

#: How a device-code login ends in the emulator.
DEVICE_OUTCOMES: tuple[str, ...] = ("approve", "deny", "expire")

TokenStatus = Literal["ok", "unknown", "expired", "revoked", "wrong_provider"]


def check_provider(provider: str) -> str:
    """Return ``provider`` if the emulator knows it, else raise a ``ValueError`` listing them."""
    if provider not in PROVIDER_NAMES:
        raise ValueError(
            f"unknown provider {provider!r}; the emulator plays {', '.join(PROVIDER_NAMES)}"
        )
    return provider


@dataclass(frozen=True)
class Credentials:
    """Fixed test credentials the emulator accepts. They are not secrets of any real account.

    ``token`` and ``refresh_token`` are set for Yandex only: a pre-issued OAuth token
    (valid until revoked) and the refresh token that replaces it.
    """

    client_id: str
    client_secret: str
    token: str | None = None
    refresh_token: str | None = None

    def __repr__(self) -> str:
        # Test values, but code that prints credentials should look the same everywhere.
        return f"Credentials(client_id={self.client_id!r}, client_secret='***')"


CREDENTIALS: Mapping[str, Credentials] = {
    "tracker": Credentials("emu-tracker-client", "emu-tracker-secret-0000-not-real"),
    "bringg": Credentials("emu-bringg-client", "emu-bringg-secret-0000-not-real"),
    "dhl": Credentials("emu-dhl-client", "emu-dhl-secret-0000-not-real"),
    "yandex": Credentials(
        "emu-yandex-client",
        "emu-yandex-secret-0000-not-real",
        token="emu-yandex-oauth-token-0000-not-real",  # noqa: S106 - public test value
        refresh_token="emu-yandex-refresh-token-0000-not-real",  # noqa: S106
    ),
}

#: A Delivery Tracker client id registered "before 2024-05-13": accepted by the OAuth2
#: token endpoint but refused as an API key, like the real service does.
TRACKER_LEGACY = Credentials("emu-tracker-legacy-client", "emu-tracker-legacy-secret-not-real")


@dataclass(frozen=True)
class Fault:
    """One injected failure; see :data:`FAULT_KINDS`."""

    kind: str
    status: int | None = None
    retry_after: float = 1.0
    delay: float = 0.5


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
    """A pending Yandex ID device-code login."""

    device_code: str
    user_code: str
    client_id: str
    expires_at: float
    polls: int = 0
    done: bool = False


@dataclass(frozen=True)
class TokenRequestRecord:
    """What one token request looked like (never the secret)."""

    provider: str
    grant_type: str | None
    client_auth: str  # "body", "basic", "none" or "both"
    body_format: str  # "form", "multipart", "json", "empty" or "other"
    params: Mapping[str, str]  # the request's fields without client_secret/refresh_token


class Counter:
    """A thread-safe per-provider counter that tests can read and wait on.

    Example::

        emu.stats.token_requests["dhl"]            # 1
        emu.stats.token_requests.total             # 3
        emu.stats.token_requests.wait_for("dhl", 2, timeout=5)
    """

    def __init__(self, condition: threading.Condition) -> None:
        self._condition = condition
        self._counts: collections.Counter[str] = collections.Counter()

    def __getitem__(self, provider: str) -> int:
        check_provider(provider)
        with self._condition:
            return self._counts[provider]

    def __iter__(self) -> Iterator[str]:
        return iter(PROVIDER_NAMES)

    def __repr__(self) -> str:
        return f"Counter({self.as_dict()!r})"

    @property
    def total(self) -> int:
        """The sum over every provider."""
        with self._condition:
            return sum(self._counts.values())

    def as_dict(self) -> dict[str, int]:
        """A snapshot, one entry per provider."""
        with self._condition:
            return {name: self._counts[name] for name in PROVIDER_NAMES}

    def wait_for(self, provider: str, count: int, timeout: float = 10.0) -> bool:
        """Block until the counter of ``provider`` reaches ``count``; ``False`` on timeout."""
        check_provider(provider)
        with self._condition:
            return self._condition.wait_for(lambda: self._counts[provider] >= count, timeout)

    def _add(self, provider: str) -> None:  # caller holds the condition
        self._counts[provider] += 1
        self._condition.notify_all()

    def _clear(self) -> None:  # caller holds the condition
        self._counts.clear()


class Stats:
    """Thread-safe counters of what the emulator has seen.

    Attributes:
        token_requests: every request to a token endpoint (rejected and faulted ones too).
        tokens_issued: token requests that were answered with a token.
        resource_requests: every request to a protected resource.
        auth_failures: resource requests answered with the provider's auth failure.
        token_log: one :class:`TokenRequestRecord` per token request, oldest first.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.token_requests = Counter(self._condition)
        self.tokens_issued = Counter(self._condition)
        self.resource_requests = Counter(self._condition)
        self.auth_failures = Counter(self._condition)
        self._log: list[TokenRequestRecord] = []

    @property
    def token_log(self) -> list[TokenRequestRecord]:
        with self._condition:
            return list(self._log)

    def __repr__(self) -> str:
        return (
            f"Stats(token_requests={self.token_requests.as_dict()}, "
            f"resource_requests={self.resource_requests.as_dict()})"
        )

    def record_token_request(self, record: TokenRequestRecord) -> None:
        with self._condition:
            self._log.append(record)
            self.token_requests._add(record.provider)

    def count(self, counter: Counter, provider: str) -> None:
        with self._condition:
            counter._add(provider)

    def clear(self) -> None:
        """Set every counter back to zero and forget the log."""
        with self._condition:
            for counter in (
                self.token_requests,
                self.tokens_issued,
                self.resource_requests,
                self.auth_failures,
            ):
                counter._clear()
            self._log.clear()


def _check_seconds(name: str, value: float, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _jwt(claims: Mapping[str, object]) -> str:
    """A JWT-shaped string (unsigned: the emulator never verifies signatures)."""

    def part(data: Mapping[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(16)}"


@dataclass
class _Knobs:
    token_ttl: float
    clock_offset: float
    tracker_unauthenticated_status: int = 200
    yandex_company_banned: bool = False
    device_pending_polls: int = 1
    device_outcome: str = "approve"
    device_interval: int = 1
    device_expires_in: int = 300


class EmulatorState:
    """All mutable state of one emulator; safe to use from any thread."""

    def __init__(self, *, token_ttl: float = 3600.0, clock_offset: float = 0.0) -> None:
        self._defaults = (
            _check_seconds("token_ttl", token_ttl, positive=True),
            self._check_offset(clock_offset),
        )
        self._lock = threading.RLock()
        self.stats = Stats()
        self.stopping = threading.Event()
        self.reset()

    @staticmethod
    def _check_offset(value: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise ValueError(f"clock_offset must be a finite number of seconds, got {value!r}")
        return float(value)

    def reset(self) -> None:
        """Forget every token, fault and count; knobs go back to the constructor's values."""
        with self._lock:
            self.knobs = _Knobs(token_ttl=self._defaults[0], clock_offset=self._defaults[1])
            self._tokens: dict[str, IssuedToken] = {}
            self._refresh_tokens: dict[str, str] = {}  # refresh token -> client_id
            self._devices: dict[str, DeviceCode] = {}
            self._faults: dict[tuple[str, str], collections.deque[Fault]] = {}
            self.stats.clear()
            yandex = CREDENTIALS["yandex"]
            assert yandex.token is not None
            assert yandex.refresh_token is not None
            self._tokens[yandex.token] = IssuedToken(
                yandex.token, "yandex", yandex.client_id, expires_at=None
            )
            self._refresh_tokens[yandex.refresh_token] = yandex.client_id

    # -- knobs -------------------------------------------------------------------------

    @property
    def token_ttl(self) -> float:
        return self.knobs.token_ttl

    @token_ttl.setter
    def token_ttl(self, value: float) -> None:
        self.knobs.token_ttl = _check_seconds("token_ttl", value, positive=True)

    @property
    def clock_offset(self) -> float:
        return self.knobs.clock_offset

    @clock_offset.setter
    def clock_offset(self, value: float) -> None:
        self.knobs.clock_offset = self._check_offset(value)

    def server_time(self) -> float:
        """The emulator's wall clock: the real one plus ``clock_offset``."""
        return time.time() + self.knobs.clock_offset

    # -- tokens ------------------------------------------------------------------------

    def issue(self, provider: str, client_id: str, ttl: float | None = None) -> IssuedToken:
        """Create and remember a token; ``ttl`` overrides the default lifetime."""
        check_provider(provider)
        lifetime = self.knobs.token_ttl if ttl is None else ttl
        if provider == "yandex":
            value = f"emu-yandex-{secrets.token_urlsafe(24)}"
            expires_at = None  # Yandex OAuth tokens live until revoked
        else:
            expires_at = time.monotonic() + lifetime
            if provider == "bringg":  # Bringg hands out JWTs
                now = int(self.server_time())
                value = _jwt({"sub": client_id, "iat": now, "exp": now + int(lifetime)})
            else:
                value = f"emu-{provider}-{secrets.token_urlsafe(24)}"
        issued = IssuedToken(value, provider, client_id, expires_at)
        with self._lock:
            self._tokens[value] = issued
        self.stats.count(self.stats.tokens_issued, provider)
        return issued

    def accept(self, provider: str, value: str, ttl: float | None = None) -> IssuedToken:
        """Make the API of ``provider`` accept ``value`` (``ttl`` seconds, or until revoked)."""
        check_provider(provider)
        if not isinstance(value, str) or not value or any(c in value for c in "\r\n\x00 "):
            raise ValueError("a token must be a non-empty string without spaces or newlines")
        expires_at = None if ttl is None else time.monotonic() + _check_seconds("ttl", ttl)
        issued = IssuedToken(value, provider, CREDENTIALS[provider].client_id, expires_at)
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

        Yandex refresh tokens survive unless ``refresh_tokens=True``.
        """
        if provider is not None:
            check_provider(provider)
        with self._lock:
            revoked = 0
            for issued in self._tokens.values():
                if (provider is None or issued.provider == provider) and not issued.revoked:
                    issued.revoked = True
                    revoked += 1
            if refresh_tokens and provider in (None, "yandex"):
                self._refresh_tokens.clear()
            return revoked

    def expire_all(self, provider: str | None = None) -> int:
        """Make every live token with a lifetime expire now (tokens age, not revoked)."""
        if provider is not None:
            check_provider(provider)
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

    def new_refresh_token(self, client_id: str) -> str:
        value = f"emu-yandex-refresh-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._refresh_tokens[value] = client_id
        return value

    def refresh_token_owner(self, value: str) -> str | None:
        with self._lock:
            return self._refresh_tokens.get(value)

    # -- device codes (Yandex ID) --------------------------------------------------------

    def new_device_code(self, client_id: str) -> DeviceCode:
        code = DeviceCode(
            device_code=secrets.token_urlsafe(24),
            user_code=f"{secrets.randbelow(10**8):08d}",
            client_id=client_id,
            expires_at=time.monotonic() + self.knobs.device_expires_in,
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
            if code.polls <= self.knobs.device_pending_polls:
                return "pending"
            code.done = True
            return self.knobs.device_outcome

    # -- faults --------------------------------------------------------------------------

    def inject_fault(self, provider: str, endpoint: str, fault: Fault, times: int) -> None:
        check_provider(provider)
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
