"""DHL Parcel DE (Post & Paket Deutschland): the OAuth2 password grant.

``POST https://api-eu.dhl.com/parcel/de/account/auth/ropc/v1/token`` (sandbox:
``api-sandbox.dhl.com``) takes one form holding everything: ``grant_type=password``,
the business-customer-portal (GKP) ``username`` and ``password``, the developer portal's
API key as ``client_id`` and its secret as ``client_secret``. It answers an opaque
bearer token for about 30 minutes (``expires_in`` 1799). A rejected token on the APIs
(``.../parcel/de/shipping/v2/...``) is HTTP 401 ``application/problem+json``
``{"title", "statusCode", "detail"}``: one new token, one resend.

Example::

    auth = DHLParcelDEAuth(api_key, api_secret, "user-valid", "SandboxPasswort2023!",
                           environment="sandbox")
    requests.post("https://api-sandbox.dhl.com/parcel/de/shipping/v2/orders", json=o, auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cache.base import TokenCache
from ..events import EventHook
from ..flow import FailureDetector
from ..password_grant import PasswordGrantAuth
from ..policy import BackoffPolicy
from ._environments import choose_environment, hosts_for
from .spec import EnvVar, ProviderSpec

__all__ = ["ENVIRONMENTS", "SPEC", "TOKEN_PATH", "DHLParcelDEAuth"]

#: ``environment`` -> host of the token endpoint and of the APIs.
ENVIRONMENTS: Mapping[str, str] = {
    "production": "api-eu.dhl.com",
    "sandbox": "api-sandbox.dhl.com",
}
TOKEN_PATH = "/parcel/de/account/auth/ropc/v1/token"


class DHLParcelDEAuth(PasswordGrantAuth):
    """Auth for the DHL Parcel DE APIs (shipping v2, ...) with the OAuth password grant.

    ``api_key`` and ``api_secret``: your app's credentials from developer.dhl.com (sent
    as ``client_id`` and ``client_secret``); ``username`` and ``password``: the business
    customer portal (GKP) login, a secret like the API secret (never shown; hashed in
    the cache key, so two logins never share a token). ``environment``:
    ``"production"`` (``api-eu.dhl.com``) or ``"sandbox"`` (``api-sandbox.dhl.com``,
    where DHL documents the login ``user-valid`` / ``SandboxPasswort2023!``);
    ``token_url`` overrides the token endpoint. Each new token is asked for with the
    password grant again. Tokens are sent as ``Authorization: Bearer`` only (not with
    ``dhl-api-key``, which DHL's spec offers as an alternative). A 401 from the API gets
    one new token and one resend; a wrong login raises
    :class:`~delivery_auth.InvalidClientError` naming what to check.

    ``allowed_hosts`` defaults to the environment's host plus loopback; the other
    keyword options are those of :class:`~delivery_auth.PasswordGrantAuth`.

    Example::

        auth = DHLParcelDEAuth.from_env(environment="sandbox")
        with httpx.Client(auth=auth) as client:
            client.get("https://api-sandbox.dhl.com/parcel/de/shipping/v2/")
    """

    ENVIRONMENTS = ENVIRONMENTS

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        username: str,
        password: str,
        *,
        environment: str = "production",
        token_url: str | None = None,
        scope: str | Sequence[str] | None = None,
        token_endpoint_auth_method: str = "client_secret_post",
        token_params: Mapping[str, object] | None = None,
        token_headers: Mapping[str, str] | None = None,
        cache: TokenCache | None = None,
        refresh_margin: float = 60.0,
        refresh_ratio: float = 0.5,
        timeout: float = 10.0,
        max_token_age: float | None = None,
        allowed_hosts: Sequence[str] | str | None = None,
        backoff: BackoffPolicy | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.environment = choose_environment("DHL Parcel DE", environment, ENVIRONMENTS)
        host = ENVIRONMENTS[self.environment]
        super().__init__(
            token_url or f"https://{host}{TOKEN_PATH}",
            api_key,
            api_secret,
            username,
            password,
            scope=scope,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token_params=token_params,
            token_headers=token_headers,
            cache=cache,
            refresh_margin=refresh_margin,
            refresh_ratio=refresh_ratio,
            timeout=timeout,
            max_token_age=max_token_age,
            allowed_hosts=hosts_for(host) if allowed_hosts is None else allowed_hosts,
            backoff=backoff,
            failure_detector=failure_detector,
            on_event=on_event,
        )

    @property
    def api_key(self) -> str:
        """The app's API key (its OAuth ``client_id``; not a secret)."""
        return self.client_id

    @property
    def api_root(self) -> str:
        """``https://<the environment's host>/parcel/de``, where the APIs live."""
        return f"https://{ENVIRONMENTS[self.environment]}/parcel/de"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DHLParcelDEAuth:
        """Build from ``DHL_PARCEL_DE_API_KEY``, ``DHL_PARCEL_DE_API_SECRET``,
        ``DHL_PARCEL_DE_USERNAME``, ``DHL_PARCEL_DE_PASSWORD`` and optionally
        ``DHL_PARCEL_DE_ENVIRONMENT`` (``production`` or ``sandbox``).

        Keyword ``overrides`` (e.g. ``token_url``, ``cache``) win over the environment.

        Example::

            auth = DHLParcelDEAuth.from_env(environment="sandbox")
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def __repr__(self) -> str:
        return (
            f"DHLParcelDEAuth(api_key={self.api_key!r}, username={self.username!r}, "
            f"environment={self.environment!r}, token_url={self.token_url!r})"
        )


SPEC = ProviderSpec(
    name="dhl_parcel_de",
    title="DHL Parcel DE",
    auth_class=DHLParcelDEAuth,
    env=(
        EnvVar("DHL_PARCEL_DE_API_KEY", "api_key", required=True, field="client_id"),
        EnvVar("DHL_PARCEL_DE_API_SECRET", "api_secret", required=True, field="client_secret"),
        EnvVar("DHL_PARCEL_DE_USERNAME", "username", required=True, field="username"),
        EnvVar("DHL_PARCEL_DE_PASSWORD", "password", required=True, field="password"),
        EnvVar("DHL_PARCEL_DE_ENVIRONMENT", "environment", help="production or sandbox"),
    ),
    default_hosts=tuple(
        dict.fromkeys(h for host in ENVIRONMENTS.values() for h in hosts_for(host))
    ),
    failure_signal="HTTP 401 application/problem+json",
    emulator_page="delivery_auth.emulator.dhl_parcel_de",
)
