"""How the shared caches store a token: a small JSON record, optionally Fernet-encrypted.

A token crosses process (and machine) boundaries here, and only the wall clock is shared
between processes: a record keeps ``issued_at`` (wall clock) and ``lifetime``, and a
reader rebuilds the monotonic ``obtained_at`` of its own process from them.

Example::

    codec = TokenCodec(encryption_key=Fernet.generate_key())
    sealed = codec.seal(token)          # {"v": 1, "fernet": "gAAAA…"}: JSON-able, no clear token
    codec.unseal(sealed) == token       # True
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from ..token import Token

__all__ = [
    "CacheRecordError",
    "EncryptionKey",
    "TokenCodec",
    "WarnOnce",
    "remaining_lifetime",
    "token_fingerprint",
]

logger = logging.getLogger("delivery_auth")

#: Version of the record layout; a record with another version is ignored (a miss).
RECORD_VERSION = 1
_FERNET_PREFIX = "fernet:"


class _Cipher(Protocol):
    """What we need of :class:`cryptography.fernet.Fernet` (``MultiFernet`` fits too)."""

    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, token: bytes | str) -> bytes: ...


#: A Fernet key (``Fernet.generate_key()``, bytes or str) or a ready ``Fernet`` /
#: ``MultiFernet`` object (for key rotation).
EncryptionKey = str | bytes | _Cipher


class CacheRecordError(ValueError):
    """A stored record cannot be used; the message says why (never the token)."""


def token_fingerprint(token: Token) -> str:
    """A full SHA-256 of the access token: compare-and-delete compares these, never tokens."""
    return hashlib.sha256(token.access_token.encode()).hexdigest()


def _make_cipher(key: EncryptionKey) -> _Cipher:
    if not isinstance(key, (str, bytes)):
        if callable(getattr(key, "encrypt", None)) and callable(getattr(key, "decrypt", None)):
            return key
        raise TypeError(
            "encryption_key must be a Fernet key (bytes or str, from Fernet.generate_key()) "
            f"or a Fernet/MultiFernet object, got {type(key).__name__}"
        )
    try:
        from cryptography.fernet import Fernet
    except ImportError:  # pragma: no cover - cryptography comes with authlib
        raise ImportError(
            "encryption_key needs the 'cryptography' package: pip install cryptography"
        ) from None
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        # Fernet's own message is fine, but never echo the key: it is a secret.
        raise ValueError(
            "encryption_key is not a valid Fernet key: it must be 32 url-safe base64-encoded "
            "bytes; make one with cryptography.fernet.Fernet.generate_key()"
        ) from None


def _json_safe(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The members of ``extra`` that survive a JSON round trip (others are dropped)."""
    safe: dict[str, Any] = {}
    for name, value in extra.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            logger.debug("Token field %r is not JSON-able; it is not stored in the cache", name)
            continue
        safe[str(name)] = value
    return safe


