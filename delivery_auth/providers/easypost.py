"""EasyPost: HTTP Basic with the API key as the username and an empty password.

Test and production keys share ``api.easypost.com``. A bad key gets HTTP 401
``{"error": {"code", "message", "errors"}}`` (an inactive one says "This api key is no
longer active"); the key cannot be renewed, so that answer is returned with one WARNING.

Example::

    auth = EasyPostAuth(os.environ["EASYPOST_API_KEY"])
    requests.get("https://api.easypost.com/v2/addresses", auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..static import BasicCredentialsAuth, api_check
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = ["SPEC", "EasyPostAuth"]


class EasyPostAuth(BasicCredentialsAuth):
    """Auth for the EasyPost API: ``Authorization: Basic base64(<api_key>:)``.

    ``api_url`` is the API's base URL, ``https://api.easypost.com/v2`` (:meth:`verify`
    asks ``GET /addresses`` there); ``allowed_hosts`` defaults to ``api.easypost.com``
    and loopback. A 401 is returned as it is, with a WARNING: a key is not renewed.

    Example::

        auth = EasyPostAuth(api_key)
        requests.get("https://api.easypost.com/v2/addresses", auth=auth)
        with httpx.Client(auth=auth) as client:
            client.get("https://api.easypost.com/v2/addresses")
    """

    API_URL = "https://api.easypost.com/v2"
    VERIFY_PATH = "/addresses"
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = ("api.easypost.com", *LOOPBACK_HOSTS)
    REJECTED_HINT = (
        "Check EASYPOST_API_KEY: the key may have been deactivated or deleted; the "
        "dashboard's API Keys page lists the active test and production keys."
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
        if isinstance(api_key, str):
            api_key = api_key.strip()
        try:
            super().__init__(
                api_key,
                "",
                allowed_hosts=allowed_hosts,
                failure_detector=failure_detector,
                on_event=on_event,
            )
        except ValueError as exc:  # worded for the username: say api_key
            raise ValueError(str(exc).replace("username", "api_key")) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> EasyPostAuth:
        """Build from ``EASYPOST_API_KEY``; keyword ``overrides`` (``api_url``,
        ``allowed_hosts``) win over the environment.

        Example::

            auth = EasyPostAuth.from_env()
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def verify(self, *, timeout: float = 10.0) -> str:
        """Check the key with ``GET <api_url>/addresses``; raises
        :class:`~delivery_auth.CredentialsRejectedError` on a 401."""
        return _check(self, timeout=timeout)

    def __repr__(self) -> str:
        return f"EasyPostAuth(api_url={self.api_url!r})"


_check = api_check("EasyPost", EasyPostAuth.VERIFY_PATH)


SPEC = ProviderSpec(
    name="easypost",
    title="EasyPost",
    auth_class=EasyPostAuth,
    env=(EnvVar("EASYPOST_API_KEY", "api_key", required=True, field="token"),),
    default_hosts=EasyPostAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal='HTTP 401 {"error": {"code": ..., "message": ...}}',
    emulator_page="delivery_auth.emulator.easypost",
    endpoints=("api_url",),
    verify=_check,
    verify_help="GET /v2/addresses",
    api_url_help="the API base URL (.../v2)",
    token=TokenCommand(help="EasyPost's key is static: its Basic credential is printed"),
)
