"""USPS APIs v3 (the cloud platform): OAuth2 client credentials with a JSON token request.

``POST https://apis.usps.com/oauth2/v3/token`` (test: ``apis-tem.usps.com``) takes
``{"client_id", "client_secret", "grant_type": "client_credentials"}`` as JSON and
answers ``access_token`` (a JWT), ``issued_at`` (epoch milliseconds), ``expires_in``
(8 hours) and Apigee's bookkeeping (``status``, ``api_products``, ...): numbers on the
live platform, strings in USPS's README; both are read. An expired or malformed token
gets HTTP 401 ``{"apiVersion", "error": {"code": "401", "message": "Missing or
malformed access token.", ...}}`` (sometimes with an empty message): any 401 gets one
new token and one resend.

The default product allows **60 calls per hour per API, token requests included**: a
token cache shared by every process (:class:`~delivery_auth.FileTokenCache`,
:class:`~delivery_auth.RedisTokenCache`) keeps the fleet at one token request per
refresh instead of one per process.

Example::

    auth = USPSAuth(client_id, client_secret, environment="test")
    requests.get("https://apis-tem.usps.com/addresses/v3/address", params=..., auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..cache.base import TokenCache
from ..client_credentials import ClientCredentialsAuth
from ..dependent import DependentToken, JsonTokenRequest
from ..events import EventHook
from ..flow import FailureDetector
from ..policy import BackoffPolicy, RefreshPolicy
from ._environments import choose_environment, hosts_for
from .spec import EnvVar, ProviderSpec

__all__ = [
    "DEFAULT_PAYMENT_TOKEN_LIFETIME",
    "ENVIRONMENTS",
    "PAYMENT_AUTHORIZATION_PATH",
    "PAYMENT_HEADER",
    "SPEC",
    "TOKEN_PATH",
    "USPSAuth",
    "is_label_request",
]

#: ``environment`` -> API host (the token endpoint is on it too).
ENVIRONMENTS: Mapping[str, str] = {
    "production": "apis.usps.com",
    "test": "apis-tem.usps.com",
}
TOKEN_PATH = "/oauth2/v3/token"
#: Where the payment authorization token (for labels) is asked for, below the API root.
PAYMENT_AUTHORIZATION_PATH = "/payments/v3/payment-authorization"
#: The header label requests carry the payment authorization token in.
PAYMENT_HEADER = "X-Payment-Authorization-Token"
#: USPS does not document the payment token's lifetime (a blog says 8 h; karrio keeps it
#: 50 minutes): refreshing early costs one payments call, sending a dead one a rejection.
DEFAULT_PAYMENT_TOKEN_LIFETIME = 50 * 60.0


def is_label_request(method: str, url: str) -> bool:
    """Whether a request goes to a label endpoint (``/labels/v3/label``, ...)."""
    return "/labels/" in urlsplit(url).path


def _check_lifetime(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e9:
        raise ValueError(
            f"payment_token_lifetime must be a positive number of seconds, got {value!r}"
        )
    return float(value)


def _check_roles(payment_roles: object) -> tuple[dict[str, Any], ...] | None:
    """``payment_roles`` as a tuple of copied role objects, or ``None``."""
    if payment_roles is None:
        return None
    if isinstance(payment_roles, (str, bytes, Mapping)) or not isinstance(payment_roles, Sequence):
        raise ValueError(
            "payment_roles must be a list of role objects (dicts such as "
            '{"roleName": "PAYER", "CRID": ..., "accountType": "EPS", "accountNumber": ...}), '
            f"got {type(payment_roles).__name__}"
        )
    if not payment_roles:
        raise ValueError("payment_roles is empty: give at least one role, or None for no labels")
    roles = []
    for index, role in enumerate(payment_roles):
        if not isinstance(role, Mapping) or not all(isinstance(k, str) for k in role):
            raise ValueError(
                f"payment_roles[{index}] must be a dict with string keys "
                f"(a USPS role object), got {type(role).__name__}"
            )
        roles.append(dict(role))
    return tuple(roles)


class USPSAuth(ClientCredentialsAuth):
    """Auth for the USPS APIs v3 on the cloud platform (``apis.usps.com``).

    ``environment``: ``"production"`` (``apis.usps.com``) or ``"test"``
    (``apis-tem.usps.com``, which takes production credentials); ``token_url``
    overrides the token endpoint. The token request is JSON
    (``token_request_format="json"``; ``"form"`` works too). A 401 from the API gets
    one new token and one resend.

    USPS counts token requests against the product's quota (60 calls an hour on the
    default product): give every process the same shared ``cache``
    (``RedisTokenCache``/``FileTokenCache``) so that the fleet shares one token.

    ``payment_roles``: the role objects of USPS's payment authorization (kept as
    :attr:`payment_roles`, a tuple of dicts). With them, requests to label endpoints
    (a path with ``/labels/`` in it) also carry ``X-Payment-Authorization-Token``:
    obtained with the bearer token from ``payment_url`` (default: the token endpoint's
    root + :data:`PAYMENT_AUTHORIZATION_PATH`, JSON ``{"roles": [...]}``), cached in
    ``cache`` like the bearer token, refreshed on its own schedule (its lifetime is
    undocumented: ``payment_token_lifetime`` seconds, 50 minutes by default, or its JWT
    ``exp`` when sooner). A label request the API rejects (the failure detector: a 401)
    is resent once with a new bearer token *and* a new payment token: USPS does not say
    which of the two a 401 refers to (its bodies are sometimes empty), and the payment
    token was obtained with the bearer. Another recognition can be given as
    ``failure_detector``.

    ``allowed_hosts`` defaults to the environment's host plus loopback; the other
    keyword options are those of :class:`~delivery_auth.ClientCredentialsAuth`.

    Example::

        auth = USPSAuth(client_id, client_secret, cache=RedisTokenCache(redis_client))
        with httpx.Client(auth=auth) as client:
            client.get("https://apis.usps.com/addresses/v3/address", params=address)
    """

    ENVIRONMENTS = ENVIRONMENTS

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        environment: str = "production",
        payment_roles: Sequence[Mapping[str, Any]] | None = None,
        payment_url: str | None = None,
        payment_token_lifetime: float = DEFAULT_PAYMENT_TOKEN_LIFETIME,
        token_url: str | None = None,
        scope: str | Sequence[str] | None = None,
        token_endpoint_auth_method: str = "client_secret_post",
        token_params: Mapping[str, object] | None = None,
        token_request_format: str = "json",
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
        self.environment = choose_environment("USPS", environment, ENVIRONMENTS)
        self.payment_roles = _check_roles(payment_roles)
        host = ENVIRONMENTS[self.environment]
        super().__init__(
            token_url or f"https://{host}{TOKEN_PATH}",
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
            max_token_age=max_token_age,
            allowed_hosts=hosts_for(host) if allowed_hosts is None else allowed_hosts,
            backoff=backoff,
            failure_detector=failure_detector,
            on_event=on_event,
        )
        self.payment_url: str | None = None
        if self.payment_roles is not None:
            self.payment_url = payment_url or self._root() + PAYMENT_AUTHORIZATION_PATH
            obtain = JsonTokenRequest(
                self.payment_url,
                {"roles": list(self.payment_roles)},
                field="paymentAuthorizationToken",
                lifetime=_check_lifetime(payment_token_lifetime),
                what="USPS payment authorization",
                timeout=timeout,
            )
            DependentToken.attach(
                self,
                obtain=obtain,
                header=PAYMENT_HEADER,
                applies=is_label_request,
                policy=RefreshPolicy(refresh_margin=refresh_margin, refresh_ratio=refresh_ratio),
                cache=cache,
                key=f"usps-payment-{self.environment}-{self.client_id}-{obtain.body_digest}",
            )

    def _root(self) -> str:
        """The root the token endpoint hangs below (the emulator's too), else the API's."""
        if self.token_url.endswith(TOKEN_PATH):
            return self.token_url[: -len(TOKEN_PATH)]
        return self.api_root

    @property
    def api_root(self) -> str:
        """``https://<the environment's host>`` (payment authorization lives below it)."""
        return f"https://{ENVIRONMENTS[self.environment]}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> USPSAuth:
        """Build from ``USPS_CLIENT_ID``, ``USPS_CLIENT_SECRET`` and optionally
        ``USPS_ENVIRONMENT`` (``production`` or ``test``).

        Keyword ``overrides`` (e.g. ``token_url``, ``cache``) win over the environment.

        Example::

            auth = USPSAuth.from_env(environment="test")
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def __repr__(self) -> str:
        return (
            f"USPSAuth(client_id={self.client_id!r}, environment={self.environment!r}, "
            f"token_url={self.token_url!r})"
        )


SPEC = ProviderSpec(
    name="usps",
    title="USPS",
    auth_class=USPSAuth,
    env=(
        EnvVar("USPS_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar("USPS_CLIENT_SECRET", "client_secret", required=True, field="client_secret"),
        EnvVar("USPS_ENVIRONMENT", "environment", help="production or test"),
    ),
    default_hosts=tuple(
        dict.fromkeys(h for host in ENVIRONMENTS.values() for h in hosts_for(host))
    ),
    failure_signal='HTTP 401 "Missing or malformed access token."',
    emulator_page="delivery_auth.emulator.usps",
)
