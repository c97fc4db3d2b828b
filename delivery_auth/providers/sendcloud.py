"""Sendcloud: HTTP Basic with the integration's public and secret key, or (``oauth=True``)
OAuth2 client credentials with the same pair.

Basic (the default) sends ``public_key:secret_key`` on every call; nothing is renewed,
so a 401 is returned with one WARNING. Once OAuth2 is switched on for an integration,
Sendcloud refuses Basic: then ``oauth=True`` fetches a one-hour Bearer token at
``https://account.sendcloud.com/oauth2/token`` (HTTP Basic client authentication, form
``grant_type=client_credentials&scope=api``), refreshes it ahead of time and, on a 401,
fetches a fresh one and resends once.

Example::

    auth = SendcloudAuth(os.environ["SENDCLOUD_PUBLIC_KEY"], os.environ["SENDCLOUD_SECRET_KEY"])
    requests.get("https://panel.sendcloud.sc/api/v2/user", auth=auth)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..cache.base import TokenCache
from ..client_credentials import ClientCredentialsAuth
from ..engine import TokenEngine
from ..events import EventHook
from ..fetch import TokenFetcher
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..policy import BackoffPolicy, RefreshPolicy
from ..static import api_check, basic_credential, static_engine
from .base import check_overrides, read_env
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = ["SPEC", "SendcloudAuth"]

logger = logging.getLogger("delivery_auth")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SendcloudAuth(ClientCredentialsAuth):
    """Auth for the Sendcloud API with an integration's public and secret key.

    ``oauth=False`` (the default): ``Authorization: Basic base64(public:secret)`` on
    every call, never renewed (a 401 is returned as it is, with a WARNING).
    ``oauth=True``: a Bearer token from ``token_url`` (client credentials, HTTP Basic
    client authentication, ``scope``), cached and refreshed like any
    :class:`~delivery_auth.ClientCredentialsAuth` token; a 401 gets one fresh token
    and one resend. ``api_url`` is the API's base URL (:meth:`verify` asks ``GET
    /user`` there); ``allowed_hosts`` defaults to ``panel.sendcloud.sc``,
    ``account.sendcloud.com`` and loopback. The other keyword options matter with
    ``oauth=True`` only.

    Example::

        auth = SendcloudAuth(public_key, secret_key)                # Basic
        auth = SendcloudAuth(public_key, secret_key, oauth=True)    # OAuth2 (beta)
        requests.get("https://panel.sendcloud.sc/api/v2/user", auth=auth)
    """

    TOKEN_URL = "https://account.sendcloud.com/oauth2/token"
    API_URL = "https://panel.sendcloud.sc/api/v2"
    VERIFY_PATH = "/user"
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = (
        "panel.sendcloud.sc",
        "account.sendcloud.com",
        *LOOPBACK_HOSTS,
    )
    REJECTED_HINT = (
        "Check SENDCLOUD_PUBLIC_KEY and SENDCLOUD_SECRET_KEY; if OAuth2 was switched on "
        "for this integration, Sendcloud refuses Basic: use oauth=True "
        "(SENDCLOUD_OAUTH=true)."
    )

    def __init__(
        self,
        public_key: str,
        secret_key: str,
        *,
        oauth: bool = False,
        token_url: str = TOKEN_URL,
        api_url: str = API_URL,
        scope: str | Sequence[str] | None = "api",
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
        if not isinstance(oauth, bool):
            raise TypeError(f"oauth must be True or False, got {oauth!r}")
        self.oauth = oauth
        self.api_url = check_endpoint_url(api_url, "api_url").rstrip("/")
        # Checked here, worded for Sendcloud, before the pair is used either way.
        self._basic = basic_credential(
            _key("public_key", public_key), _key("secret_key", secret_key)
        )
        super().__init__(
            token_url,
            public_key.strip(),
            secret_key.strip(),
            scope=scope,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
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

    def _make_engine(
        self, fetcher: TokenFetcher, *, cache: TokenCache, key: str, policy: RefreshPolicy
    ) -> TokenEngine:
        if self.oauth:
            return super()._make_engine(fetcher, cache=cache, key=key, policy=policy)
        fetcher.close()  # Basic needs no token request
        return static_engine(self._basic, scheme="Basic")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> SendcloudAuth:
        """Build from ``SENDCLOUD_PUBLIC_KEY``, ``SENDCLOUD_SECRET_KEY`` and optionally
        ``SENDCLOUD_OAUTH`` (``true`` or ``false``); keyword ``overrides`` win.

        Example::

            auth = SendcloudAuth.from_env(oauth=True)
        """
        check_overrides(cls, overrides)
        values = read_env(
            cls.__name__,
            ("SENDCLOUD_PUBLIC_KEY", "SENDCLOUD_SECRET_KEY"),
            ("SENDCLOUD_OAUTH",),
            environ,
        )
        if "SENDCLOUD_OAUTH" in values:
            flag = values["SENDCLOUD_OAUTH"].lower()
            if flag not in _TRUE + _FALSE:
                raise ValueError(
                    f"SENDCLOUD_OAUTH must be true or false, got {values['SENDCLOUD_OAUTH']!r}"
                )
            overrides.setdefault("oauth", flag in _TRUE)
        return cls(values["SENDCLOUD_PUBLIC_KEY"], values["SENDCLOUD_SECRET_KEY"], **overrides)

    def verify(self, *, timeout: float = 10.0) -> str:
        """Check the credentials with ``GET <api_url>/user`` (with ``oauth=True`` a token
        is fetched first); raises :class:`~delivery_auth.CredentialsRejectedError` when
        the API answers 401 (after one fresh token with ``oauth=True``)."""
        return _check(self, timeout=timeout)

    def _cannot_refresh(self, status_code: int) -> None:
        logger.warning(
            "Sendcloud rejected the Basic credentials (HTTP %s); a public and secret key "
            "are not renewed, so the response is returned as it is. %s",
            status_code,
            self.REJECTED_HINT,
            extra={"credentials_rejected": True},  # the CLI reports it as its error
        )

    def _identity(self) -> tuple[object, ...]:
        return (*super()._identity(), self.oauth)

    def __repr__(self) -> str:
        if not self.oauth:
            return f"SendcloudAuth(public_key={self.client_id!r}, oauth=False)"
        return (
            f"SendcloudAuth(public_key={self.client_id!r}, oauth=True, "
            f"token_url={self.token_url!r})"
        )


def _key(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if name == "public_key" and ":" in value:
        raise ValueError("public_key must not contain ':'")
    return value.strip()


_check = api_check("Sendcloud", SendcloudAuth.VERIFY_PATH)


SPEC = ProviderSpec(
    name="sendcloud",
    title="Sendcloud",
    auth_class=SendcloudAuth,
    env=(
        EnvVar("SENDCLOUD_PUBLIC_KEY", "public_key", required=True, field="client_id"),
        EnvVar("SENDCLOUD_SECRET_KEY", "secret_key", required=True, field="client_secret"),
        EnvVar("SENDCLOUD_OAUTH", "oauth", help="true: OAuth2 instead of Basic"),
    ),
    default_hosts=SendcloudAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal="HTTP 401",
    emulator_page="delivery_auth.emulator.sendcloud",
    endpoints=("token_url", "api_url"),
    verify=_check,
    verify_help="GET /api/v2/user",
    api_url_help="the API base URL (.../api/v2)",
    token=TokenCommand(
        help="Sendcloud prints its Basic credential, or with -o oauth=true an OAuth2 token"
    ),
)
