"""UPS: OAuth2 client credentials with HTTP Basic client authentication.

``POST https://onlinetools.ups.com/security/v1/oauth/token`` (test: ``wwwcie.ups.com``)
with the form ``grant_type=client_credentials``, the client id and secret in HTTP Basic,
and optionally ``x-merchant-id`` (the 6-character UPS account number). Every field of
the answer is a string: ``"expires_in": "14399"`` (4 hours), ``"issued_at"`` in epoch
milliseconds, ``"refresh_count"``, ``"status": "approved"``. An expired or bad token gets
HTTP 401 ``{"response": {"errors": [{"code": "250002", "message": "Invalid
Authentication Information."}]}}``: one new token, one resend.

Example::

    auth = UPSAuth(client_id, client_secret, merchant_id="A1B2C3", environment="test")
    requests.post("https://wwwcie.ups.com/api/rating/v2403/Rate", json=rate, auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cache.base import TokenCache
from ..client_credentials import ClientCredentialsAuth
from ..events import EventHook
from ..flow import FailureDetector
from ..policy import BackoffPolicy
from ._environments import choose_environment, hosts_for
from .spec import EnvVar, ProviderSpec

__all__ = ["ENVIRONMENTS", "MERCHANT_HEADER", "SPEC", "TOKEN_PATH", "UPSAuth"]

#: ``environment`` -> host of the token endpoint and of the APIs (below ``/api``).
ENVIRONMENTS: Mapping[str, str] = {
    "production": "onlinetools.ups.com",
    "test": "wwwcie.ups.com",
}
TOKEN_PATH = "/security/v1/oauth/token"
MERCHANT_HEADER = "x-merchant-id"


class UPSAuth(ClientCredentialsAuth):
    """Auth for the UPS APIs (OAuth client credentials).

    ``environment``: ``"production"`` (``onlinetools.ups.com``) or ``"test"`` (the
    Customer Integration Environment, ``wwwcie.ups.com``); ``token_url`` overrides the
    token endpoint. ``merchant_id``: sent as ``x-merchant-id`` on every token request
    when given (UPS's spec: the 6-character account number; not checked here, UPS
    judges it). The client id and secret go in HTTP Basic
    (``token_endpoint_auth_method="client_secret_basic"``). No ``scope`` is sent unless
    you give one (UPS's spec has none; its SDK sends ``scope="public"``). A 401 from the
    API gets one new token and one resend.

    ``allowed_hosts`` defaults to the environment's host plus loopback; the other
    keyword options are those of :class:`~delivery_auth.ClientCredentialsAuth`.

    Example::

        auth = UPSAuth(client_id, client_secret, merchant_id="A1B2C3")
        with httpx.Client(auth=auth) as client:
            client.get("https://onlinetools.ups.com/api/track/v1/details/1Z999AA10123456784")
    """

    ENVIRONMENTS = ENVIRONMENTS

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        merchant_id: str | None = None,
        environment: str = "production",
        token_url: str | None = None,
        scope: str | Sequence[str] | None = None,
        token_endpoint_auth_method: str = "client_secret_basic",
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
        self.environment = choose_environment("UPS", environment, ENVIRONMENTS)
        if merchant_id is not None and (not isinstance(merchant_id, str) or not merchant_id):
            raise ValueError(
                "merchant_id must be a non-empty string (the UPS account number, as text: "
                f"it may start with 0), got {type(merchant_id).__name__}"
            )
        self.merchant_id = merchant_id
        headers = dict(token_headers or {})
        if merchant_id is not None:
            if any(name.lower() == MERCHANT_HEADER for name in headers):
                raise ValueError(f"give merchant_id or a {MERCHANT_HEADER} token header, not both")
            headers[MERCHANT_HEADER] = merchant_id
        host = ENVIRONMENTS[self.environment]
        super().__init__(
            token_url or f"https://{host}{TOKEN_PATH}",
            client_id,
            client_secret,
            scope=scope,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token_params=token_params,
            token_headers=headers,
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
    def api_root(self) -> str:
        """``https://<the environment's host>/api``, where the UPS APIs live."""
        return f"https://{ENVIRONMENTS[self.environment]}/api"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> UPSAuth:
        """Build from ``UPS_CLIENT_ID``, ``UPS_CLIENT_SECRET`` and optionally
        ``UPS_MERCHANT_ID`` and ``UPS_ENVIRONMENT`` (``production`` or ``test``).

        Keyword ``overrides`` (e.g. ``token_url``, ``cache``) win over the environment.

        Example::

            auth = UPSAuth.from_env(environment="test")
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def __repr__(self) -> str:
        return (
            f"UPSAuth(client_id={self.client_id!r}, environment={self.environment!r}, "
            f"token_url={self.token_url!r})"
        )


SPEC = ProviderSpec(
    name="ups",
    title="UPS",
    auth_class=UPSAuth,
    env=(
        EnvVar("UPS_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar("UPS_CLIENT_SECRET", "client_secret", required=True, field="client_secret"),
        EnvVar(
            "UPS_MERCHANT_ID",
            "merchant_id",
            field="merchant_id",
            help="the UPS account number, sent as x-merchant-id",
        ),
        EnvVar("UPS_ENVIRONMENT", "environment", help="production or test"),
    ),
    default_hosts=tuple(
        dict.fromkeys(h for host in ENVIRONMENTS.values() for h in hosts_for(host))
    ),
    failure_signal='HTTP 401 code 250002 "Invalid Authentication Information."',
    emulator_page="delivery_auth.emulator.ups",
)
