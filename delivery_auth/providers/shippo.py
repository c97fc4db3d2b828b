"""Shippo: a static API token, ``Authorization: ShippoToken <token>``.

Test tokens start with ``shippo_test_`` and live ones with ``shippo_live_``; both use
``api.goshippo.com`` (there is no sandbox host). A bad token gets HTTP 401
``{"detail": "Token does not exist"}``; the token cannot be renewed, so that answer
is returned with one WARNING.

Example::

    auth = ShippoAuth(os.environ["SHIPPO_API_TOKEN"])
    requests.get("https://api.goshippo.com/carrier_accounts", auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..static import ApiKeyAuth, api_check
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = ["SPEC", "ShippoAuth"]


class ShippoAuth(ApiKeyAuth):
    """Auth for the Shippo API: ``Authorization: ShippoToken <token>``.

    ``mode`` says ``"test"`` or ``"live"`` from the token's prefix (``"unknown"``
    otherwise). ``api_url`` is the API's base URL (:meth:`verify` asks ``GET
    /carrier_accounts`` there); ``allowed_hosts`` defaults to ``api.goshippo.com`` and
    loopback. A 401 is returned as it is, with a WARNING: a token is not renewed.

    Example::

        auth = ShippoAuth(token)
        requests.get("https://api.goshippo.com/carrier_accounts", auth=auth)
        with httpx.Client(auth=auth) as client:
            client.get("https://api.goshippo.com/carrier_accounts")
    """

    API_URL = "https://api.goshippo.com"
    VERIFY_PATH = "/carrier_accounts"
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("api.goshippo.com", *LOOPBACK_HOSTS)
    REJECTED_HINT = (
        "Check SHIPPO_API_TOKEN: the token may have been revoked; create one under "
        "Settings > API in the Shippo dashboard (shippo_test_ for tests, shippo_live_ "
        "for real labels)."
    )

    def __init__(
        self,
        token: str,
        *,
        api_url: str = API_URL,
        allowed_hosts: Sequence[str] | str | None = DEFAULT_ALLOWED_HOSTS,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.api_url = check_endpoint_url(api_url, "api_url").rstrip("/")
        super().__init__(
            token,
            scheme="ShippoToken",
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )
        prefix = token.strip()
        self.mode = (
            "test"
            if prefix.startswith("shippo_test_")
            else "live"
            if prefix.startswith("shippo_live_")
            else "unknown"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ShippoAuth:
        """Build from ``SHIPPO_API_TOKEN``; keyword ``overrides`` (``api_url``,
        ``allowed_hosts``) win over the environment.

        Example::

            auth = ShippoAuth.from_env()
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def verify(self, *, timeout: float = 10.0) -> str:
        """Check the token with ``GET <api_url>/carrier_accounts``; raises
        :class:`~delivery_auth.CredentialsRejectedError` on a 401."""
        return _check(self, timeout=timeout)

    def __repr__(self) -> str:
        return f"ShippoAuth(mode={self.mode!r}, api_url={self.api_url!r})"


_check = api_check("Shippo", ShippoAuth.VERIFY_PATH)


SPEC = ProviderSpec(
    name="shippo",
    title="Shippo",
    auth_class=ShippoAuth,
    env=(EnvVar("SHIPPO_API_TOKEN", "token", required=True, field="token"),),
    default_hosts=ShippoAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal='HTTP 401 {"detail": "Token does not exist"}',
    emulator_page="delivery_auth.emulator.shippo",
    endpoints=("api_url",),
    verify=_check,
    verify_help="GET /carrier_accounts",
    api_url_help="the API base URL",
    token=TokenCommand(help="Shippo's API token is static: it is printed as sent"),
)
