"""Yandex Courier (Track & Trace): a long-lived OAuth token from Yandex ID.

The header is ``Authorization: OAuth <token>``. A 401 means the token was revoked or
has expired: with a refresh token (and the app's client credentials) it is renewed
once through Yandex ID; without one the 401 is returned with a WARNING on how to get
a new token. A 403 ("Company apikey is unknown or banned", missing administrator
role) is never a token problem. Getting a token: :mod:`delivery_auth.yandex`.

Example::

    auth = YandexCourierAuth(os.environ["YANDEX_COURIER_TOKEN"])
    auth.verify()                      # GET /api/v1/test -> {"message": "OK"}
    requests.get("https://courier.yandex.ru/api/v1/companies/42/orders", auth=auth)
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import requests

from ...auth import DeliveryAuth
from ...cache.memory import MemoryTokenCache
from ...engine import TokenEngine, TokenSource
from ...errors import DeliveryAuthError, InvalidClientError, TokenRequestError, TokenRevokedError
from ...events import EventHook
from ...fetch import TokenFetcher
from ...flow import FailureDetector
from ...hosts import LOOPBACK_HOSTS, check_endpoint_url
from ...policy import BackoffPolicy, RefreshPolicy
from ...token import Token
from ..base import StaticSource, check_overrides, read_env

__all__ = ["API_URL", "TOKEN_URL", "YandexCourierAuth", "verify_line"]

logger = logging.getLogger("delivery_auth")

API_URL = "https://courier.yandex.ru"
TOKEN_URL = "https://oauth.yandex.com/token"

_NEW_TOKEN_HOWTO = (
    "Get a new token: open delivery_auth.yandex.authorize_url(client_id) in a browser "
    "as a company administrator, or run delivery_auth.yandex.device_login(client_id, "
    "client_secret); pass refresh_token=, client_id= and client_secret= to have it "
    "renewed automatically."
)


class _RefreshGrant:
    """Renews the access token with Yandex ID's ``refresh_token`` grant.

    Keeps the newest refresh token Yandex ID returns, and refuses to hand back the
    same access token: resending a token the API rejected cannot help.
    """

    __slots__ = ("_fetcher", "_last", "_refresh_token")

    def __init__(self, fetcher: TokenFetcher, refresh_token: str, access_token: str) -> None:
        self._fetcher = fetcher
        self._refresh_token = refresh_token
        self._last = access_token

    def fetch(self) -> Token:
        try:
            token = self._fetcher.fetch(
                grant_type="refresh_token", refresh_token=self._refresh_token
            )
        except TokenRequestError as exc:
            if isinstance(exc, InvalidClientError) or exc.error != "invalid_grant":
                raise
            raise TokenRevokedError(
                "Yandex ID refused the refresh token (invalid_grant): it was revoked or "
                f"has expired. {_NEW_TOKEN_HOWTO}"
            ) from None
        if token.access_token == self._last:
            raise TokenRevokedError(
                "Yandex ID renewed the token to the same value the API rejected; "
                f"resending it cannot help. {_NEW_TOKEN_HOWTO}"
            )
        if token.refresh_token:
            self._refresh_token = token.refresh_token
        self._last = token.access_token
        return token

    def close(self) -> None:
        self._fetcher.close()

    def reset_after_fork(self) -> None:
        self._fetcher.reset_after_fork()


def _check_credential(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    value = value.strip()
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError(f"{name} must not contain control characters")
    if name == "token" and value.lower().startswith(("oauth ", "bearer ")):
        raise ValueError("pass the token alone, without the 'OAuth ' prefix")
    return value


class YandexCourierAuth(DeliveryAuth):
    """Auth for the Yandex Courier (Track & Trace) API with a Yandex ID OAuth token.

    Sends ``Authorization: OAuth <token>``. On a 401, with ``refresh_token``,
    ``client_id`` and ``client_secret`` it renews the token once at ``token_url``
    (``grant_type=refresh_token``) and resends once; without them it returns the 401
    and logs a WARNING saying how to get a new token. A 403 is never retried.

    ``api_url`` is the API's base URL (for :meth:`verify`); ``allowed_hosts`` defaults
    to ``courier.yandex.ru``, ``courier.yandex.com``, Yandex ID's hosts and loopback.

    Example::

        auth = YandexCourierAuth(token)
        auth.verify()
        requests.get("https://courier.yandex.ru/api/v1/companies/42/orders", auth=auth)
        with httpx.Client(auth=auth) as client:
            client.get("https://courier.yandex.ru/api/v1/companies/42/orders")
    """

    API_URL = API_URL
    TOKEN_URL = TOKEN_URL
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = (
        "courier.yandex.ru",
        "courier.yandex.com",
        "oauth.yandex.ru",
        "oauth.yandex.com",
        "login.yandex.ru",
        *LOOPBACK_HOSTS,
    )

    def __init__(
        self,
        token: str,
        *,
        refresh_token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str = TOKEN_URL,
        api_url: str = API_URL,
        allowed_hosts: Sequence[str] | str | None = DEFAULT_ALLOWED_HOSTS,
        timeout: float = 10.0,
        backoff: BackoffPolicy | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        token = _check_credential("token", token)
        self.api_url = check_endpoint_url(api_url, "api_url").rstrip("/")
        self.client_id = client_id
        self._token_hash = hashlib.sha256(token.encode()).hexdigest()
        source: TokenSource
        if refresh_token is not None:
            refresh_token = _check_credential("refresh_token", refresh_token)
            missing = [
                name
                for name, value in (("client_id", client_id), ("client_secret", client_secret))
                if not value
            ]
            if missing:
                raise ValueError(
                    f"refresh_token needs {' and '.join(missing)} too: Yandex ID renews "
                    "tokens only for the app that issued them."
                )
            fetcher = TokenFetcher(
                token_url, str(client_id), str(client_secret), timeout=timeout, backoff=backoff
            )
            source = _RefreshGrant(fetcher, refresh_token, token)
        else:
            source = StaticSource("A Yandex Courier token without a refresh token")
        self.refreshable = refresh_token is not None
        engine = TokenEngine(
            source,
            cache=MemoryTokenCache(),
            key=f"yandex-courier-{self._token_hash[:16]}",
            # Renewed tokens live about a year: renew one only when it is about to expire.
            policy=RefreshPolicy(refresh_ratio=1.0),
            format_header=lambda t: f"OAuth {t.access_token}",
            initial=Token(access_token=token, token_type="OAuth"),  # noqa: S106
            refreshable=self.refreshable,
        )
        super().__init__(
            engine,
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> YandexCourierAuth:
        """Build from ``YANDEX_COURIER_TOKEN`` and, for automatic renewal,
        ``YANDEX_REFRESH_TOKEN`` with ``YANDEX_CLIENT_ID`` and ``YANDEX_CLIENT_SECRET``.

        Keyword ``overrides`` (e.g. ``api_url``, ``token_url``) win over the environment.

        Example::

            auth = YandexCourierAuth.from_env()
        """
        check_overrides(cls, overrides)
        optional = ("YANDEX_REFRESH_TOKEN", "YANDEX_CLIENT_ID", "YANDEX_CLIENT_SECRET")
        values = read_env(cls.__name__, ("YANDEX_COURIER_TOKEN",), optional, environ)
        if "YANDEX_REFRESH_TOKEN" in values:
            # A refresh token is useless without the app's credentials: name them all.
            read_env(
                cls.__name__,
                ("YANDEX_COURIER_TOKEN", *optional),
                environ=values,
            )
        for option, name in zip(
            ("refresh_token", "client_id", "client_secret"), optional, strict=True
        ):
            if name in values:
                overrides.setdefault(option, values[name])
        return cls(values["YANDEX_COURIER_TOKEN"], **overrides)

    # -- verification -----------------------------------------------------------------

    @property
    def test_url(self) -> str:
        """The API's token check: ``GET <api_url>/api/v1/test``."""
        return f"{self.api_url}/api/v1/test"

    def verify(self, *, timeout: float = 10.0) -> None:
        """Check the token against ``GET /api/v1/test``; return when it answers OK.

        Raises :class:`~delivery_auth.TokenRevokedError` on 401 (after one renewal
        attempt when a refresh token is configured) and
        :class:`~delivery_auth.DeliveryAuthError` on anything else, with what to do.

        Example::

            YandexCourierAuth(token).verify()
        """
        self._verify_at(self.test_url, timeout)

    def _verify_at(self, test_url: str, timeout: float) -> None:
        try:
            response = requests.get(test_url, auth=self, timeout=timeout)
        except requests.RequestException as exc:
            raise DeliveryAuthError(
                f"Could not reach {test_url} ({type(exc).__name__}). Check the network and api_url."
            ) from None
        self._check_verification(response.status_code, response.content, test_url)

    async def averify(self, *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """:meth:`verify` with httpx, for asyncio and trio (``timeout``: per HTTP request)."""
        try:
            async with httpx.AsyncClient(auth=self, timeout=timeout) as client:
                response = await client.get(self.test_url)
        except httpx.HTTPError as exc:
            raise DeliveryAuthError(
                f"Could not reach {self.test_url} ({type(exc).__name__}). Check the network "
                "and api_url."
            ) from None
        self._check_verification(response.status_code, response.content, self.test_url)

    def _check_verification(self, status_code: int, body: bytes, test_url: str) -> None:
        if status_code == 401:
            raise TokenRevokedError(
                f"Yandex Courier rejected the token (HTTP 401 from {test_url}): it was "
                f"revoked, has expired or was issued for another app. {_NEW_TOKEN_HOWTO}"
            )
        if status_code == 403:
            raise DeliveryAuthError(
                f"Yandex Courier accepted the token but refused access (HTTP 403 from "
                f"{test_url}): the company API key is unknown or banned, or the "
                "token's user is not an administrator of the company. Ask the company "
                "administrator to issue the token; a new token of the same user will not help."
            )
        payload: object = None
        if status_code == 200:
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):
                payload = None
        if isinstance(payload, dict) and payload.get("message") == "OK":
            return
        hint = (
            "The service is busy; try again later."
            if status_code in (429, 502, 503, 504)
            else "Check api_url."
        )
        raise DeliveryAuthError(
            f"Unexpected answer from {test_url} (HTTP {status_code}), expected "
            f'{{"message": "OK"}}. {hint}'
        )

    @property
    def renewed(self) -> bool:
        """Whether the token in use is no longer the one this object was given (it was
        rejected and renewed with the refresh token)."""
        current = self.get_token().access_token
        return hashlib.sha256(current.encode()).hexdigest() != self._token_hash

    # -- hooks ------------------------------------------------------------------------

    def _cannot_refresh(self, status_code: int) -> None:
        logger.warning(
            "Yandex Courier rejected the OAuth token (HTTP %s): it was revoked or has "
            "expired, and there is no refresh token to renew it. The response is returned "
            "as it is. %s",
            status_code,
            _NEW_TOKEN_HOWTO,
            extra={"credentials_rejected": True},  # the CLI reports it as its error
        )

    def _identity(self) -> tuple[object, ...]:
        return (self._token_hash, self.client_id, self.api_url, self.refreshable)

    def __repr__(self) -> str:
        return (
            f"YandexCourierAuth(client_id={self.client_id!r}, refreshable={self.refreshable}, "
            f"api_url={self.api_url!r})"
        )


def verify_line(auth: YandexCourierAuth, api_url: str | None) -> str:
    """:attr:`ProviderSpec.verify <delivery_auth.providers.spec.ProviderSpec.verify>` of
    Yandex Courier: ``GET /api/v1/test`` at ``api_url`` (``None``: the auth object's)."""
    if api_url is None:
        test_url = auth.test_url
    else:
        test_url = f"{check_endpoint_url(api_url, 'api_url').rstrip('/')}/api/v1/test"
    auth._verify_at(test_url, 10.0)
    how = (
        ", renewed with YANDEX_REFRESH_TOKEN: YANDEX_COURIER_TOKEN itself was rejected"
        if auth.renewed
        else ""
    )
    return f"accepted the token{how} ({test_url} answered OK)."
