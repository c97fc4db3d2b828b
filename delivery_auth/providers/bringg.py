"""Bringg (Delivery Hub): OAuth2 client credentials on the account's regional host.

The token response carries ``created_at``, the server's clock at issue: it is used
only to warn about a skewed local clock; lifetimes are measured locally from
``expires_in``. ``success: false`` at HTTP 200 is a business error, not an auth one:
only a 401 gets a fresh token.

Example::

    auth = BringgAuth(client_id, client_secret, region="eu2", ttl=1800)
    requests.get("https://eu2-admin-api.bringg.com/services/...", auth=auth)
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..cache.base import TokenCache
from ..client_credentials import ClientCredentialsAuth
from ..engine import TokenSource
from ..errors import ConfigurationError
from ..events import EventHook
from ..fetch import TokenFetcher
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS
from ..policy import BackoffPolicy
from ..token import Token
from .base import check_overrides, read_env
from .spec import EnvVar, ProviderSpec

__all__ = [
    "REGION_HOSTS",
    "SPEC",
    "BringgAuth",
]

logger = logging.getLogger("delivery_auth")

#: ``region`` -> API host (``None``: the global host of Bringg's examples).
REGION_HOSTS: Mapping[str | None, str] = {
    None: "admin-api.bringg.com",
    "us2": "us2-admin-api.bringg.com",
    "us3": "us3-api.bringg.com",
    "eu2": "eu2-admin-api.bringg.com",
    "eu3": "eu3-admin-api.bringg.com",
}

#: A server clock further than this from ours earns one WARNING.
CLOCK_SKEW_TOLERANCE = 60.0


class _ClockSkewCheck:
    """Wraps the fetcher: compares each token's ``created_at`` with the local clock."""

    __slots__ = ("_fetcher", "_warned")

    def __init__(self, fetcher: TokenFetcher) -> None:
        self._fetcher = fetcher
        self._warned = False

    def fetch(self) -> Token:
        token = self._fetcher.fetch()
        created_at = token.extra.get("created_at")
        server_time: float | None = None
        if isinstance(created_at, (int, float)) and not isinstance(created_at, bool):
            with contextlib.suppress(OverflowError):  # an int beyond any float
                server_time = float(created_at)
        if not self._warned and server_time is not None and math.isfinite(server_time):
            ahead = server_time - token.issued_at
            if abs(ahead) > CLOCK_SKEW_TOLERANCE:
                self._warned = True
                logger.warning(
                    "Bringg's clock is %.0f s %s this machine's clock (token created_at vs "
                    "local time). Token lifetimes are measured locally from expires_in, so "
                    "delivery-auth is not affected, but check this machine's time "
                    "synchronisation (NTP): other time-based checks may fail.",
                    abs(ahead),
                    "ahead of" if ahead > 0 else "behind",
                )
        return token

    def close(self) -> None:
        self._fetcher.close()

    def reset_after_fork(self) -> None:
        self._fetcher.reset_after_fork()


def _check_ttl(ttl: object) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"ttl must be a positive whole number of seconds, got {ttl!r}")
    return ttl


class BringgAuth(ClientCredentialsAuth):
    """Auth for Bringg's Delivery Hub APIs.

    ``region``: ``None`` (``admin-api.bringg.com``), ``"us2"``, ``"us3"``, ``"eu2"`` or
    ``"eu3"``; the token URL is ``https://<region host>/oauth/token`` unless
    ``token_url`` is given. ``ttl`` (seconds) is sent on every token request,
    refreshes included. A 401 from the API gets one fresh token and one resend.

    The other keyword options are those of :class:`~delivery_auth.ClientCredentialsAuth`.
    ``allowed_hosts`` defaults to ``*.bringg.com`` plus loopback.

    Example::

        auth = BringgAuth(client_id, client_secret, region="us2")
        requests.post("https://us2-admin-api.bringg.com/services/...", json=order, auth=auth)
        async with httpx.AsyncClient(auth=auth) as client:
            await client.post("https://us2-admin-api.bringg.com/services/...", json=order)
    """

    REGION_HOSTS = REGION_HOSTS
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("*.bringg.com", *LOOPBACK_HOSTS)

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        region: str | None = None,
        ttl: int | None = None,
        token_url: str | None = None,
        scope: str | Sequence[str] | None = None,
        token_endpoint_auth_method: str = "client_secret_post",
        token_params: Mapping[str, object] | None = None,
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
        key = region.strip().lower() if isinstance(region, str) else region
        if key not in REGION_HOSTS:
            valid = ", ".join(repr(name) for name in REGION_HOSTS)
            raise ValueError(f"Unknown Bringg region {region!r}; valid regions: {valid}.")
        self.region = key
        self.ttl = _check_ttl(ttl)
        params = dict(token_params or {})
        if self.ttl is not None:
            params["ttl"] = self.ttl
        super().__init__(
            token_url or f"https://{REGION_HOSTS[key]}/oauth/token",
            client_id,
            client_secret,
            scope=scope,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token_params=params,
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

    @property
    def api_host(self) -> str:
        """The API host of the configured region."""
        return REGION_HOSTS[self.region]

    def _token_source(self, fetcher: TokenFetcher) -> TokenSource:
        return _ClockSkewCheck(fetcher)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BringgAuth:
        """Build from ``BRINGG_CLIENT_ID``, ``BRINGG_CLIENT_SECRET`` and optionally
        ``BRINGG_REGION`` and ``BRINGG_TTL`` (seconds).

        Keyword ``overrides`` (e.g. ``token_url``) win over the environment.

        Example::

            auth = BringgAuth.from_env()
        """
        values = read_env(
            cls.__name__,
            ("BRINGG_CLIENT_ID", "BRINGG_CLIENT_SECRET"),
            ("BRINGG_REGION", "BRINGG_TTL"),
            environ,
        )
        check_overrides(cls, overrides)
        if "BRINGG_REGION" in values:
            overrides.setdefault("region", values["BRINGG_REGION"])
        if "BRINGG_TTL" in values and "ttl" not in overrides:
            raw = values["BRINGG_TTL"]
            if not raw.isdigit() or int(raw) == 0:
                raise ConfigurationError(
                    f"BRINGG_TTL must be a positive whole number of seconds, got {raw[:20]!r}."
                )
            overrides["ttl"] = int(raw)
        return cls(values["BRINGG_CLIENT_ID"], values["BRINGG_CLIENT_SECRET"], **overrides)

    def __repr__(self) -> str:
        return (
            f"BringgAuth(client_id={self.client_id!r}, region={self.region!r}, "
            f"token_url={self.token_url!r})"
        )


SPEC = ProviderSpec(
    name="bringg",
    title="Bringg",
    auth_class=BringgAuth,
    env=(
        EnvVar("BRINGG_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar("BRINGG_CLIENT_SECRET", "client_secret", required=True, field="client_secret"),
        EnvVar("BRINGG_REGION", "region", help="us2, eu2, ..."),
        EnvVar("BRINGG_TTL", "ttl", help="requested token lifetime in seconds"),
    ),
    default_hosts=BringgAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal="HTTP 401",
    emulator_page="delivery_auth.emulator.bringg",
)
