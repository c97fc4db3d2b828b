"""DHL Express (MyDHL API): HTTP Basic with the API username and password on every call,
and the ``x-version`` header the API requires.

There is no token: the username and password are sent as they are, and a rejection
(HTTP 401, ``{instance, detail, title, message, status}``: the exact body is a guess)
is returned with one WARNING. ``x-version`` (``3.1.0`` by default, ``api_version=`` to
change it) is added to every request that does not set it.

Example::

    auth = MyDHLExpressAuth(os.environ["MYDHL_USERNAME"], os.environ["MYDHL_PASSWORD"],
                            environment="test")
    requests.get(auth.api_url + "/address-validate", params={...}, auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..static import BasicCredentialsAuth, api_check
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = ["API_VERSION", "ENVIRONMENTS", "SPEC", "MyDHLExpressAuth"]

#: ``environment`` -> the API's base URL.
ENVIRONMENTS: Mapping[str, str] = {
    "production": "https://express.api.dhl.com/mydhlapi",
    "test": "https://express.api.dhl.com/mydhlapi/test",
    "mock": "https://api-mock.dhl.com/mydhlapi",
}
#: The ``x-version`` MyDHL API 3.1 expects.
API_VERSION = "3.1.0"
#: A cheap authenticated call: validate a delivery address (what ``verify`` asks).
VERIFY_QUERY = "/address-validate?type=delivery&countryCode=DE&postalCode=53113&cityName=Bonn"


class MyDHLExpressAuth(BasicCredentialsAuth):
    """Auth for the DHL Express MyDHL API: ``Authorization: Basic`` on every call, plus
    ``x-version: <api_version>`` when the request does not set it.

    ``environment``: ``"production"`` (``express.api.dhl.com/mydhlapi``), ``"test"``
    (``express.api.dhl.com/mydhlapi/test``) or ``"mock"`` (``api-mock.dhl.com``); it sets
    :attr:`api_url` (``api_url=`` overrides it) and the default ``allowed_hosts`` (that
    host and loopback; ``allowed_hosts=()``, the default, means exactly that). A 401 is
    returned as it is, with a WARNING.

    Example::

        auth = MyDHLExpressAuth(username, password, environment="test")
        requests.get(auth.api_url + "/address-validate", params=query, auth=auth)
        with httpx.Client(auth=auth) as client:
            client.get(auth.api_url + "/address-validate", params=query)
    """

    ENVIRONMENTS = ENVIRONMENTS
    REJECTED_HINT = (
        "Check MYDHL_USERNAME and MYDHL_PASSWORD, and that they are for this environment "
        "(test and production credentials differ)."
    )

    def __init__(
        self,
        username: str,
        password: str,
        *,
        environment: str = "production",
        api_url: str | None = None,
        api_version: str = API_VERSION,
        allowed_hosts: Sequence[str] | str | None = (),
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        key = environment.strip().lower() if isinstance(environment, str) else environment
        if key not in ENVIRONMENTS:
            valid = ", ".join(repr(name) for name in ENVIRONMENTS)
            raise ValueError(f"Unknown MyDHL API environment {environment!r}; valid: {valid}.")
        self.environment = key
        self.api_url = check_endpoint_url(api_url or ENVIRONMENTS[key], "api_url").rstrip("/")
        if allowed_hosts == ():  # the default: the environment's host
            allowed_hosts = self.default_hosts(key)
        super().__init__(
            username,
            password,
            allowed_hosts=allowed_hosts,
            failure_detector=failure_detector,
            default_headers={"x-version": api_version},
            on_event=on_event,
        )

    @staticmethod
    def default_hosts(environment: str) -> tuple[str, ...]:
        """The hosts the credentials may go to in ``environment`` (and loopback)."""
        host = ENVIRONMENTS[environment].split("/")[2]
        return (host, *LOOPBACK_HOSTS)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> MyDHLExpressAuth:
        """Build from ``MYDHL_USERNAME``, ``MYDHL_PASSWORD`` and optionally
        ``MYDHL_ENVIRONMENT`` (``production``, ``test`` or ``mock``); keyword
        ``overrides`` win over the environment.

        Example::

            auth = MyDHLExpressAuth.from_env(environment="test")
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def verify(self, *, timeout: float = 10.0) -> str:
        """Check the credentials with ``GET <api_url>/address-validate``; raises
        :class:`~delivery_auth.CredentialsRejectedError` on a 401."""
        return _check(self, timeout=timeout)

    def __repr__(self) -> str:
        return (
            f"MyDHLExpressAuth(username={self.username!r}, environment={self.environment!r}, "
            f"api_url={self.api_url!r})"
        )


_check = api_check("MyDHL API", VERIFY_QUERY)


SPEC = ProviderSpec(
    name="mydhl",
    title="DHL Express (MyDHL API)",
    auth_class=MyDHLExpressAuth,
    env=(
        EnvVar("MYDHL_USERNAME", "username", required=True, field="client_id"),
        EnvVar("MYDHL_PASSWORD", "password", required=True, field="token"),
        EnvVar("MYDHL_ENVIRONMENT", "environment", help="production, test or mock"),
    ),
    default_hosts=tuple(
        dict.fromkeys(h for env in ENVIRONMENTS for h in MyDHLExpressAuth.default_hosts(env))
    ),
    failure_signal="HTTP 401",
    emulator_page="delivery_auth.emulator.mydhl",
    endpoints=("api_url",),
    verify=_check,
    verify_help="GET /address-validate",
    api_url_help="the API base URL (.../mydhlapi or .../mydhlapi/test)",
    token=TokenCommand(help="MyDHL uses Basic credentials: their Basic value is printed"),
)
