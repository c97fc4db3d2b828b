"""DoorDash Drive: a JWT signed by the client with its access key (there is no token endpoint).

DoorDash's Developer Portal gives an access key of three parts: the developer id, the
key id and the signing secret (base64url). Every API call carries ``Authorization:
Bearer <JWT>``: header ``{"alg": "HS256", "typ": "JWT", "dd-ver": "DD-JWT-V1"}``, claims
``aud: "doordash"``, ``iss: <developer id>``, ``kid: <key id>``, ``iat``, ``exp`` (at most
30 minutes after ``iat``), HMAC-SHA256 with the **base64url-decoded** signing secret (a
plain base64 decode gives another key, and every call fails with 401). A 401 gets one
freshly minted JWT and one resend.

Example::

    auth = DoorDashDriveAuth(developer_id, key_id, signing_secret)
    requests.get("https://openapi.doordash.com/drive/v2/deliveries/D-1001", auth=auth)
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from ..cache.base import TokenCache
from ..errors import CredentialsRejectedError, DeliveryAuthError
from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..self_signed_jwt import SelfSignedJWTAuth, check_lifetime
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = ["API_URL", "MAX_LIFETIME", "SPEC", "DoorDashDriveAuth"]

API_URL = "https://openapi.doordash.com"
#: DoorDash refuses a JWT whose ``exp`` is more than 30 minutes after its ``iat``.
MAX_LIFETIME = 1800.0
#: The JWT header member that names DoorDash's JWT version.
DD_VERSION = {"dd-ver": "DD-JWT-V1"}
#: What ``delivery-auth check doordash`` asks for: an unknown delivery (404 means the JWT
#: was accepted).
CHECK_PATH = "/drive/v2/deliveries/delivery-auth-check"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def decode_signing_secret(signing_secret: str) -> bytes:
    """The HMAC key: ``signing_secret`` base64url-decoded (padding optional).

    Raises a ``ValueError`` that names the argument and its variable, never the value.
    """
    if not isinstance(signing_secret, str) or not signing_secret.strip():
        raise ValueError("signing_secret (DOORDASH_SIGNING_SECRET) must be a non-empty string")
    text = signing_secret.strip()
    problem = (
        "signing_secret (DOORDASH_SIGNING_SECRET) is not base64url (letters, digits, '-' "
        "and '_', as the DoorDash Developer Portal shows it); copy the signing secret of "
        "the access key again, unchanged (value not shown)."
    )
    if not _BASE64URL.fullmatch(text):
        raise ValueError(problem)
    unpadded = text.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise ValueError(problem)
    try:
        key = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(problem) from None
    return key


class DoorDashDriveAuth(SelfSignedJWTAuth):
    """Auth for the DoorDash Drive API: a self-signed JWT per the DoorDash docs.

    ``lifetime``: seconds from ``iat`` to ``exp``, any positive number up to 1800
    (DoorDash's limit); a JWT is re-minted in the background once 80% of it has passed
    and never sent within 30 s of its ``exp``. ``unique`` adds a random ``jti`` claim
    (not in DoorDash's list of claims; it makes a re-mint after a 401 a new token even
    within the same second; ``unique=False`` leaves it out). ``api_url`` is the API
    base that :data:`SPEC`'s check calls. ``allowed_hosts`` defaults to
    ``openapi.doordash.com`` plus loopback. The other options are those of
    :class:`~delivery_auth.SelfSignedJWTAuth`.

    Example::

        auth = DoorDashDriveAuth.from_env()   # DOORDASH_DEVELOPER_ID, _KEY_ID, _SIGNING_SECRET
        with httpx.Client(auth=auth) as client:
            client.post("https://openapi.doordash.com/drive/v2/quotes", json=quote)
    """

    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("openapi.doordash.com", *LOOPBACK_HOSTS)

    def __init__(
        self,
        developer_id: str,
        key_id: str,
        signing_secret: str,
        *,
        lifetime: float = 300.0,
        unique: bool = True,
        api_url: str = API_URL,
        cache: TokenCache | None = None,
        refresh_margin: float = 30.0,
        refresh_ratio: float = 0.8,
        max_token_age: float | None = None,
        allowed_hosts: Sequence[str] | str | None = DEFAULT_ALLOWED_HOSTS,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        for name, value in (("developer_id", developer_id), ("key_id", key_id)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string (from the access key)")
        key = decode_signing_secret(signing_secret)
        self.api_url = check_endpoint_url(api_url, "api_url").rstrip("/")
        super().__init__(
            key,
            algorithm="HS256",
            claims={"aud": "doordash", "iss": developer_id.strip(), "kid": key_id.strip()},
            headers=DD_VERSION,
            lifetime=check_lifetime(lifetime, MAX_LIFETIME),
            unique=unique,
            cache=cache,
            refresh_margin=refresh_margin,
            refresh_ratio=refresh_ratio,
            max_token_age=max_token_age,
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )

    @property
    def developer_id(self) -> str:
        """The developer id (the ``iss`` claim; not a secret)."""
        return str(self.claims["iss"])

    @property
    def key_id(self) -> str:
        """The key id (the ``kid`` claim; not a secret)."""
        return str(self.claims["kid"])

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DoorDashDriveAuth:
        """Build from ``DOORDASH_DEVELOPER_ID``, ``DOORDASH_KEY_ID`` and
        ``DOORDASH_SIGNING_SECRET``; keyword ``overrides`` (``lifetime=600``) are options.

        Example::

            auth = DoorDashDriveAuth.from_env(lifetime=600)
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def __repr__(self) -> str:
        return (
            f"DoorDashDriveAuth(developer_id={self.developer_id!r}, key_id={self.key_id!r}, "
            f"lifetime={self.lifetime!r})"
        )


def verify(auth: DoorDashDriveAuth, api_url: str | None = None) -> str:
    """:attr:`ProviderSpec.verify <delivery_auth.providers.spec.ProviderSpec.verify>` of
    DoorDash Drive: ``GET`` an unknown delivery with a minted JWT; 404 (or 200) means
    the JWT was accepted, 401 that it was refused."""
    base = auth.api_url if api_url is None else check_endpoint_url(api_url, "api_url")
    url = base.rstrip("/") + CHECK_PATH
    try:
        response = requests.get(url, auth=auth, timeout=10.0)
    except requests.RequestException as exc:
        raise DeliveryAuthError(
            f"Could not reach {url} ({type(exc).__name__}). Check the network and api_url."
        ) from None
    if response.status_code == 401:
        raise CredentialsRejectedError(
            f"DoorDash Drive rejected the JWT (HTTP 401 from {url}). Check "
            f"{', '.join(var.name for var in SPEC.env)} (one access key, not mixed with "
            "another's), and "
            "this machine's clock: DoorDash refuses a JWT issued in the future."
        )
    if response.status_code not in (200, 404):
        raise DeliveryAuthError(
            f"DoorDash Drive answered HTTP {response.status_code} from {url}; the JWT was "
            "not refused, but the check is inconclusive."
        )
    return f"accepted a minted JWT (lifetime {auth.lifetime:g} s) at {url}."


SPEC = ProviderSpec(
    name="doordash",
    title="DoorDash Drive",
    auth_class=DoorDashDriveAuth,
    env=(
        EnvVar("DOORDASH_DEVELOPER_ID", "developer_id", required=True, field="client_id"),
        EnvVar("DOORDASH_KEY_ID", "key_id", required=True, field="key_id"),
        EnvVar(
            "DOORDASH_SIGNING_SECRET",
            "signing_secret",
            required=True,
            field="client_secret",
            help="base64url, as the Developer Portal shows it",
        ),
    ),
    default_hosts=DoorDashDriveAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal='HTTP 401 {"code": "authentication_error"}',
    emulator_page="delivery_auth.emulator.doordash",
    endpoints=("api_url",),
    verify=verify,
    verify_help="GET a delivery with a minted JWT",
    api_url_help="the API base URL",
    token=TokenCommand(help="DoorDash Drive tokens are JWTs minted locally"),
)
