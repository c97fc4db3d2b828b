"""OAuth2 client credentials for any token endpoint: :class:`ClientCredentialsAuth`.

Example::

    auth = ClientCredentialsAuth("https://auth.example.com/oauth2/token", "id", "secret")
    requests.get("https://api.example.com/v1/orders", auth=auth)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from .auth import DeliveryAuth
from .cache.base import TokenCache, cache_key
from .cache.memory import MemoryTokenCache
from .engine import TokenEngine, TokenSource
from .events import EventHook
from .fetch import TokenFetcher
from .flow import FailureDetector
from .policy import BackoffPolicy, RefreshPolicy

__all__ = ["ClientCredentialsAuth"]

_CACHE_METHODS = ("get", "set", "delete_if", "lock")
#: The policy of every object built with the default refresh arguments (it is immutable).
_DEFAULT_REFRESH = RefreshPolicy()
_DEFAULT_REFRESH_ARGS = (
    _DEFAULT_REFRESH.refresh_margin,
    _DEFAULT_REFRESH.refresh_ratio,
    _DEFAULT_REFRESH.max_age,
)


def _is_token_cache(cache: object) -> bool:
    """What ``isinstance(cache, TokenCache)`` answers, without the cost of a
    runtime-checkable protocol (several microseconds per object)."""
    return isinstance(cache, MemoryTokenCache) or all(
        callable(getattr(cache, name, None)) for name in _CACHE_METHODS
    )


class ClientCredentialsAuth(DeliveryAuth):
    """OAuth2 client-credentials auth for any token endpoint.

    Fetches a token on first use, shares it between every caller, refreshes it once
    ``refresh_ratio`` of its lifetime has passed (in the background, nobody waits),
    never sends it within ``refresh_margin`` seconds of expiry, and when the API
    answers 401 gets a fresh token and resends the request once.

    Example::

        auth = ClientCredentialsAuth(
            token_url="https://auth.example.com/oauth2/token",
            client_id=os.environ["CLIENT_ID"],
            client_secret=os.environ["CLIENT_SECRET"],
            scope=["orders:read"],
        )
        requests.get("https://api.example.com/v1/orders", auth=auth)
        async with httpx.AsyncClient(auth=auth) as client:
            await client.get("https://api.example.com/v1/orders")

    Args:
        token_url: the token endpoint; https, or http to a loopback host only.
        client_id: the client id.
        client_secret: the client secret.
        scope: a string or a sequence of strings (joined with spaces).
        token_endpoint_auth_method: ``"client_secret_post"`` (in the form) or
            ``"client_secret_basic"`` (HTTP Basic).
        token_params: extra fields sent on every token request.
        token_request_format: ``"form"`` (``application/x-www-form-urlencoded``, RFC
            6749) or ``"json"`` (the same fields as one JSON object of strings,
            ``Content-Type: application/json``, as USPS takes them).
        token_headers: extra headers sent on every token request (UPS's
            ``x-merchant-id``); not ``Content-Type``/``Content-Length``, nor
            ``Authorization`` with ``client_secret_basic``. Their values are never
            shown and count in the cache key (hashed).
        cache: where tokens are kept (default: a private :class:`MemoryTokenCache`).
        refresh_margin: see :class:`RefreshPolicy`.
        refresh_ratio: see :class:`RefreshPolicy`.
        max_token_age: see :class:`RefreshPolicy` (``max_age``).
        timeout: seconds for one token request.
        allowed_hosts: the hosts the token may be sent to (``None``: any https host).
        backoff: how transient token-endpoint failures are retried.
        failure_detector: what counts as "token rejected" (default: HTTP 401).
    """

    header_scheme = "Bearer"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | Sequence[str] | None = None,
        token_endpoint_auth_method: str = "client_secret_post",
        token_params: Mapping[str, object] | None = None,
        token_request_format: str = "form",
        token_headers: Mapping[str, str] | None = None,
        cache: TokenCache | None = None,
        refresh_margin: float = 60.0,
        refresh_ratio: float = 0.5,
        timeout: float = 10.0,
        allowed_hosts: Sequence[str] | str | None = None,
        max_token_age: float | None = None,
        backoff: BackoffPolicy | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        policy = _DEFAULT_REFRESH
        if (refresh_margin, refresh_ratio, max_token_age) != _DEFAULT_REFRESH_ARGS:
            policy = RefreshPolicy(
                refresh_margin=refresh_margin, refresh_ratio=refresh_ratio, max_age=max_token_age
            )
        grant_type, grant_params, grant_secrets = self._grant()
        fetcher = TokenFetcher(
            token_url,
            client_id,
            client_secret,
            scope=scope,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token_params=token_params,
            timeout=timeout,
            backoff=backoff,
            grant_type=grant_type,
            grant_params=grant_params,
            grant_secrets=grant_secrets,
            token_request_format=token_request_format,
            token_headers=token_headers,
        )
        if cache is None:
            cache = MemoryTokenCache()
        elif not _is_token_cache(cache):
            raise TypeError(
                f"cache must implement the TokenCache protocol (get, set, delete_if, lock), "
                f"got {type(cache).__name__}"
            )
        self._fetcher = fetcher
        self._secret_hash: str | None = None  # for _identity(), computed when first needed
        # What else tells tokens apart: the grant's own fields (secrets hashed) and
        # the token request's extra headers (hashed: they may hold keys).
        self._grant_identity = tuple(
            f"{name}={_digest(value) if name in grant_secrets else value}"
            for name, value in sorted({**grant_params, **grant_secrets}.items())
        )
        if grant_type != "client_credentials":  # another grant's token is another token
            self._grant_identity = (f"grant_type={grant_type}", *self._grant_identity)
        if fetcher.token_headers:
            headers = sorted((name.lower(), value) for name, value in fetcher.token_headers.items())
            self._grant_identity += (f"headers={_digest(json.dumps(headers))}",)
        engine = self._make_engine(
            fetcher,
            cache=cache,
            key=cache_key(
                token_url,
                client_id,
                client_secret,
                fetcher.scope,
                fetcher.params,
                identity=self._grant_identity,
            ),
            policy=policy,
        )
        super().__init__(
            engine,
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )

    def _grant(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """The grant the token requests ask for: its type, its fields, and those of its
        fields that are secrets (never shown, hashed in the cache key). A subclass for
        another grant returns its own (:class:`~delivery_auth.PasswordGrantAuth`)."""
        return "client_credentials", {}, {}

    def _make_engine(
        self, fetcher: TokenFetcher, *, cache: TokenCache, key: str, policy: RefreshPolicy
    ) -> TokenEngine:
        """The engine behind this object. A provider whose credential needs no token
        request (an API key) returns an engine that holds it and never renews it."""
        scheme = self.header_scheme
        backoff = fetcher.backoff
        return TokenEngine(
            self._token_source(fetcher),
            cache=cache,
            key=key,
            policy=policy,
            format_header=lambda token: f"{scheme} {token.access_token}",
            # a lock holder may take every attempt, each up to the timeout, plus back-off
            lock_timeout=backoff.attempts * (fetcher.timeout + backoff.max_delay) + 5.0,
        )

    def _token_source(self, fetcher: TokenFetcher) -> TokenSource:
        """Where the engine gets tokens; providers may wrap the fetcher (e.g. to check
        the server's clock or to use another grant)."""
        return fetcher

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return self._fetcher.token_url

    @property
    def client_id(self) -> str:
        """The client id (not a secret)."""
        return self._fetcher.client_id

    def _identity(self) -> tuple[object, ...]:
        fetcher = self._fetcher
        if self._secret_hash is None:
            self._secret_hash = hashlib.sha256(fetcher._client_secret.encode()).hexdigest()
        return (
            fetcher.token_url,
            fetcher.client_id,
            self._secret_hash,
            fetcher.scope,
            tuple(sorted(fetcher.params.items())),
            fetcher.auth_method,
            fetcher.request_format,
            self._grant_identity,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token_url={self.token_url!r}, client_id={self.client_id!r})"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
