"""ShipEngine (ShipStation API): a static API key in the ``API-Key`` header.

Sandbox keys start with ``TEST_`` and use the same hosts as live keys; the EU
accounts use ``api.eu.shipengine.com``. A bad or revoked key gets HTTP 401
``{"request_id", "errors": [{"error_source", "error_type", "error_code", "message"}]}``;
the key cannot be renewed, so that answer is returned with one WARNING.

Example::

    auth = ShipEngineAuth(os.environ["SHIPENGINE_API_KEY"])
    requests.get("https://api.shipengine.com/v1/carriers", auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..static import ApiKeyAuth, api_check
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = ["SPEC", "ShipEngineAuth"]


class ShipEngineAuth(ApiKeyAuth):
    """Auth for the ShipEngine API: ``API-Key: <api_key>``.

    ``api_url`` is the API's base URL (:meth:`verify` asks ``GET /v1/carriers`` there);
    ``allowed_hosts`` defaults to ``api.shipengine.com``, ``api.eu.shipengine.com`` and
    loopback. A 401 is returned as it is, with a WARNING: an API key is not renewed.

    Example::

        auth = ShipEngineAuth(api_key)
        requests.get("https://api.shipengine.com/v1/carriers", auth=auth)
        with httpx.Client(auth=auth) as client:
            client.get("https://api.eu.shipengine.com/v1/carriers")
    """

    API_URL = "https://api.shipengine.com"
    VERIFY_PATH = "/v1/carriers"
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = (
        "api.shipengine.com",
        "api.eu.shipengine.com",
        *LOOPBACK_HOSTS,
    )
    REJECTED_HINT = (
        "Check SHIPENGINE_API_KEY: the key may have been revoked or deleted in the "
        "dashboard (sandbox keys start with TEST_)."
    )

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = API_URL,
        allowed_hosts: Sequence[str] | str | None = DEFAULT_ALLOWED_HOSTS,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.api_url = check_endpoint_url(api_url, "api_url").rstrip("/")
        super().__init__(
            api_key,
            header="API-Key",
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            on_event=on_event,
        )
        self.sandbox = api_key.strip().startswith("TEST_")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ShipEngineAuth:
        """Build from ``SHIPENGINE_API_KEY``; keyword ``overrides`` (``api_url``,
        ``allowed_hosts``) win over the environment.

        Example::

            auth = ShipEngineAuth.from_env()
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def verify(self, *, timeout: float = 10.0) -> str:
        """Check the key with ``GET <api_url>/v1/carriers``; raises
        :class:`~delivery_auth.CredentialsRejectedError` on a 401."""
        return _check(self, timeout=timeout)

    def __repr__(self) -> str:
        return f"ShipEngineAuth(sandbox={self.sandbox}, api_url={self.api_url!r})"


_check = api_check("ShipEngine", ShipEngineAuth.VERIFY_PATH)


SPEC = ProviderSpec(
    name="shipengine",
    title="ShipEngine",
    auth_class=ShipEngineAuth,
    env=(EnvVar("SHIPENGINE_API_KEY", "api_key", required=True, field="token"),),
    default_hosts=ShipEngineAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal='HTTP 401 {"errors": [{"error_code": "unauthorized", ...}]}',
    emulator_page="delivery_auth.emulator.shipengine",
    endpoints=("api_url",),
    verify=_check,
    verify_help="GET /v1/carriers",
    api_url_help="the API base URL",
    token=TokenCommand(help="ShipEngine's API key is static: it is printed as sent"),
)
