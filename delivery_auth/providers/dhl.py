"""DHL eCommerce Americas: OAuth2 client credentials with RFC 7807 problem details.

Tokens live 60 minutes and DHL asks clients to refresh every 15 to 30 minutes, so
the default policy refreshes at half the lifetime and never later than 30 minutes.
A rejected login is a problem-details body such as
``{"type": ".../errors/400.0000005", "title": "Invalid credentials"}`` at HTTP 400 or
401; the core's token fetcher raises :class:`~delivery_auth.InvalidClientError` for
it, with the title and the problem code in the message and attributes.

Example::

    auth = DHLeCommerceAuth(client_id, client_secret, environment="sandbox")
    requests.get("https://api-sandbox.dhlecs.com/...", auth=auth)
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

__all__ = [
    "ENVIRONMENTS",
    "SPEC",
    "DHLeCommerceAuth",
]

#: ``environment`` -> token endpoint.
ENVIRONMENTS: Mapping[str, str] = {
    "production": "https://api.dhlecs.com/auth/v4/accesstoken",
    "sandbox": "https://api-sandbox.dhlecs.com/auth/v4/accesstoken",
}

#: DHL's advice: refresh every 15-30 minutes.
DEFAULT_MAX_TOKEN_AGE = 30 * 60.0


class DHLeCommerceAuth(ClientCredentialsAuth):
    """Auth for DHL eCommerce Americas APIs.

    ``environment``: ``"production"`` (``api.dhlecs.com``) or ``"sandbox"``
    (``api-sandbox.dhlecs.com``); ``token_url`` overrides it. Tokens are refreshed
    once half their lifetime has passed and at most 30 minutes after they were
    obtained (``refresh_ratio=0.5``, ``max_token_age=1800``). A 401 from the API
    ("Access token expired") gets one fresh token and one resend.

    The other keyword options are those of :class:`~delivery_auth.ClientCredentialsAuth`.
    ``allowed_hosts`` defaults to ``*.dhlecs.com`` plus loopback.

    Example::

        auth = DHLeCommerceAuth(client_id, client_secret, environment="sandbox")
        requests.post("https://api-sandbox.dhlecs.com/shipping/v4/label", json=label, auth=auth)
        with httpx.Client(auth=auth) as client:
            client.post("https://api-sandbox.dhlecs.com/shipping/v4/label", json=label)
    """

    ENVIRONMENTS = ENVIRONMENTS
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("*.dhlecs.com", *LOOPBACK_HOSTS)

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        environment: str = "production",
        token_url: str | None = None,
        scope: str | Sequence[str] | None = None,
        token_endpoint_auth_method: str = "client_secret_post",
        token_params: Mapping[str, object] | None = None,
        cache: TokenCache | None = None,
        refresh_margin: float = 60.0,
        refresh_ratio: float = 0.5,
        timeout: float = 10.0,
        max_token_age: float | None = DEFAULT_MAX_TOKEN_AGE,
        allowed_hosts: Sequence[str] | str | None = DEFAULT_ALLOWED_HOSTS,
        backoff: BackoffPolicy | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        key = environment.strip().lower() if isinstance(environment, str) else environment
        if key not in ENVIRONMENTS:
            valid = ", ".join(repr(name) for name in ENVIRONMENTS)
            raise ValueError(f"Unknown DHL eCommerce environment {environment!r}; valid: {valid}.")
        self.environment = key
        super().__init__(
            token_url or ENVIRONMENTS[key],
            client_id,
            client_secret,
            scope=scope,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token_params=token_params,
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

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DHLeCommerceAuth:
        """Build from ``DHL_ECOMMERCE_CLIENT_ID``, ``DHL_ECOMMERCE_CLIENT_SECRET`` and
        optionally ``DHL_ECOMMERCE_ENVIRONMENT`` (``production`` or ``sandbox``).

        Keyword ``overrides`` (e.g. ``token_url``) win over the environment.

        Example::

            auth = DHLeCommerceAuth.from_env(environment="sandbox")
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def __repr__(self) -> str:
        return (
            f"DHLeCommerceAuth(client_id={self.client_id!r}, "
            f"environment={self.environment!r}, token_url={self.token_url!r})"
        )


SPEC = ProviderSpec(
    name="dhl",
    title="DHL eCommerce",
    auth_class=DHLeCommerceAuth,
    env=(
        EnvVar("DHL_ECOMMERCE_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar(
            "DHL_ECOMMERCE_CLIENT_SECRET", "client_secret", required=True, field="client_secret"
        ),
        EnvVar("DHL_ECOMMERCE_ENVIRONMENT", "environment", help="production or sandbox"),
    ),
    default_hosts=DHLeCommerceAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal='HTTP 401 "Access token expired"',
    emulator_page="delivery_auth.emulator.dhl",
)
