"""The :class:`Token` value object and the parser of token-endpoint responses.

Example::

    token = Token.from_response({"access_token": "abc", "expires_in": 3600})
    token.lifetime        # 3600.0
    repr(token)           # "Token(type='Bearer', lifetime=3600.0, fingerprint='…')"
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_LIFETIME", "MILLISECONDS_FROM", "Token", "TokenParseError", "epoch_seconds"]

#: token_type values that mean a bearer token (DHL's docs call theirs "BearerToken").
_BEARER_SPELLINGS = frozenset({"bearer", "bearertoken"})
#: Longer advertised lifetimes are capped: a year is plenty and keeps arithmetic sane.
MAX_LIFETIME = 366 * 24 * 3600.0
#: An epoch time above this is in milliseconds: 1e11 s is the year 5138, 1e11 ms is
#: March 1973, so no plausible time is ambiguous (UPS and USPS send ms).
MILLISECONDS_FROM = 1e11


class TokenParseError(ValueError):
    """A token response is not usable; the message says why (never the token)."""


def _lifetime(value: object) -> float:
    """``expires_in`` as positive finite seconds (int, float or numeric string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TokenParseError(
            f"expires_in must be a number of seconds, got a {type(value).__name__}"
        )
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond any float: as good as forever
        return MAX_LIFETIME
    except ValueError:
        raise TokenParseError(
            f"expires_in must be a number of seconds, got the string {str(value)[:20]!r}"
        ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise TokenParseError(
            f"expires_in must be a positive number of seconds, got {str(value)[:20]}: "
            "a token that is already expired cannot be used"
        )
    return min(seconds, MAX_LIFETIME)


def epoch_seconds(value: object) -> float | None:
    """A server's epoch time (an int, float or numeric string, in seconds or in
    milliseconds: see :data:`MILLISECONDS_FROM`) as seconds, or ``None`` when it is none.

    Example::

        epoch_seconds("1718000000123")   # 1718000000.123
        epoch_seconds(1718000000)        # 1718000000.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds / 1000 if seconds > MILLISECONDS_FROM else seconds


def jwt_expiry(access_token: str) -> float | None:
    """The ``exp`` claim (wall-clock seconds) of a JWT, or ``None`` for anything else.

    The signature is not checked: we only use the claim to schedule a refresh.
    """
    parts = access_token.split(".")
    if len(parts) != 3 or len(parts[1]) > 64 * 1024:
        return None
    payload = parts[1]
    try:
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (ValueError, TypeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        seconds = float(exp)
    except OverflowError:  # an int beyond any float
        return None
    return seconds if math.isfinite(seconds) else None


@dataclass(frozen=True, repr=False, eq=False)
class Token:
    """An access token and when it was obtained.

    ``obtained_at`` is :func:`time.monotonic` in this process (ages are measured on
    it, so wall-clock jumps do not matter); ``issued_at`` is the wall clock at the same
    moment, used only to hand the token to other processes. ``lifetime`` is ``None``
    when the server did not say: such a token is kept until the API rejects it.

    Two tokens are equal when their access tokens are. ``repr`` shows a short
    fingerprint, never the token.
    """

    access_token: str
    token_type: str = "Bearer"
    lifetime: float | None = None
    obtained_at: float = field(default_factory=time.monotonic)
    issued_at: float = field(default_factory=time.time)
    refresh_token: str | None = None
    scope: str | None = None
    #: Other members of the token response (e.g. Bringg's ``created_at``), as sent.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_response(
        cls,
        payload: object,
        *,
        obtained_at: float | None = None,
        issued_at: float | None = None,
    ) -> Token:
        """Validate a decoded token response and build a token from it.

        Raises :class:`TokenParseError` naming the problem. ``expires_in`` may be an
        int, a float or a numeric string; without it the JWT ``exp`` claim is used
        when the token is a JWT.
        """
        if not isinstance(payload, Mapping):
            raise TokenParseError(
                f"the token response is a JSON {type(payload).__name__}, not an object"
            )
        access_token = payload.get("access_token")
        if not isinstance(access_token, str) or not access_token.strip():
            what = "missing" if access_token is None else "not a non-empty string"
            raise TokenParseError(f"access_token is {what}")
        if any(ch in access_token for ch in "\r\n\x00"):
            raise TokenParseError("access_token contains control characters")
        token_type = payload.get("token_type", "Bearer")
        if token_type is None:
            token_type = "Bearer"
        if not isinstance(token_type, str) or not token_type.strip():
            raise TokenParseError("token_type is not a non-empty string")
        if token_type.lower() in _BEARER_SPELLINGS:
            token_type = "Bearer"
        now_wall = time.time() if issued_at is None else issued_at
        raw_lifetime = payload.get("expires_in")
        lifetime: float | None
        if raw_lifetime is not None:
            lifetime = _lifetime(raw_lifetime)
        else:
            exp = jwt_expiry(access_token)
            lifetime = None
            if exp is not None:
                if exp <= now_wall:
                    raise TokenParseError(
                        "the token has no expires_in and its JWT exp claim is in the past"
                    )
                lifetime = min(exp - now_wall, MAX_LIFETIME)
        refresh_token = payload.get("refresh_token")
        scope = payload.get("scope")
        known = {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
        return cls(
            access_token=access_token,
            token_type=token_type,
            lifetime=lifetime,
            obtained_at=time.monotonic() if obtained_at is None else obtained_at,
            issued_at=now_wall,
            refresh_token=refresh_token
            if isinstance(refresh_token, str) and refresh_token
            else None,
            scope=scope if isinstance(scope, str) else None,
            extra={k: v for k, v in payload.items() if k not in known},
        )

    @property
    def expires_at(self) -> float | None:
        """Monotonic time at which the token expires (``None``: unknown)."""
        return None if self.lifetime is None else self.obtained_at + self.lifetime

    @property
    def server_issued_at(self) -> float | None:
        """When the server says it issued the token (its ``issued_at``, in seconds or
        milliseconds, number or string; see :func:`epoch_seconds`), as epoch seconds on
        the server's clock, or ``None``.

        Informational: expiry is measured from when the token arrived (``obtained_at``
        plus ``expires_in``), on this machine's monotonic clock, so a server clock that
        differs from ours never makes a token look older or younger than it is.
        """
        return epoch_seconds(self.extra.get("issued_at"))

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible id of the access token, safe to log."""
        return hashlib.sha256(self.access_token.encode()).hexdigest()[:12]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return self.access_token == other.access_token

    def __hash__(self) -> int:
        return hash(self.access_token)

    def __repr__(self) -> str:
        return (
            f"Token(type={self.token_type!r}, lifetime={self.lifetime!r}, "
            f"fingerprint={self.fingerprint!r})"
        )

    __str__ = __repr__
