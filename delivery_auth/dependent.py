"""A dependent second token: obtained with the first one, sent in its own header on some
requests, refreshed on its own schedule, re-minted once when the API rejects a request
that carried it.

USPS is the model: label requests carry, besides ``Authorization: Bearer``, an
``X-Payment-Authorization-Token`` that is obtained by a request authorised with the
bearer token. :class:`DependentToken` is that, for any API:

- a second :class:`~delivery_auth.engine.TokenEngine` (single flight, cache, refresh
  ahead, shared caches) whose source, :class:`DependentTokenSource`, obtains the token
  with the first token's lease (``obtain(lease) -> Token``; when the first token is
  refused there, :class:`FirstTokenRejected`, it is dropped and the request made once
  more with a fresh one);
- a rule, ``applies(method, url)``, for which requests carry it;
- on a rejection of a request that carried it, the flow drops the first token as
  always, and the resend carries a fresh first token *and* a fresh second one: the API
  does not say which of the two it refused, and the second was obtained with the first.

Example::

    auth = ClientCredentialsAuth(token_url, client_id, client_secret)
    DependentToken.attach(
        auth,
        obtain=lambda lease: fetch_payment_token(lease.header),   # -> Token
        header="X-Payment-Authorization-Token",
        applies=lambda method, url: "/labels/" in url,
    )
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ._decorate import Decoration, OutgoingRequest
from .auth import DeliveryAuth
from .cache.base import TokenCache
from .cache.memory import MemoryTokenCache
from .engine import Lease, TokenEngine
from .errors import DeliveryAuthError, TokenEndpointUnavailableError, TokenRequestError
from .hosts import check_endpoint_url
from .policy import RefreshPolicy
from .token import MAX_LIFETIME, Token, jwt_expiry

__all__ = ["DependentToken", "DependentTokenSource", "FirstTokenRejected", "JsonTokenRequest"]


class FirstTokenRejected(DeliveryAuthError):
    """Raised by an ``obtain`` function when the endpoint refused the first token."""


class DependentTokenSource:
    """The second engine's token source: ``obtain(first_lease) -> Token``.

    When ``obtain`` raises :class:`FirstTokenRejected`, the first token is dropped from its
    engine and ``obtain`` is called once more with a fresh one.
    """

    __slots__ = ("_close", "_obtain", "_primary")

    def __init__(
        self,
        primary: TokenEngine,
        obtain: Callable[[Lease], Token],
        close: Callable[[], None] | None = None,
    ) -> None:
        self._primary = primary
        self._obtain = obtain
        self._close = close

    def fetch(self) -> Token:
        lease = self._primary.current()
        try:
            return self._obtain(lease)
        except FirstTokenRejected:
            if not self._primary.invalidate(lease.token):
                raise
            return self._obtain(self._primary.current(fresh=True))

    def close(self) -> None:
        if self._close is not None:
            self._close()

    def reset_after_fork(self) -> None:
        """Let ``obtain`` drop what it cannot use in a child process (its HTTP client)."""
        reset = getattr(self._obtain, "reset_after_fork", None)
        if reset is not None:
            reset()


class DependentToken:
    """The :class:`~delivery_auth._decorate.RequestDecorator` of a dependent token.

    ``engine`` holds the second token (its source obtains it with the first; see
    :meth:`attach` to build both); ``header`` is where it goes, formatted by ``format``
    (default: the token itself); ``applies(method, url)`` says which requests carry it.
    """

    needs_body = False

    def __init__(
        self,
        engine: TokenEngine,
        *,
        header: str,
        applies: Callable[[str, str], bool],
    ) -> None:
        self.engine = engine
        self.header = header
        self.applies = applies

    @classmethod
    def attach(
        cls,
        auth: DeliveryAuth,
        *,
        obtain: Callable[[Lease], Token],
        header: str,
        applies: Callable[[str, str], bool],
        policy: RefreshPolicy | None = None,
        cache: TokenCache | None = None,
        key: str | None = None,
        close: Callable[[], None] | None = None,
    ) -> DependentToken:
        """Give ``auth`` a dependent token; returns it (``.engine`` holds the token).

        ``obtain(first_lease) -> Token`` gets a new second token (see
        :class:`JsonTokenRequest` for the common "POST JSON, read one field" case);
        ``policy`` schedules its refresh (default :class:`RefreshPolicy`); ``cache`` and
        ``key`` share it between processes (default: in memory). ``auth.close()``
        also closes it, and ``close`` (default: ``obtain.close`` when it has one).
        """
        if auth._decorator is not None:
            raise ValueError(f"{type(auth).__name__} already decorates its requests")
        primary = auth._engine
        engine = TokenEngine(
            DependentTokenSource(primary, obtain, close or getattr(obtain, "close", None)),
            cache=cache or MemoryTokenCache(),
            key=key or f"dependent-{header.lower()}-{id(auth):x}",
            policy=policy or RefreshPolicy(),
            format_header=lambda token: token.access_token,
        )
        engine.attach(auth._events)  # its fetches are reported as the auth object's
        dependent = cls(engine, header=header, applies=applies)
        auth._decorator = dependent
        return dependent

    def _decoration(self, lease: Lease, second: Lease | None) -> Decoration:
        headers = {"Authorization": lease.header}
        if second is None:
            return Decoration(lease, headers)
        headers[self.header] = second.header
        return Decoration(lease, headers, memo=second.token)

    def decorate(
        self, lease: Lease, request: OutgoingRequest, rejected: Decoration | None
    ) -> Decoration:
        if not self.applies(request.method, request.url):
            return self._decoration(lease, None)
        if rejected is not None and rejected.memo is not None:
            self.engine.invalidate(rejected.memo)  # re-minted with the fresh first token
        return self._decoration(lease, self.engine.current(fresh=rejected is not None))

    async def adecorate(
        self, lease: Lease, request: OutgoingRequest, rejected: Decoration | None
    ) -> Decoration:
        if not self.applies(request.method, request.url):
            return self._decoration(lease, None)
        if rejected is not None and rejected.memo is not None:
            await self.engine.ainvalidate(rejected.memo)
        return self._decoration(lease, await self.engine.acurrent(fresh=rejected is not None))

    def close(self) -> None:
        """Stop the second engine (and its ``obtain``'s resources)."""
        self.engine.close()


class JsonTokenRequest:
    """``obtain`` for a dependent token: POST ``body`` as JSON to ``url`` with the first
    token's ``Authorization`` header and read the token from the answer's ``field``.

    Its lifetime is the JWT ``exp`` when the token is a JWT, else ``lifetime`` seconds
    (capped by it either way). A 401 raises :class:`FirstTokenRejected`; 429 and 5xx a
    :class:`~delivery_auth.TokenEndpointUnavailableError`; any other refusal a
    :class:`~delivery_auth.TokenRequestError` naming ``what`` and the status.

    Example::

        JsonTokenRequest("https://apis.usps.com/payments/v3/payment-authorization",
                         {"roles": roles}, field="paymentAuthorizationToken",
                         lifetime=3000, what="USPS payment authorization")
    """

    def __init__(
        self,
        url: str,
        body: Mapping[str, Any],
        *,
        field: str,
        lifetime: float,
        what: str,
        timeout: float = 10.0,
    ) -> None:
        self.url = check_endpoint_url(url, "url")
        self._body = json.dumps(body, separators=(",", ":")).encode()
        self.field = field
        self.lifetime = min(float(lifetime), MAX_LIFETIME)
        self.what = what
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def body_digest(self) -> str:
        """A short digest of the body (for cache keys: roles differ, tokens differ)."""
        return hashlib.sha256(self._body).hexdigest()[:16]

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout)
            return self._client

    def __call__(self, lease: Lease) -> Token:
        headers = {
            "Authorization": lease.header,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            response = self._http().post(self.url, content=self._body, headers=headers)
        except httpx.HTTPError as exc:
            raise TokenEndpointUnavailableError(
                f"{self.what} request to {self.url} failed ({type(exc).__name__}); try again.",
                token_url=self.url,
            ) from None
        status = response.status_code
        if status == 401:
            raise FirstTokenRejected(f"{self.url} refused the first token (HTTP 401)")
        if status == 429 or status >= 500:
            raise TokenEndpointUnavailableError(
                f"{self.what} at {self.url} answered HTTP {status}; try again later.",
                token_url=self.url,
                status_code=status,
            )
        value = _field(response, self.field) if status == 200 else None
        if value is None:
            raise TokenRequestError(
                f"{self.what} at {self.url} answered HTTP {status} without a "
                f"{self.field!r}: check that the account may use it (and its request body).",
                token_url=self.url,
                status_code=status,
            )
        lifetime = self.lifetime
        exp = jwt_expiry(value)
        if exp is not None:
            lifetime = min(lifetime, max(exp - time.time(), 1.0))
        return Token(access_token=value, token_type="Dependent", lifetime=lifetime)  # noqa: S106

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def reset_after_fork(self) -> None:
        # The parent's connections are not ours to close: forget them.
        self._client = None
        self._lock = threading.Lock()


def _field(response: httpx.Response, name: str) -> str | None:
    try:
        payload = response.json()
    except ValueError:
        return None
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\x00"):
        return None
    return value
