"""FedEx: OAuth2 client credentials in form fields, with FedEx's child-account grants.

``POST https://apis.fedex.com/oauth/token`` (sandbox: ``apis-sandbox.fedex.com``) with
the form fields ``grant_type``, ``client_id`` (the project's API key) and
``client_secret`` (its secret key); no HTTP Basic. Compatible providers with child
accounts use ``grant_type=csp_credentials`` and parent-child integrators
``client_pc_credentials``: both add the child's key and secret, which FedEx's API
specification spells ``child_Key`` and ``child_secret`` (its prose says ``child_id``,
third-party code ``child_key``; whether FedEx minds the case is not known: pass
``child_fields=`` to send other names). Tokens live 60 minutes. FedEx answers 401
``NOT.AUTHORIZED.ERROR`` both for bad credentials at the token URL and for an expired
token on an API call; the latter gets one new token and one resend.

Example::

    auth = FedExAuth(api_key, secret_key, environment="sandbox")
    requests.post("https://apis-sandbox.fedex.com/rate/v1/rates/quotes", json=quote, auth=auth)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..cache.base import TokenCache
from ..client_credentials import ClientCredentialsAuth
from ..events import EventHook
from ..flow import FailureDetector
from ..hosts import LOOPBACK_HOSTS
from ..policy import BackoffPolicy
from .spec import EnvVar, ProviderSpec

__all__ = ["CHILD_FIELDS", "CHILD_GRANTS", "ENVIRONMENTS", "SPEC", "FedExAuth"]

#: ``environment`` -> (token endpoint, API host).
ENVIRONMENTS: Mapping[str, tuple[str, str]] = {
    "production": ("https://apis.fedex.com/oauth/token", "apis.fedex.com"),
    "sandbox": ("https://apis-sandbox.fedex.com/oauth/token", "apis-sandbox.fedex.com"),
}
#: The grants that send a child key and secret.
CHILD_GRANTS = ("csp_credentials", "client_pc_credentials")
GRANTS = ("client_credentials", *CHILD_GRANTS)
#: The form fields of the child key and secret, as FedEx's API specification spells them.
CHILD_FIELDS = ("child_Key", "child_secret")


class _EnvironmentHosts(tuple[str, ...]):
    """The default of ``allowed_hosts``: the environment's API host and loopback."""

    def __repr__(self) -> str:
        return "<the environment's API host and loopback>"


ENVIRONMENT_HOSTS = _EnvironmentHosts()


