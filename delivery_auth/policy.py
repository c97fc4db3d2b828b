"""Small immutable policies: when to refresh a token, how to retry the token endpoint.

Both read like urllib3's ``Retry``: named fields, documented defaults, ``0`` means zero.

Example::

    RefreshPolicy(refresh_margin=120, refresh_ratio=0.5, max_age=1800)
    BackoffPolicy(attempts=3, base_delay=0.5, max_retry_after=30)
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .token import Token

__all__ = ["BackoffPolicy", "RefreshPolicy", "Schedule"]


def _check_seconds(name: str, value: float | None, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a cached token should be refreshed and when it may no longer be sent.

    Both are monotonic times; ``None`` means never (a token without a known lifetime).
    """

    refresh_at: float | None
    usable_until: float | None


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """When a token is refreshed.

    Attributes:
        refresh_margin: never send a token within this many seconds of its expiry
            (capped at a quarter of the lifetime so that short-lived tokens stay usable).
        refresh_ratio: once this fraction of the lifetime has passed, one caller
            refreshes in the background while the others keep using the valid token.
            ``0`` refreshes as soon as possible, ``1`` only when the token is unusable.
        max_age: refresh a token at the latest this many seconds after it was
            obtained (``None``: no limit). DHL asks for at most 30 minutes.
    """

    refresh_margin: float = 60.0
    refresh_ratio: float = 0.5
    max_age: float | None = None

    def __post_init__(self) -> None:
        _check_seconds("refresh_margin", self.refresh_margin)
        _check_seconds("max_age", self.max_age, allow_none=True)
        ratio = self.refresh_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise ValueError(f"refresh_ratio must be a number from 0 to 1, got {ratio!r}")

    def schedule(self, token: Token) -> Schedule:
        """The refresh time and the last usable moment of ``token``."""
        if token.lifetime is None:
            refresh_at = None if self.max_age is None else token.obtained_at + self.max_age
            return Schedule(refresh_at=refresh_at, usable_until=None)
        lifetime = token.lifetime
        margin = min(self.refresh_margin, lifetime / 4)
        usable_until = token.obtained_at + lifetime - margin
        refresh_at = token.obtained_at + lifetime * self.refresh_ratio
        if self.max_age is not None:
            refresh_at = min(refresh_at, token.obtained_at + self.max_age)
        return Schedule(refresh_at=min(refresh_at, usable_until), usable_until=usable_until)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How transient token-endpoint failures (connection errors, timeouts, 429, 5xx) are retried.

    Attributes:
        attempts: token requests in all, the first included (``1``: no retry).
        base_delay: first back-off in seconds; it doubles each time, with full jitter.
        max_delay: cap of one computed back-off.
        max_retry_after: longest ``Retry-After`` we honour; a server asking for
            more makes the request fail at once with the wait in the error.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or self.attempts < 1
        ):
            raise ValueError(f"attempts must be an integer >= 1, got {self.attempts!r}")
        _check_seconds("base_delay", self.base_delay)
        _check_seconds("max_delay", self.max_delay)
        _check_seconds("max_retry_after", self.max_retry_after)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)
