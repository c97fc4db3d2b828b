"""Lalamove API v3: every request signed with HMAC-SHA256, no token.

The string to sign is ``"{ts}\\r\\n{METHOD}\\r\\n{path}\\r\\n\\r\\n{body}"`` (``ts``: Unix
milliseconds; ``path``: the request target, e.g. ``/v3/quotations``; ``body``: the exact
JSON sent, empty for a GET), signed with the API secret and sent as
``Authorization: hmac {api_key}:{ts}:{lowercase hex}``, with the ``Market`` header and a
``Request-ID`` (a new UUID per send). A rejected signature is HTTP 401
``{"errors": [{"id", "message", "detail"}]}``: the request is signed again with a new
timestamp and resent once.

Example::

    auth = LalamoveAuth(api_key, api_secret, market="HK", environment="sandbox")
    requests.post("https://rest.sandbox.lalamove.com/v3/quotations", json=quote, auth=auth)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from ..errors import CredentialsRejectedError, DeliveryAuthError
from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..signing import HmacSigningAuth, SigningInput
from .base import check_overrides, read_env
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = ["ENVIRONMENTS", "SPEC", "LalamoveAuth"]

#: ``environment`` -> API base URL.
ENVIRONMENTS: Mapping[str, str] = {
    "production": "https://rest.lalamove.com",
    "sandbox": "https://rest.sandbox.lalamove.com",
}


def _check(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    value = value.strip()
    if any(ch in value for ch in "\r\n\x00: "):
        raise ValueError(f"{name} must not contain spaces, colons or control characters")
    return value


class LalamoveAuth(HmacSigningAuth):
    """Auth for the Lalamove API v3: each request signed with the API secret.

    ``market`` is the ``Market`` header (``"HK"``, ``"SG"``, ``"TH"``, ...; required by
    the API). ``environment``: ``"production"`` (``rest.lalamove.com``) or ``"sandbox"``
    (``rest.sandbox.lalamove.com``): Lalamove issues separate key pairs for each.
    ``api_url`` (default: the environment's) is where :meth:`verify` sends its check.
    ``request_id=False`` leaves out the ``Request-ID`` header (sent by default: a
    third-party digest of the docs says v3 requires it, Lalamove's own examples omit
    it). ``allowed_hosts`` defaults to the environment's host plus loopback.

    A 401 gets one resend, signed again with a new timestamp (a stale timestamp, e.g.
    after a long stall, is then repaired); a wrong secret gets the second 401 back.

    Example::

        auth = LalamoveAuth(api_key, api_secret, market="HK", environment="sandbox")
        with httpx.Client(auth=auth) as client:
            client.post("https://rest.sandbox.lalamove.com/v3/quotations", json=quote)
    """

    ENVIRONMENTS = ENVIRONMENTS

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        market: str,
        environment: str = "production",
        api_url: str | None = None,
        request_id: bool = True,
        allowed_hosts: Sequence[str] | str | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        key = environment.strip().lower() if isinstance(environment, str) else environment
        if key not in ENVIRONMENTS:
            valid = ", ".join(repr(name) for name in ENVIRONMENTS)
            raise ValueError(f"Unknown Lalamove environment {environment!r}; valid: {valid}.")
        self.environment = key
        self.market = _check("market", market).upper()
        self.request_id = request_id
        self.api_url = check_endpoint_url(api_url or ENVIRONMENTS[key], "api_url").rstrip("/")
        if allowed_hosts is None:
            allowed_hosts = (ENVIRONMENTS[key].removeprefix("https://"), *LOOPBACK_HOSTS)
        super().__init__(
            _check("api_key", api_key),
            _check("api_secret", api_secret),
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )

    def string_to_sign(self, request: SigningInput) -> bytes:
        head = f"{request.timestamp}\r\n{request.method}\r\n{request.target}\r\n\r\n"
        return head.encode() + request.body

    def signed_headers(self, request: SigningInput, signature: str) -> dict[str, str]:
        headers = {
            "Authorization": f"hmac {request.key_id}:{request.timestamp}:{signature}",
            "Market": self.market,
        }
        if self.request_id:
            headers["Request-ID"] = str(uuid.uuid4())
        return headers

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LalamoveAuth:
        """Build from ``LALAMOVE_API_KEY``, ``LALAMOVE_API_SECRET``, ``LALAMOVE_MARKET``
        and optionally ``LALAMOVE_ENVIRONMENT`` (``production`` or ``sandbox``).

        Keyword ``overrides`` (e.g. ``api_url``) win over the environment.

        Example::

            auth = LalamoveAuth.from_env(environment="sandbox")
        """
        check_overrides(cls, overrides)
        required = ["LALAMOVE_API_KEY", "LALAMOVE_API_SECRET"]
        if "market" not in overrides:
            required.append("LALAMOVE_MARKET")
        values = read_env(
            cls.__name__, required, ("LALAMOVE_MARKET", "LALAMOVE_ENVIRONMENT"), environ
        )
        if "LALAMOVE_MARKET" in values:
            overrides.setdefault("market", values["LALAMOVE_MARKET"])
        if "LALAMOVE_ENVIRONMENT" in values:
            overrides.setdefault("environment", values["LALAMOVE_ENVIRONMENT"])
        return cls(values["LALAMOVE_API_KEY"], values["LALAMOVE_API_SECRET"], **overrides)

    def verify(self, api_url: str | None = None, *, timeout: float = 10.0) -> str:
        """Check the key pair with a signed ``GET /v3/cities`` (at ``api_url``, default
        this object's); return what happened. A 401 raises
        :class:`~delivery_auth.CredentialsRejectedError`.

        Example::

            LalamoveAuth.from_env().verify()
        """
        base = self.api_url if api_url is None else check_endpoint_url(api_url, "api_url")
        url = f"{base.rstrip('/')}/v3/cities"
        try:
            response = requests.get(url, auth=self, timeout=timeout)
        except requests.RequestException as exc:
            raise DeliveryAuthError(
                f"Could not reach {url} ({type(exc).__name__}). Check the network and api_url."
            ) from None
        if response.status_code == 401:
            raise CredentialsRejectedError(
                f"Lalamove rejected the signature (HTTP 401 from {url}) twice: the API key "
                "and secret do not match, belong to the other environment (sandbox and "
                "production have separate key pairs), or this machine's clock is off."
            )
        if response.status_code != 200:
            raise DeliveryAuthError(
                f"Unexpected answer from {url} (HTTP {response.status_code}); check api_url "
                "and the market."
            )
        return f"accepted the signature ({url} answered 200 for market {self.market})."

    def _identity(self) -> tuple[object, ...]:
        return (*super()._identity(), self.market, self.api_url, self.request_id)

    def __repr__(self) -> str:
        return (
            f"LalamoveAuth(api_key={self.key_id!r}, market={self.market!r}, "
            f"environment={self.environment!r})"
        )


def _verify(auth: LalamoveAuth, api_url: str | None) -> str:
    return auth.verify(api_url)


SPEC = ProviderSpec(
    name="lalamove",
    title="Lalamove",
    auth_class=LalamoveAuth,
    env=(
        EnvVar("LALAMOVE_API_KEY", "api_key", required=True, field="client_id"),
        EnvVar("LALAMOVE_API_SECRET", "api_secret", required=True, field="client_secret"),
        EnvVar("LALAMOVE_MARKET", "market", required=True, field="market", help="HK, SG, TH, ..."),
        EnvVar("LALAMOVE_ENVIRONMENT", "environment", help="production or sandbox"),
    ),
    default_hosts=("rest.lalamove.com", "rest.sandbox.lalamove.com", *LOOPBACK_HOSTS),
    failure_signal='HTTP 401 {"errors": [...]} (signature rejected)',
    emulator_page="delivery_auth.emulator.lalamove",
    endpoints=("api_url",),
    verify=_verify,
    verify_help="a signed GET /v3/cities",
    api_url_help="the API base URL (https://rest.lalamove.com)",
    token=TokenCommand(
        unavailable="Lalamove has no token: every request is signed with the API secret "
        "(HMAC-SHA256). To test the key pair, run 'delivery-auth check lalamove'.",
    ),
)