def _grant_fields(
    grant_type: str | None,
    child_key: str | None,
    child_secret: str | None,
    child_fields: Sequence[str],
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The grant type, its plain fields and its secret fields (the child secret); a
    ``ValueError`` for every inconsistent choice (naming the arguments, never the child
    secret)."""
    grant = "client_credentials" if grant_type is None else grant_type
    if grant not in GRANTS:
        raise ValueError(f"grant_type must be one of {', '.join(GRANTS)}; got {grant_type!r}")
    given = [name for name, v in (("child_key", child_key), ("child_secret", child_secret)) if v]
    if grant == "client_credentials":
        if given:
            raise ValueError(
                f"{' and '.join(given)} are sent only with grant_type='csp_credentials' "
                "(compatible providers) or 'client_pc_credentials' (parent-child); pass one "
                "of them, or leave out the child credentials."
            )
        return grant, {}, {}
    if len(given) != 2:
        missing = [name for name in ("child_key", "child_secret") if name not in given]
        raise ValueError(
            f"grant_type={grant!r} needs the child account's credentials: "
            f"{' and '.join(missing)} missing."
        )
    if (
        isinstance(child_fields, str)
        or len(child_fields) != 2
        or not all(isinstance(f, str) and f for f in child_fields)
    ):
        raise ValueError("child_fields must be two form field names (key, secret)")
    key_field, secret_field = child_fields
    return grant, {key_field: str(child_key)}, {secret_field: str(child_secret)}


class FedExAuth(ClientCredentialsAuth):
    """Auth for FedEx APIs (Ship, Rate, Track, ...): client credentials in the form.

    ``environment``: ``"production"`` (``apis.fedex.com``) or ``"sandbox"``
    (``apis-sandbox.fedex.com``); ``token_url`` overrides the token endpoint.
    ``grant_type``: ``None`` or ``"client_credentials"`` (customers and integrators),
    ``"csp_credentials"`` or ``"client_pc_credentials"``, which need ``child_key`` and
    ``child_secret`` (and only they take them). ``child_fields``: the form field names
    of the child key and secret (FedEx's spec: ``("child_Key", "child_secret")``).
    ``allowed_hosts`` defaults to the environment's API host plus loopback. The other
    options are those of :class:`~delivery_auth.ClientCredentialsAuth`.

    Example::

        auth = FedExAuth(api_key, secret_key, grant_type="csp_credentials",
                         child_key=child_key, child_secret=child_secret)
        with httpx.Client(auth=auth) as client:
            client.post("https://apis.fedex.com/ship/v1/shipments", json=shipment)
    """

    ENVIRONMENTS = ENVIRONMENTS

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        child_key: str | None = None,
        child_secret: str | None = None,
        grant_type: str | None = None,
        environment: str = "production",
        child_fields: Sequence[str] = CHILD_FIELDS,
        token_url: str | None = None,
        cache: TokenCache | None = None,
        refresh_margin: float = 60.0,
        refresh_ratio: float = 0.5,
        timeout: float = 10.0,
        max_token_age: float | None = None,
        allowed_hosts: Sequence[str] | str | None = ENVIRONMENT_HOSTS,
        backoff: BackoffPolicy | None = None,
        failure_detector: FailureDetector | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        key = environment.strip().lower() if isinstance(environment, str) else environment
        if key not in ENVIRONMENTS:
            valid = ", ".join(repr(name) for name in ENVIRONMENTS)
            raise ValueError(f"Unknown FedEx environment {environment!r}; valid: {valid}.")
        self.environment = key
        self._fedex_grant = _grant_fields(grant_type, child_key, child_secret, child_fields)
        self.grant_type = self._fedex_grant[0]
        self.child_key = child_key if self._fedex_grant[1] else None
        if allowed_hosts is ENVIRONMENT_HOSTS:
            allowed_hosts = (ENVIRONMENTS[key][1], *LOOPBACK_HOSTS)
        super().__init__(
            token_url or ENVIRONMENTS[key][0],
            client_id,
            client_secret,
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

    def _grant(self) -> tuple[str, dict[str, str], dict[str, str]]:
        # A child account's token is not its parent's: the base class puts the grant's
        # fields in the cache key and identity (the child secret hashed) and keeps the
        # child secret out of every error.
        return self._fedex_grant

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> FedExAuth:
        """Build from ``FEDEX_CLIENT_ID`` (the API key), ``FEDEX_CLIENT_SECRET`` (the
        secret key) and optionally ``FEDEX_CHILD_KEY``, ``FEDEX_CHILD_SECRET``,
        ``FEDEX_GRANT_TYPE`` and ``FEDEX_ENVIRONMENT`` (``production`` or ``sandbox``).

        Keyword ``overrides`` (e.g. ``token_url``) win over the environment.

        Example::

            auth = FedExAuth.from_env(environment="sandbox")
        """
        return cls(**SPEC.arguments_from_env(cls, environ, overrides))

    def __repr__(self) -> str:
        child = f", child_key={self.child_key!r}" if self.child_key else ""
        return (
            f"FedExAuth(client_id={self.client_id!r}, grant_type={self.grant_type!r}{child}, "
            f"environment={self.environment!r}, token_url={self.token_url!r})"
        )


SPEC = ProviderSpec(
    name="fedex",
    title="FedEx",
    auth_class=FedExAuth,
    env=(
        EnvVar("FEDEX_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar("FEDEX_CLIENT_SECRET", "client_secret", required=True, field="client_secret"),
        EnvVar("FEDEX_CHILD_KEY", "child_key", help="csp/client_pc grants: the child's key"),
        EnvVar(
            "FEDEX_CHILD_SECRET", "child_secret", help="csp/client_pc grants: the child's secret"
        ),
        EnvVar("FEDEX_GRANT_TYPE", "grant_type", help="client_credentials (default), ..."),
        EnvVar("FEDEX_ENVIRONMENT", "environment", help="production or sandbox"),
    ),
    default_hosts=tuple(sorted({host for _, host in ENVIRONMENTS.values()})) + LOOPBACK_HOSTS,
    failure_signal='HTTP 401 "NOT.AUTHORIZED.ERROR"',
    emulator_page="delivery_auth.emulator.fedex",
)
