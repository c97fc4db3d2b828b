"""Self-signed JWTs: :class:`SelfSignedJWTAuth` mints its own bearer token.

Some APIs hand out no tokens: the client signs a short-lived JWT with a key it shares
with the API (DoorDash Drive) or whose public half the API knows. The token is minted
locally by :class:`JWTMinter`, a token source of the ordinary engine, so it is cached
and shared like a fetched token: one mint for every concurrent caller, a new one in
the background shortly before ``exp``, never sent within ``refresh_margin`` of it, and
one re-mint and one resend when the API rejects it. ``token_requests`` counts mints.

Signing is done by `joserfc <https://jose.authlib.org/>`_, the JOSE library of the
Authlib project (Authlib, which delivery-auth already uses, depends on it).

Example::

    auth = SelfSignedJWTAuth(
        os.environ["SIGNING_KEY"].encode(),
        algorithm="HS256",
        issuer="my-client",
        audience="api.example.com",
        lifetime=300,
        headers={"kid": "key-1"},
    )
    requests.get("https://api.example.com/v1/orders", auth=auth)
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from .auth import DeliveryAuth
from .cache.base import TokenCache
from .cache.memory import MemoryTokenCache
from .engine import TokenEngine
from .events import EventHook
from .flow import FailureDetector
from .policy import RefreshPolicy
from .token import Token

__all__ = ["JWTMinter", "SelfSignedJWTAuth", "check_lifetime"]

JoseKey = OctKey | RSAKey | ECKey | OKPKey

#: The algorithm family -> joserfc key type.
_KEY_TYPES: Mapping[str, str] = {"HS": "oct", "RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_KEY_CLASSES: Mapping[str, type[JoseKey]] = {
    "oct": OctKey,
    "RSA": RSAKey,
    "EC": ECKey,
    "OKP": OKPKey,
}
#: Claims the minter sets itself on every token.
_MINTED_CLAIMS = frozenset({"iat", "exp", "jti"})


def _key_type(algorithm: str) -> str:
    supported = sorted(name for name in JWSRegistry.algorithms if name != "none")
    if not isinstance(algorithm, str) or algorithm not in supported:
        raise ValueError(f"algorithm must be one of {', '.join(supported)}; got {algorithm!r}")
    return _KEY_TYPES[algorithm[:2]]


def _import(key: bytes | str | JoseKey, algorithm: str) -> JoseKey:
    """The signing key as joserfc wants it; errors never show key material."""
    key_type = _key_type(algorithm)
    if isinstance(key, (OctKey, RSAKey, ECKey, OKPKey)):
        imported: JoseKey = key
    elif isinstance(key, (bytes, str)):
        if not key:
            raise ValueError("key must not be empty")
        try:
            if key_type == "oct":  # an HMAC secret: its bytes (a str: its UTF-8 bytes)
                imported = OctKey.import_key(key.encode() if isinstance(key, str) else key)
            else:  # a PEM private key
                imported = _KEY_CLASSES[key_type].import_key(key)
        except (JoseError, ValueError, TypeError):
            what = "an HMAC secret" if key_type == "oct" else f"a PEM {key_type} private key"
            raise ValueError(
                f"key is not {what} usable with {algorithm}; check the key (not shown)."
            ) from None
    else:
        raise TypeError(f"key must be bytes, str or a joserfc key, got {type(key).__name__}")
    if imported.key_type != key_type:
        raise ValueError(f"{algorithm} needs a {key_type} key, got a {imported.key_type} key")
    if key_type != "oct" and not imported.is_private:
        raise ValueError(f"{algorithm} signs with a private key; key is a public key")
    return imported


def check_lifetime(lifetime: float, limit: float | None = None) -> float:
    """``lifetime`` as float seconds, or a ``ValueError`` saying it must be positive
    (and at most ``limit``, for providers that cap it)."""
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, (int, float))
        or not math.isfinite(lifetime)
        or lifetime <= 0
        or (limit is not None and lifetime > limit)
    ):
        most = f" of at most {limit:g}" if limit is not None else ""
        raise ValueError(f"lifetime must be a positive number of seconds{most}, got {lifetime!r}")
    return float(lifetime)


class JWTMinter:
    """A token source that signs a new JWT on every :meth:`fetch`.

    Each token carries ``claims`` plus ``iat`` (the current second, rounded down),
    ``exp`` (``iat`` plus ``lifetime`` rounded down, at least 1 s) and, with ``unique``, a
    random ``jti`` so that no two mints are the same token (a rejected token is never
    sent again, even when the next one is minted within the same second).
    """

    #: what the events call where its tokens come from (no token endpoint)
    kind = "minted"

    __slots__ = (
        "_clock",
        "_header",
        "_key",
        "_registry",
        "_unique",
        "algorithm",
        "claims",
        "lifetime",
    )

    def __init__(
        self,
        key: JoseKey,
        *,
        algorithm: str,
        claims: Mapping[str, Any],
        header: Mapping[str, Any],
        lifetime: float,
        unique: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.algorithm = algorithm
        self.claims = dict(claims)
        self._header = {"alg": algorithm, **header}
        self.lifetime = lifetime
        self._unique = unique
        self._clock = clock
        # Extra header members (DoorDash's "dd-ver") are not in joserfc's registry.
        self._registry = JWSRegistry(algorithms=[algorithm], strict_check_header=False)

    def fetch(self) -> Token:
        """Sign a new token, valid from now for ``lifetime`` seconds."""
        now, obtained_at = self._clock(), time.monotonic()
        issued = math.floor(now)
        expires = issued + max(1, math.floor(self.lifetime))
        claims = {**self.claims, "iat": issued, "exp": expires}
        if self._unique:
            claims["jti"] = secrets.token_urlsafe(16)
        value = jwt.encode(self._header, claims, self._key, registry=self._registry)
        return Token(
            access_token=value,
            lifetime=expires - now,
            obtained_at=obtained_at,
            issued_at=now,
        )

    def close(self) -> None:
        """Nothing to release."""

    def reset_after_fork(self) -> None:
        """Nothing to reset."""


class SelfSignedJWTAuth(DeliveryAuth):
    """A bearer JWT that this object signs itself, cached until shortly before ``exp``.

    Every token carries ``claims`` (plus ``iss``, ``sub``, ``aud`` from ``issuer``,
    ``subject``, ``audience``), ``iat``, ``exp = iat + lifetime`` (whole seconds, rounded
    down, at least 1) and a random ``jti`` (``unique=False`` leaves it out); its header is ``{"alg":
    algorithm, "typ": "JWT"}`` updated with ``headers``. A token is re-minted in the
    background once ``refresh_ratio`` of its lifetime has passed, never sent within
    ``refresh_margin`` seconds of its ``exp`` (capped at a quarter of the lifetime), and
    re-minted once, with one resend, when the API rejects it. ``token_requests``
    counts the tokens minted.

    Example::

        auth = SelfSignedJWTAuth(
            base64.urlsafe_b64decode(secret + "=="),
            algorithm="HS256",
            claims={"aud": "doordash", "iss": developer_id, "kid": key_id},
            headers={"dd-ver": "DD-JWT-V1"},
            lifetime=300,
            allowed_hosts=["openapi.doordash.com"],
        )
        requests.get("https://openapi.doordash.com/drive/v2/deliveries/D-1", auth=auth)
        async with httpx.AsyncClient(auth=auth) as client:
            await client.get("https://openapi.doordash.com/drive/v2/deliveries/D-1")

    Args:
        key: an HMAC secret (bytes; a str is taken as its UTF-8 bytes) for ``HS*``, a
            PEM private key (bytes or str) for ``RS*``, ``PS*``, ``ES*``, ``EdDSA``, or
            a joserfc key object.
        algorithm: the JWS ``alg`` (``HS256``, ``RS256``, ``ES256``, ...).
        claims: claims every token carries; ``iat``, ``exp`` and ``jti`` are the
            minter's own and may not be given.
        issuer: shorthand for the ``iss`` claim.
        subject: shorthand for the ``sub`` claim.
        audience: shorthand for the ``aud`` claim.
        lifetime: seconds from ``iat`` to ``exp`` (any positive number).
        headers: extra JOSE header members (``kid``, or a provider's own); ``alg`` is
            set by ``algorithm``.
        unique: add a random ``jti`` claim, so that a re-mint within the same second is
            a different token (the API rejected the last one).
        scheme: the ``Authorization`` scheme (``"Bearer"``).
        cache: where tokens are kept (default: a private :class:`MemoryTokenCache`).
        refresh_margin: see :class:`RefreshPolicy`.
        refresh_ratio: see :class:`RefreshPolicy`.
        max_token_age: see :class:`RefreshPolicy` (``max_age``).
        allowed_hosts: the hosts the token may be sent to (``None``: any https host).
        failure_detector: what counts as "token rejected" (default: HTTP 401).
    """

    def __init__(
        self,
        key: bytes | str | JoseKey,
        *,
        algorithm: str = "HS256",
        claims: Mapping[str, Any] | None = None,
        issuer: str | None = None,
        subject: str | None = None,
        audience: str | Sequence[str] | None = None,
        lifetime: float = 300.0,
        headers: Mapping[str, Any] | None = None,
        unique: bool = True,
        scheme: str = "Bearer",
        cache: TokenCache | None = None,
        refresh_margin: float = 30.0,
        refresh_ratio: float = 0.8,
        max_token_age: float | None = None,
        allowed_hosts: Sequence[str] | str | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        signing_key = _import(key, algorithm)
        lifetime = check_lifetime(lifetime)
        all_claims = dict(claims or {})
        for name, value in (("iss", issuer), ("sub", subject), ("aud", audience)):
            if value is not None:
                all_claims[name] = value if isinstance(value, str) else list(value)
        reserved = sorted(_MINTED_CLAIMS & set(all_claims))
        if reserved:
            raise ValueError(
                f"claims may not set {', '.join(reserved)}: each token gets its own "
                "(iat now, exp from lifetime, jti at random)"
            )
        header = {"typ": "JWT", **(headers or {})}
        if "alg" in header:
            raise ValueError("headers may not set 'alg'; pass algorithm= instead")
        for name, members in (("claims", all_claims), ("headers", header)):
            try:
                json.dumps(members, sort_keys=True)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be JSON-serialisable: {exc}") from None
        if not isinstance(scheme, str) or not scheme.strip() or " " in scheme.strip():
            raise ValueError(f"scheme must be one word such as 'Bearer', got {scheme!r}")
        if cache is not None and not isinstance(cache, TokenCache):
            raise TypeError(
                f"cache must implement the TokenCache protocol (get, set, delete_if, lock), "
                f"got {type(cache).__name__}"
            )
        self._minter = JWTMinter(
            signing_key,
            algorithm=algorithm,
            claims=all_claims,
            header=header,
            lifetime=lifetime,
            unique=unique,
        )
        # The key's RFC 7638 thumbprint (a hash) stands for it in the cache key.
        material = json.dumps(
            ["self-signed-jwt", algorithm, signing_key.thumbprint(), header, all_claims, lifetime],
            sort_keys=True,
            separators=(",", ":"),
        )
        self._key_id = hashlib.sha256(material.encode()).hexdigest()[:32]
        scheme = scheme.strip()
        engine = TokenEngine(
            self._minter,
            cache=cache if cache is not None else MemoryTokenCache(),
            key=self._key_id,
            policy=RefreshPolicy(
                refresh_margin=refresh_margin, refresh_ratio=refresh_ratio, max_age=max_token_age
            ),
            format_header=lambda token: f"{scheme} {token.access_token}",
            lock_timeout=10.0,  # minting is local: a lock holder is done in milliseconds
        )
        super().__init__(
            engine,
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )

    @property
    def algorithm(self) -> str:
        """The JWS algorithm tokens are signed with."""
        return self._minter.algorithm

    @property
    def lifetime(self) -> float:
        """Seconds from a token's ``iat`` to its ``exp``."""
        return self._minter.lifetime

    @property
    def claims(self) -> Mapping[str, Any]:
        """The claims every token carries besides ``iat``, ``exp`` and ``jti`` (no secret)."""
        return dict(self._minter.claims)

    def _identity(self) -> tuple[object, ...]:
        return (self._key_id,)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(algorithm={self.algorithm!r}, "
            f"claims={self._minter.claims!r}, lifetime={self.lifetime!r})"
        )
