"""OAuth2 resource-owner password grant for any token endpoint: :class:`PasswordGrantAuth`.

Example::

    auth = PasswordGrantAuth(
        "https://auth.example.com/oauth2/token", "id", "secret", "user", "password"
    )
    requests.get("https://api.example.com/v1/orders", auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .cache.base import TokenCache
from .client_credentials import ClientCredentialsAuth
from .events import EventHook
from .flow import FailureDetector
from .policy import BackoffPolicy

__all__ = ["PasswordGrantAuth"]


class PasswordGrantAuth(ClientCredentialsAuth):
    """OAuth2 password-grant auth (RFC 6749 §4.3) for any token endpoint.

    Sends ``grant_type=password`` with ``username`` and ``password`` and the client
    credentials, and gives the token the engine's care, as for client credentials:
    one token request however many callers wait (single flight), shared caches,
    refresh ahead of expiry, one fresh token and one resend when the API answers 401.
    A new token is always asked for with the password grant again; a refresh token in
    the answer is kept in :attr:`Token.refresh_token` but not used.

    The password is a secret like the client secret: never in an error, a log line or
    the ``repr`` (even when the server echoes it), and part of the cache key only as a
    hash, so two users of one client never share a token. A wrong username or password
    (HTTP 401, or ``invalid_grant``) raises :class:`~delivery_auth.InvalidClientError`.

    Example::

        auth = PasswordGrantAuth(
            token_url="https://auth.example.com/oauth2/token",
            client_id=os.environ["CLIENT_ID"],
            client_secret=os.environ["CLIENT_SECRET"],
            username=os.environ["API_USER"],
            password=os.environ["API_PASSWORD"],
        )
        requests.get("https://api.example.com/v1/orders", auth=auth)

    Args:
        token_url: as for :class:`ClientCredentialsAuth`.
        client_id: as for :class:`ClientCredentialsAuth`.
        client_secret: as for :class:`ClientCredentialsAuth`.
        username: the resource owner's username.
        password: the resource owner's password.

    The keyword options are those of :class:`ClientCredentialsAuth` (``scope``,
    ``token_endpoint_auth_method``, ``token_request_format``, ``token_headers``,
    ``cache``, ...).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        username: str,
        password: str,
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
        for name, value in (("username", username), ("password", password)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        self.username = username
        self._password = password
        super().__init__(
            token_url,
            client_id,
            client_secret,
            scope=scope,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token_params=token_params,
            token_request_format=token_request_format,
            token_headers=token_headers,
            cache=cache,
            refresh_margin=refresh_margin,
            refresh_ratio=refresh_ratio,
            timeout=timeout,
            allowed_hosts=allowed_hosts,
            max_token_age=max_token_age,
            backoff=backoff,
            failure_detector=failure_detector,
            on_event=on_event,
        )

    def _grant(self) -> tuple[str, dict[str, str], dict[str, str]]:
        return "password", {"username": self.username}, {"password": self._password}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token_url={self.token_url!r}, "
            f"client_id={self.client_id!r}, username={self.username!r})"
        )
