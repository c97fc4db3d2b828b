"""Uber Direct: OAuth2 client credentials in form fields; 30-day tokens, 100 token requests/hour.

``POST https://auth.uber.com/oauth/v2/token`` with the form fields ``client_id``,
``client_secret``, ``grant_type=client_credentials`` and ``scope=eats.deliveries``
(add ``direct.organizations`` for the Organizations API). Uber's general OAuth
reference names ``auth.uber.com``; Uber Direct's getting-started guide and its SDK
use ``login.uber.com`` (:data:`LOGIN_TOKEN_URL`): pass ``token_url=LOGIN_TOKEN_URL``
if the default is refused. A token lasts 30 days and cannot be refreshed, only
fetched again; Uber allows 100 token requests an hour and recommends sharing one
token between processes: give every process the same ``cache=`` (a
:class:`~delivery_auth.RedisTokenCache` or :class:`~delivery_auth.FileTokenCache`).
A 401 from ``api.uber.com`` gets one new token and one resend.

Example::

    auth = UberDirectAuth(client_id, client_secret, cache=RedisTokenCache(redis_url))
    requests.get(f"https://api.uber.com/v1/customers/{customer_id}/deliveries", auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cache.base import TokenCache
from ..client_credentials import ClientCredentialsAuth
from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS
from ..policy import BackoffPolicy
from .spec import EnvVar, ProviderSpec

__all__ = ["LOGIN_TOKEN_URL", "SPEC", "TOKEN_URL", "UberDirectAuth"]

#: Uber's OAuth reference.
TOKEN_URL = "https://auth.uber.com/oauth/v2/token"
#: Uber Direct's getting-started guide and its SDK.
LOGIN_TOKEN_URL = "https://login.uber.com/oauth/v2/token"
DEFAULT_SCOPE = "eats.deliveries"


class UberDirectAuth(ClientCredentialsAuth):
    """Auth for the Uber Direct (deliveries) API on ``api.uber.com``.

    ``scope``: a string or a sequence of scopes (``["eats.deliveries",
    "direct.organizations"]``). ``token_url``: :data:`TOKEN_URL` by default, or
    :data:`LOGIN_TOKEN_URL` (see the module). Test and production differ only in the
    credentials (the Dashboard's test-mode switch), not in hosts. ``allowed_hosts``
    defaults to ``api.uber.com`` plus loopback. The other options are those of
    :class:`~delivery_auth.ClientCredentialsAuth`; with a 30-day token the default
    policy fetches a new one after 15 days.

    Example::

        auth = UberDirectAuth.from_env(cache=FileTokenCache("/var/cache/uber-token"))
        with httpx.Client(auth=auth) as client:
            client.post(f"https://api.uber.com/v1/customers/{customer}/delivery_quotes", json=q)
    """

    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("api.uber.com", *LOOPBACK_HOSTS)

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        scope: str | Sequence[str] = DEFAULT_SCOPE,
        token_url: str = TOKEN_URL,
        cache: TokenCache | None = None,
        refresh_margin: float = 60.0,
        refresh_ratio: float = 0.5,
        timeout: float = 10.0,
        max_token_age: float | None = None,
        allowed_hosts: Sequence[str] | str | None = DEFAULT_ALLOWED_HOSTS,
        backoff: BackoffPolicy | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        super().__init__(
            token_url,
            client_id,
            client_secret,
            scope=scope,
            cache=cache,
            refresh_margin=refresh_margin,
            refresh_ratio=refresh_ratio,
            timeout=timeout,
            max_token_age=max_token_age,
            allowed_hosts=allowed_hosts,
            backoff=backoff,
            failure_detector=failure_detector,
            on_event=on_event,
        )
        if self._fetcher.scope is None:
            raise ValueError("scope must name at least one scope, e.g. 'eats.deliveries'")

    @property
    def scope(self) -> str:
        """The scopes asked for, space-separated."""
        return str(self._fetcher.scope)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> UberDirectAuth:
        """Build from ``UBER_DIRECT_CLIENT_ID``, ``UBER_DIRECT_CLIENT_SECRET`` and
        optionally ``UBER_DIRECT_SCOPE`` (space-separated scopes).

        Keyword ``overrides`` (e.g. ``token_url``) win over the environment.

        Example::

            auth = UberDirectAuth.from_env(token_url=LOGIN_TOKEN_URL)
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def __repr__(self) -> str:
        return (
            f"UberDirectAuth(client_id={self.client_id!r}, scope={self.scope!r}, "
            f"token_url={self.token_url!r})"
        )


SPEC = ProviderSpec(
    name="uber_direct",
    title="Uber Direct",
    auth_class=UberDirectAuth,
    env=(
        EnvVar("UBER_DIRECT_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar("UBER_DIRECT_CLIENT_SECRET", "client_secret", required=True, field="client_secret"),
        EnvVar("UBER_DIRECT_SCOPE", "scope", help="default eats.deliveries"),
    ),
    default_hosts=UberDirectAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal="HTTP 401",
    emulator_page="delivery_auth.emulator.uber_direct",
)