def _number(record: Mapping[str, Any], name: str, *, optional: bool) -> float | None:
    value = record.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CacheRecordError(f"the stored token has an invalid {name}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        raise CacheRecordError(f"the stored token has an invalid {name}") from None
    if not math.isfinite(number):
        raise CacheRecordError(f"the stored token has an invalid {name}")
    return number


def _optional_str(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise CacheRecordError(f"the stored token has an invalid {name}")
    return value


class TokenCodec:
    """Turns tokens into JSON-able records and back, encrypting them when given a key.

    Without a key a record holds the token in clear (protect the file or the Redis
    server); with a key it holds only Fernet ciphertext, and a reader without the key
    (or with another key) cannot use it: :meth:`unseal` raises :class:`CacheRecordError`.

    Example::

        codec = TokenCodec()
        codec.unseal(codec.seal(token)).lifetime == token.lifetime   # True
    """

    def __init__(self, encryption_key: EncryptionKey | None = None) -> None:
        self._cipher = None if encryption_key is None else _make_cipher(encryption_key)

    @property
    def encrypted(self) -> bool:
        """Whether records are encrypted."""
        return self._cipher is not None

    def seal(self, token: Token) -> dict[str, Any]:
        """A JSON-able record of ``token`` (its ``obtained_at`` is not kept: see module doc)."""
        # No refresh token, ever: no engine reads one back from a shared cache (a provider
        # that renews with one keeps it in its own process), and a cache without a key
        # must hold nothing but the access token.
        body: dict[str, Any] = {
            "access_token": token.access_token,
            "token_type": token.token_type,
            "lifetime": token.lifetime,
            "issued_at": token.issued_at,
            "scope": token.scope,
        }
        if self._cipher is None:
            return {"v": RECORD_VERSION, "token": body}
        body["extra"] = _json_safe(token.extra)  # may hold anything the server sent
        plain = json.dumps(body, separators=(",", ":")).encode()
        return {"v": RECORD_VERSION, "fernet": self._cipher.encrypt(plain).decode("ascii")}

    def unseal(self, record: object) -> Token:
        """The token in ``record``, timed for this process. Raises :class:`CacheRecordError`."""
        if not isinstance(record, Mapping) or record.get("v") != RECORD_VERSION:
            raise CacheRecordError("the stored token is not a delivery-auth token record")
        ciphertext = record.get("fernet")
        if ciphertext is not None:
            body = self._decrypt(ciphertext)
        elif self._cipher is not None:
            raise CacheRecordError(
                "the stored token is not encrypted but this cache has an encryption_key; "
                "it is ignored (it was written by a process without the key)"
            )
        else:
            body = record.get("token")
        return self._token(body)

    def _decrypt(self, ciphertext: object) -> object:
        if self._cipher is None:
            raise CacheRecordError(
                "the stored token is encrypted: pass the same encryption_key to read it"
            )
        if not isinstance(ciphertext, str):
            raise CacheRecordError("the stored token is not a delivery-auth token record")
        try:
            plain = self._cipher.decrypt(ciphertext.encode("ascii"))
        except Exception:  # InvalidToken, or a non-ASCII / malformed ciphertext
            raise CacheRecordError(
                "the stored token cannot be decrypted with this encryption_key "
                "(another key, or a damaged record)"
            ) from None
        try:
            return json.loads(plain)
        except ValueError:
            raise CacheRecordError("the decrypted token record is not valid JSON") from None

    @staticmethod
    def _token(body: object) -> Token:
        if not isinstance(body, Mapping):
            raise CacheRecordError("the stored token is not a delivery-auth token record")
        access_token = body.get("access_token")
        if (
            not isinstance(access_token, str)
            or not access_token.strip()
            or any(ch in access_token for ch in "\r\n\x00")
        ):
            raise CacheRecordError("the stored token has an invalid access_token")
        token_type = body.get("token_type")
        if not isinstance(token_type, str) or not token_type.strip():
            raise CacheRecordError("the stored token has an invalid token_type")
        lifetime = _number(body, "lifetime", optional=True)
        if lifetime is not None and lifetime <= 0:
            raise CacheRecordError("the stored token has an invalid lifetime")
        issued_at = _number(body, "issued_at", optional=False)
        assert issued_at is not None
        extra = body.get("extra", {})
        if not isinstance(extra, Mapping):
            raise CacheRecordError("the stored token has an invalid extra")
        # Only the wall clock is shared between processes. A negative age (our clock is
        # behind the writer's, or it jumped back) counts as zero: the token then lives
        # its advertised lifetime from now on, never longer, and never forever.
        age = max(0.0, time.time() - issued_at)
        return Token(
            access_token=access_token,
            token_type=token_type,
            lifetime=lifetime,
            obtained_at=time.monotonic() - age,
            issued_at=issued_at,
            refresh_token=_optional_str(body, "refresh_token"),
            scope=_optional_str(body, "scope"),
            extra=dict(extra),
        )


def remaining_lifetime(token: Token) -> float | None:
    """Seconds until ``token`` expires (negative: expired; ``None``: unknown lifetime)."""
    expires_at = token.expires_at
    return None if expires_at is None else expires_at - time.monotonic()


class WarnOnce:
    """Logs a WARNING the first time a condition is seen, not again until it clears.

    A shared cache that is broken is consulted on every refresh: one line per outage or
    per bad file is what an operator needs, not one per request.
    """

    def __init__(self) -> None:
        self._active: set[str] = set()
        self._guard = threading.Lock()

    def warn(self, condition: str, message: str, *args: object) -> bool:
        """Log ``message`` unless ``condition`` is already active; True if it logged."""
        with self._guard:
            if condition in self._active:
                return False
            self._active.add(condition)
        logger.warning(message, *args, stacklevel=2)
        return True

    def clear(self, condition: str) -> bool:
        """Forget ``condition``; True if it was active."""
        with self._guard:
            if condition in self._active:
                self._active.discard(condition)
                return True
            return False

    def reset_after_fork(self) -> None:
        """A lock held by a parent thread is dead in the child: make a new one."""
        self._guard = threading.Lock()
