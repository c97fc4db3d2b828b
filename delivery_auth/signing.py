"""Per-request HMAC signing: a credential computed over each request, never cached.

:class:`HmacSigningAuth` signs every request with HMAC over its timestamp, method,
request target and exact body bytes, and puts the result in its headers. The string to
sign and the headers are pluggable (constructor callables, or override
:meth:`HmacSigningAuth.string_to_sign` and :meth:`HmacSigningAuth.signed_headers`), so it
serves APIs delivery-auth does not ship; :class:`~delivery_auth.LalamoveAuth` is one.

How it maps onto the engine: there is no token to fetch, but the flow's rules still
hold. The engine hands out *signing leases*, minted locally (no request, counted in
``token_requests``) and kept until the API rejects a signed request. A rejection
invalidates the lease; the one resend is signed again under a fresh lease, with a new
timestamp (strictly later than the rejected one), so the resend never carries the
rejected signature. Concurrent rejections of one lease mint one new lease.

The body: with requests the prepared body is signed (bytes, or a string encoded the way
urllib3 will send it); with httpx and httpx2 the bytes httpx will send (a ``files=``
multipart body is read first, as httpx's own ``requires_request_body`` does). A
generator, iterator or file body cannot be signed without using it up: that is an
:class:`~delivery_auth.UnsignableBodyError` before anything is sent.

Example::

    auth = HmacSigningAuth("key-id", "secret")   # Authorization: HMAC key-id:<ms>:<hex>
    requests.post("https://api.example.com/v1/orders", json={"id": 1}, auth=auth)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ._decorate import Decoration, OutgoingRequest, with_header
from .auth import DeliveryAuth
from .cache.memory import MemoryTokenCache
from .engine import Lease, TokenEngine
from .events import EventHook
from .flow import FailureDetector
from .policy import RefreshPolicy
from .token import Token

__all__ = ["HmacSigningAuth", "SigningInput"]

_UNITS = {"ms": 1000, "s": 1}


@dataclass(frozen=True, slots=True)
class SigningInput:
    """Everything a signature may cover, for one send of one request.

    ``method`` is upper-case; ``target`` is the path and ``?query`` as sent
    (percent-encoded); ``body`` the exact bytes (``b""`` for none); ``timestamp`` an
    integer in the auth object's ``timestamp_unit`` (milliseconds by default).
    """

    method: str
    url: str
    target: str
    body: bytes = field(repr=False)
    timestamp: int
    key_id: str


def default_string_to_sign(request: SigningInput) -> bytes:
    """``"{timestamp}\\n{METHOD}\\n{target}\\n"`` followed by the body bytes."""
    head = f"{request.timestamp}\n{request.method}\n{request.target}\n"
    return head.encode() + request.body


def default_signed_headers(request: SigningInput, signature: str) -> dict[str, str]:
    """``Authorization: HMAC {key_id}:{timestamp}:{signature}``."""
    return {"Authorization": f"HMAC {request.key_id}:{request.timestamp}:{signature}"}


class _SigningLeases:
    """The engine's token source for signing: a new lease id each time, no request."""

    #: what the events call where its tokens come from (no token endpoint)
    kind = "minted"

    __slots__ = ()

    def fetch(self) -> Token:
        # Not a secret: it only tells one signing lease from the next.
        return Token(access_token=f"signing-lease-{secrets.token_hex(8)}", token_type="HMAC")  # noqa: S106

    def close(self) -> None:
        """Nothing to release."""

    def reset_after_fork(self) -> None:
        """Nothing to reset."""


class _Signer:
    """The :class:`~delivery_auth._decorate.RequestDecorator` of :class:`HmacSigningAuth`."""

    needs_body = True

    def __init__(self, auth: HmacSigningAuth) -> None:
        self._auth = auth
        self._lock = threading.Lock()

    def decorate(
        self, lease: Lease, request: OutgoingRequest, rejected: Decoration | None
    ) -> Decoration:
        auth = self._auth
        timestamp = auth.timestamp()
        if rejected is not None:  # a resend: never the rejected signature again
            timestamp = max(timestamp, int(rejected.memo) + 1)
        assert request.body is not None  # needs_body: the adapters read it
        signing = SigningInput(
            request.method.upper(),
            request.url,
            request.target,
            request.body,
            timestamp,
            auth.key_id,
        )
        message = auth.string_to_sign(signing)
        if isinstance(message, str):
            message = message.encode()
        signature = hmac.new(auth._secret, message, auth.digest).hexdigest()
        headers = dict(auth.signed_headers(signing, signature))
        credential = auth.credential_header
        return Decoration(
            with_header(lease, headers.get(credential, "")),
            headers,
            credential_header=credential,
            memo=timestamp,
        )

    async def adecorate(
        self, lease: Lease, request: OutgoingRequest, rejected: Decoration | None
    ) -> Decoration:
        return self.decorate(lease, request, rejected)  # pure computation: no I/O


