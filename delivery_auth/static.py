"""Static credentials: an API key in a header, or HTTP Basic with a username and password.

They need no token request and cannot be renewed: the credential is sent as it is on
every request (only to ``allowed_hosts``, only over https or to loopback). When the API
rejects it (the failure detector: HTTP 401 by default), the response is returned as it
came, with one WARNING saying so: there is nothing to retry with.

Example::

    auth = ApiKeyAuth(key, header="API-Key", allowed_hosts=["api.shipengine.com"])
    auth = ApiKeyAuth(token, scheme="ShippoToken")          # Authorization: ShippoToken <token>
    auth = BasicCredentialsAuth("user", "password", allowed_hosts=["api.example.com"])
    requests.get("https://api.example.com/v1/things", auth=auth)
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import requests

from .auth import DeliveryAuth
from .cache.memory import MemoryTokenCache
from .engine import TokenEngine
from .errors import CredentialsRejectedError, DeliveryAuthError
from .events import EventHook
from .flow import FailureDetector
from .headers import check_header_name
from .hosts import check_endpoint_url
from .policy import RefreshPolicy
from .providers.base import StaticSource
from .token import Token

__all__ = [
    "ApiKeyAuth",
    "BasicCredentialsAuth",
    "basic_credential",
    "static_engine",
    "verify_static",
]

logger = logging.getLogger("delivery_auth")


def _check_secret(name: str, value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ValueError(f"{name} must be a{'' if empty else ' non-empty'} string")
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{name} must not contain line breaks or NUL characters")
    return value


def basic_credential(username: str, password: str) -> str:
    """The HTTP Basic credential of ``username`` and ``password`` (RFC 7617, UTF-8):
    what follows ``Basic`` in the ``Authorization`` header.

    Example::

        basic_credential("user", "pass")   # 'dXNlcjpwYXNz'
    """
    username = _check_secret("username", username)
    password = _check_secret("password", password, empty=True)
    if ":" in username:
        raise ValueError("username must not contain ':' (HTTP Basic joins it to the password)")
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def static_engine(credential: str, *, scheme: str | None) -> TokenEngine:
    """An engine that holds ``credential`` and never renews it: the header value is
    ``<scheme> <credential>``, or the credential alone when ``scheme`` is ``None``."""
    if scheme is None:

        def format_header(token: Token) -> str:
            return token.access_token

    else:

        def format_header(token: Token) -> str:
            return f"{scheme} {token.access_token}"

    digest = hashlib.sha256(credential.encode()).hexdigest()[:16]
    return TokenEngine(
        StaticSource("A static credential (an API key or a password)"),
        cache=MemoryTokenCache(),
        key=f"static-{digest}",
        policy=RefreshPolicy(refresh_ratio=1.0),
        format_header=format_header,
        initial=Token(access_token=credential, token_type=scheme or "ApiKey"),
        refreshable=False,
    )


class ApiKeyAuth(DeliveryAuth):
    """A static API key sent in a header: ``<header>: <scheme> <key>``, or ``<header>:
    <key>`` when ``scheme`` is ``None``.

    The key is never renewed: when the API rejects it (``failure_detector``, HTTP 401 by
    default), the response is returned as it is and one WARNING says so. ``allowed_hosts``
    (``None``: any https host) binds the key to the hosts it is for; plain http is refused
    except to loopback. ``default_headers`` go on every request that does not set them.

    A key sent in another header than ``Authorization`` never follows a redirect to
    another origin either (requests, httpx and httpx2 drop only ``Authorization``
    themselves; see :mod:`delivery_auth._redirects`). With httpx and httpx2 this goes
    through the request's ``trace`` extension: a transport that never calls it (not
    built on httpcore) sends redirected requests as httpx built them, key included, so
    keep ``follow_redirects`` off with such a transport.

    Example::

        auth = ApiKeyAuth(os.environ["SHIPENGINE_API_KEY"], header="API-Key",
                          allowed_hosts=["api.shipengine.com"])
        requests.get("https://api.shipengine.com/v1/carriers", auth=auth)
        with httpx.Client(auth=auth) as client:
            client.get("https://api.shipengine.com/v1/carriers")
    """

    #: What a rejected credential's WARNING advises (providers say where to get a new one).
    REJECTED_HINT = "Check the credential: it may have been revoked or belong to another account."

    def __init__(
        self,
        key: str,
        *,
        header: str = "Authorization",
        scheme: str | None = None,
        allowed_hosts: Sequence[str] | str | None = None,
        failure_detector: FailureDetector | None = None,
        default_headers: Mapping[str, str] | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        key = _check_secret("key", key).strip()
        if scheme is not None:
            scheme = check_header_name(scheme, "scheme")
            if key.lower().startswith(scheme.lower() + " "):
                raise ValueError(f"pass the key alone, without the {scheme!r} prefix")
        self._credential_hash = hashlib.sha256(key.encode()).hexdigest()
        self.scheme = scheme
        super().__init__(
            static_engine(key, scheme=scheme),
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            header=header,
            default_headers=default_headers,
            on_event=on_event,
        )

    def _cannot_refresh(self, status_code: int) -> None:
        logger.warning(
            "The API rejected the credentials in the %s header (HTTP %s) and %s cannot "
            "obtain new ones: static credentials are not renewed, so the response is "
            "returned as it is. %s",
            self.header,
            status_code,
            type(self).__name__,
            self.REJECTED_HINT,
            extra={"credentials_rejected": True},  # the CLI reports it as its error
        )

    def _identity(self) -> tuple[object, ...]:
        return (
            self._credential_hash,
            self.header,
            self.scheme,
            self.allowed_hosts,
            tuple(sorted(self.default_headers.items())),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(header={self.header!r}, scheme={self.scheme!r})"


class BasicCredentialsAuth(ApiKeyAuth):
    """HTTP Basic authentication with a static username and password (RFC 7617, UTF-8):
    ``Authorization: Basic base64(username:password)``. ``password`` may be empty (an API
    key used as the username, as EasyPost does).

    Like :class:`ApiKeyAuth`: bound to ``allowed_hosts``, https only (or loopback), and
    a rejection is returned as it is with one WARNING: a password is not renewed.
    :meth:`get_token` returns the Basic credential (the base64 text after ``Basic``).

    Example::

        auth = BasicCredentialsAuth("user", os.environ["API_PASSWORD"],
                                    allowed_hosts=["api.example.com"])
        requests.get("https://api.example.com/v1/things", auth=auth)
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        allowed_hosts: Sequence[str] | str | None = None,
        failure_detector: FailureDetector | None = None,
        default_headers: Mapping[str, str] | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.username = username if isinstance(username, str) else ""
        super().__init__(
            basic_credential(username, password),
            scheme="Basic",
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            default_headers=default_headers,
            on_event=on_event,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(username={self.username!r})"


class ApiCheck(Protocol):
    """``check(auth, api_url=None, *, timeout=10.0)``: what :func:`api_check` returns."""

    def __call__(self, auth: Any, api_url: str | None = None, *, timeout: float = 10.0) -> str: ...


def api_check(title: str, path: str) -> ApiCheck:
    """The check of a provider whose credentials are verified by ``GET <api_url><path>``:
    both its auth class's ``verify()`` and its spec's ``verify`` (``api_url`` ``None``:
    the auth object's own ``api_url``). ``title`` names the provider in the errors.

    Example::

        _check = api_check("ShipEngine", "/v1/carriers")
        _check(auth)            # 'accepted the credentials (...).'
    """

    def check(auth: Any, api_url: str | None = None, *, timeout: float = 10.0) -> str:
        base = auth.api_url if api_url is None else api_url.rstrip("/")
        return verify_static(auth, base + path, title, timeout=timeout)

    return check


def verify_static(auth: Any, url: str, title: str, *, timeout: float = 10.0) -> str:
    """Check static credentials with one ``GET url``: the answer of ``delivery-auth
    check`` (``"accepted the credentials (...)."``), or
    :class:`~delivery_auth.CredentialsRejectedError` when the API rejects them (its
    failure detector) and :class:`~delivery_auth.DeliveryAuthError` for anything but 2xx.

    Example::

        verify_static(auth, "https://api.shipengine.com/v1/carriers", "ShipEngine")
    """
    url = check_endpoint_url(url, "api_url")
    try:
        response = requests.get(url, auth=auth, timeout=timeout)
    except requests.RequestException as exc:
        raise DeliveryAuthError(
            f"Could not reach {url} ({type(exc).__name__}). Check the network and api_url."
        ) from None
    detector = auth._driver.flow.detector
    content_type = response.headers.get("Content-Type", "")
    if detector.is_auth_failure(response.status_code, content_type, response.content):
        raise CredentialsRejectedError(
            f"{title} rejected the credentials (HTTP {response.status_code} from GET {url}). "
            f"{type(auth).REJECTED_HINT}"
        )
    if not 200 <= response.status_code < 300:
        raise DeliveryAuthError(
            f"Unexpected answer from GET {url} (HTTP {response.status_code}). Check api_url."
        )
    return f"accepted the credentials (GET {url} answered HTTP {response.status_code})."