class HmacSigningAuth(DeliveryAuth):
    """Sign every request with HMAC; resend a rejected one once, signed anew.

    ``key_id`` names the key (sent in the header), ``secret`` signs (``str`` is UTF-8
    encoded). ``digest`` is any :mod:`hashlib` name (``"sha256"``). ``timestamp_unit``:
    ``"ms"`` (default) or ``"s"``. The format is pluggable:

    - ``string_to_sign(SigningInput) -> bytes | str`` (default:
      ``"{timestamp}\\n{METHOD}\\n{target}\\n" + body``),
    - ``signed_headers(SigningInput, hex_signature) -> {header: value}`` (default:
      ``Authorization: HMAC {key_id}:{timestamp}:{signature}``),

    or override the methods of the same names in a subclass. ``credential_header`` is
    the header that carries the signature (``Authorization``): the flow recognises its
    own requests by it. A rejection (``failure_detector``, default HTTP 401) gets one
    resend with a new timestamp and signature; ``token_requests`` counts signing leases
    (one at first, one more per rejection), never network requests.

    Example::

        auth = HmacSigningAuth(
            "key-id", "secret",
            string_to_sign=lambda r: f"{r.timestamp}{r.method}{r.target}".encode() + r.body,
            signed_headers=lambda r, sig: {
                "X-Key": r.key_id, "X-Timestamp": str(r.timestamp), "Authorization": sig},
            allowed_hosts=["api.example.com"],
        )
        with httpx.Client(auth=auth) as client:
            client.post("https://api.example.com/v1/orders", json={"id": 1})
    """

    # httpx's flag for "this auth needs the request body"; the adapters read it
    # themselves for signing (see delivery_auth._decorate), and only for this kind.
    requires_request_body = True

    def __init__(
        self,
        key_id: str,
        secret: str | bytes,
        *,
        digest: str = "sha256",
        timestamp_unit: str = "ms",
        string_to_sign: Callable[[SigningInput], bytes | str] | None = None,
        signed_headers: Callable[[SigningInput, str], Mapping[str, str]] | None = None,
        credential_header: str = "Authorization",
        allowed_hosts: Sequence[str] | str | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        if not isinstance(key_id, str) or not key_id.strip() or _has_control(key_id):
            raise ValueError("key_id must be a non-empty string without control characters")
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, bytes) or not secret:
            raise ValueError("secret must be a non-empty string or bytes")
        if digest not in hashlib.algorithms_available:
            raise ValueError(f"digest {digest!r} is not a hashlib algorithm (e.g. 'sha256')")
        if timestamp_unit not in _UNITS:
            raise ValueError(f"timestamp_unit must be 'ms' or 's', got {timestamp_unit!r}")
        self.key_id = key_id.strip()
        self._secret = secret
        self.digest = digest
        self.timestamp_unit = timestamp_unit
        self.credential_header = credential_header
        self._string_to_sign = string_to_sign
        self._signed_headers = signed_headers
        engine = TokenEngine(
            _SigningLeases(),
            cache=MemoryTokenCache(),  # leases mean nothing to another process
            key="signing-lease",
            policy=RefreshPolicy(),
            format_header=lambda token: token.access_token,
        )
        super().__init__(
            engine,
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )
        self._decorator = _Signer(self)

    def timestamp(self) -> int:
        """Now, as an integer in ``timestamp_unit`` (what the next signature carries)."""
        return time.time_ns() * _UNITS[self.timestamp_unit] // 1_000_000_000

    def string_to_sign(self, request: SigningInput) -> bytes | str:
        """The message to sign (override, or pass ``string_to_sign=``)."""
        if self._string_to_sign is not None:
            return self._string_to_sign(request)
        return default_string_to_sign(request)

    def signed_headers(self, request: SigningInput, signature: str) -> Mapping[str, str]:
        """The headers that carry ``signature`` (override, or pass ``signed_headers=``)."""
        if self._signed_headers is not None:
            return self._signed_headers(request, signature)
        return default_signed_headers(request, signature)

    def _identity(self) -> tuple[object, ...]:
        secret = hashlib.sha256(self._secret).hexdigest()
        custom = (self._string_to_sign, self._signed_headers)
        return (type(self), self.key_id, secret, self.digest, self.timestamp_unit, custom)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key_id={self.key_id!r}, digest={self.digest!r})"


def _has_control(value: str) -> bool:
    return any(ch in value for ch in "\r\n\x00")
