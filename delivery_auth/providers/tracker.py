"""Delivery Tracker (tracker.delivery): GraphQL parcel tracking.

Two ways in: an API key sent as ``Authorization: TRACKQL-API-KEY <id>:<secret>``
(the vendor's recommendation, nothing to refresh), or OAuth2 client credentials
and a Bearer token. Either way the API reports a rejected credential in the GraphQL
body, at any HTTP status: an ``errors`` element with
``extensions.code == "UNAUTHENTICATED"`` (in a batched request's answer, a JSON array of
responses, in any one of them). :class:`GraphQLFailureDetector` finds it.

Example::

    auth = DeliveryTrackerAuth("client-id", "client-secret")            # API key
    auth = DeliveryTrackerAuth("client-id", "client-secret", method="oauth2")
    query = {"query": "{ carriers(first: 1) { edges { node { id } } } }"}
    requests.post(DeliveryTrackerAuth.GRAPHQL_URL, json=query, auth=auth)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from ..cache.base import TokenCache
from ..cache.memory import MemoryTokenCache
from ..client_credentials import ClientCredentialsAuth
from ..engine import TokenEngine
from ..errors import CredentialsRejectedError, DeliveryAuthError
from ..events import EventHook
from ..fetch import TokenFetcher
from ..flow import DEFAULT_MAX_BODY, FailureDetector
from ..hosts import LOOPBACK_HOSTS, check_endpoint_url
from ..policy import BackoffPolicy, RefreshPolicy
from ..token import Token
from .base import StaticSource, check_overrides, read_env
from .spec import EnvVar, ProviderSpec, TokenCommand

__all__ = [
    "AUTH_TEST_QUERY",
    "SPEC",
    "DeliveryTrackerAuth",
    "GraphQLFailureDetector",
    "graphql_error_codes",
    "is_json_content_type",
]

#: The query Delivery Tracker's documentation uses to test credentials.
AUTH_TEST_QUERY = "query AuthTestQuery { carriers(first: 10) { edges { node { id name } } } }"

logger = logging.getLogger("delivery_auth")


def is_json_content_type(content_type: str) -> bool:
    """True for ``application/json`` and ``application/*+json`` (any parameters)."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def graphql_error_codes(payload: object) -> list[str]:
    """The ``extensions.code`` strings of a decoded GraphQL answer's ``errors``, in order.

    The answer to a batched request (a JSON array of operations, as Apollo Server and
    others accept) is a JSON array of responses: their codes are joined. Anything of
    another shape (``errors`` not a list, elements that are not objects, a code that
    is not a string) contributes nothing; it never raises.

    Example::

        graphql_error_codes({"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]})
        # ['UNAUTHENTICATED']
    """
    responses = payload if isinstance(payload, list) else [payload]
    codes: list[str] = []
    for response in responses:
        errors = response.get("errors") if isinstance(response, dict) else None
        for error in errors if isinstance(errors, list) else ():
            extensions = error.get("extensions") if isinstance(error, dict) else None
            code = extensions.get("code") if isinstance(extensions, dict) else None
            if isinstance(code, str):
                codes.append(code)
    return codes


class GraphQLFailureDetector:
    """An auth failure is a JSON response, of any HTTP status, whose GraphQL ``errors``
    array holds an error with ``extensions.code == code`` (``"UNAUTHENTICATED"``); for a
    batched request, answered with a JSON array of responses, when any one of them does.

    Only JSON responses are read, and only when the body has at most ``max_body`` bytes:
    the auth never reads more of a body than that (a longer one, or one whose
    ``Content-Length`` says so, is handed to you untouched and is not a failure). The
    body is parsed only when it contains the code as plain bytes; anything malformed
    (not JSON, truncated, ``errors`` not a list, odd elements) is "not an auth
    failure", never an exception. ``FORBIDDEN`` and other codes never match.

    Example::

        detector = GraphQLFailureDetector()
        body = b'{"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}'
        detector.is_auth_failure(200, "application/json", body)   # True
    """

    __slots__ = ("_needle", "code", "max_body")

    def __init__(self, code: str = "UNAUTHENTICATED", *, max_body: int = DEFAULT_MAX_BODY) -> None:
        if not isinstance(code, str) or not code:
            raise ValueError("code must be a non-empty string such as 'UNAUTHENTICATED'")
        if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
            raise ValueError(f"max_body must be a positive number of bytes, got {max_body!r}")
        self.code = code
        self.max_body = max_body
        self._needle = code.encode()

    def __repr__(self) -> str:
        return f"GraphQLFailureDetector(code={self.code!r}, max_body={self.max_body})"

    def needs_body(self, status_code: int, content_type: str) -> bool:
        """Only JSON responses can carry a GraphQL error; the status does not matter."""
        return is_json_content_type(content_type)

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool:
        """Whether ``body`` reports ``code`` (cheap byte search first, then JSON)."""
        if not body or not is_json_content_type(content_type):
            return False
        if len(body) > self.max_body or self._needle not in body:
            return False
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, truncated, bad UTF-8, too deep
            return False
        return self.code in graphql_error_codes(payload)


METHODS = ("api_key", "oauth2")


class DeliveryTrackerAuth(ClientCredentialsAuth):
    """Auth for the Delivery Tracker GraphQL API.

    ``method="api_key"`` (default, the vendor's recommendation) sends
    ``Authorization: TRACKQL-API-KEY <client_id>:<client_secret>``; there is nothing
    to refresh, so an ``UNAUTHENTICATED`` answer is returned as it is, with a WARNING
    (client IDs registered before 2024-05-13 work only with ``method="oauth2"``).

    ``method="oauth2"`` gets a client-credentials token at :attr:`TOKEN_URL` and sends
    ``Authorization: Bearer <token>``; an ``UNAUTHENTICATED`` answer at any HTTP status
    gets one fresh token and one resend.

    ``api_url`` is the GraphQL URL :meth:`verify` asks. The other keyword options are
    those of :class:`~delivery_auth.ClientCredentialsAuth` (``cache``,
    ``refresh_margin``, ``timeout``, ...); they matter in OAuth2 mode only.
    ``allowed_hosts`` defaults to ``*.tracker.delivery`` plus loopback.

    Example::

        auth = DeliveryTrackerAuth(client_id, client_secret, method="oauth2")
        query = {"query": "query { carriers(first: 10) { edges { node { id name } } } }"}
        requests.post(DeliveryTrackerAuth.GRAPHQL_URL, json=query, auth=auth)
        with httpx.Client(auth=auth) as client:
            client.post(DeliveryTrackerAuth.GRAPHQL_URL, json=query)
    """

    GRAPHQL_URL = "https://apis.tracker.delivery/graphql"
    TOKEN_URL = "https://auth.tracker.delivery/oauth2/token"
    API_KEY_SCHEME = "TRACKQL-API-KEY"
    DEFAULT_ALLOWED_HOSTS: tuple[str, ...] = (
        "tracker.delivery",
        "*.tracker.delivery",
        *LOOPBACK_HOSTS,
    )

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        method: str = "api_key",
        token_url: str = TOKEN_URL,
        api_url: str = GRAPHQL_URL,
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
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method == "api_key" and any(
            ch in value for value in (client_id, client_secret) for ch in "\r\n\x00"
        ):
            raise ValueError("client_id and client_secret must not contain control characters")
        self.method = method
        self.api_url = check_endpoint_url(api_url, "api_url")
        super().__init__(
            token_url,
            client_id,
            client_secret,
            scope=scope,
            token_endpoint_auth_method=token_endpoint_auth_method,
            token_params=token_params,
            cache=cache,
            refresh_margin=refresh_margin,
            refresh_ratio=refresh_ratio,
            timeout=timeout,
            max_token_age=max_token_age,
            allowed_hosts=allowed_hosts,
            backoff=backoff,
            failure_detector=failure_detector or GraphQLFailureDetector(),
            on_event=on_event,
        )

    def _make_engine(
        self, fetcher: TokenFetcher, *, cache: TokenCache, key: str, policy: RefreshPolicy
    ) -> TokenEngine:
        if self.method == "oauth2":
            return super()._make_engine(fetcher, cache=cache, key=key, policy=policy)
        # The API key needs no token request: an engine that holds it and never renews it.
        fetcher.close()
        scheme = self.API_KEY_SCHEME
        api_key = f"{fetcher.client_id}:{fetcher._client_secret}"
        return TokenEngine(
            StaticSource("A Delivery Tracker API key"),
            cache=MemoryTokenCache(),
            key="delivery-tracker-api-key",
            policy=RefreshPolicy(),
            format_header=lambda token: f"{scheme} {token.access_token}",
            initial=Token(access_token=api_key, token_type=scheme),
            refreshable=False,
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> DeliveryTrackerAuth:
        """Build from ``DELIVERY_TRACKER_CLIENT_ID``, ``DELIVERY_TRACKER_CLIENT_SECRET`` and
        optionally ``DELIVERY_TRACKER_METHOD`` (``api_key`` or ``oauth2``).

        Keyword ``overrides`` (e.g. ``token_url``, ``method``) win over the environment.

        Example::

            auth = DeliveryTrackerAuth.from_env(method="oauth2")
        """
        values = read_env(
            cls.__name__,
            ("DELIVERY_TRACKER_CLIENT_ID", "DELIVERY_TRACKER_CLIENT_SECRET"),
            ("DELIVERY_TRACKER_METHOD",),
            environ,
        )
        check_overrides(cls, overrides)
        if "DELIVERY_TRACKER_METHOD" in values:
            overrides.setdefault("method", values["DELIVERY_TRACKER_METHOD"].lower())
        return cls(
            values["DELIVERY_TRACKER_CLIENT_ID"],
            values["DELIVERY_TRACKER_CLIENT_SECRET"],
            **overrides,
        )

    # -- verification -----------------------------------------------------------------

    def verify(self, *, timeout: float = 15.0) -> None:
        """Check the credentials with the AuthTestQuery at :attr:`api_url`; return when
        it answers with data.

        Raises :class:`~delivery_auth.CredentialsRejectedError` when the API answers
        ``UNAUTHENTICATED`` (in OAuth2 mode after one fresh token and one resend), and
        :class:`~delivery_auth.DeliveryAuthError` when it cannot be reached or answers
        anything else, with what to do.

        Example::

            DeliveryTrackerAuth(client_id, client_secret).verify()
        """
        self._verify_at(self.api_url, timeout)

    def _verify_at(self, url: str, timeout: float) -> None:
        try:
            response = requests.post(
                url, json={"query": AUTH_TEST_QUERY}, auth=self, timeout=timeout
            )
        except requests.RequestException as exc:
            raise DeliveryAuthError(
                f"could not reach {url} ({type(exc).__name__}); check the network and api_url"
            ) from None
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):  # not JSON, or absurdly nested
            body = None
        codes = graphql_error_codes(body)
        errors, data = (
            (body.get("errors"), body.get("data")) if isinstance(body, dict) else (None, None)
        )
        if response.status_code == 200 and not errors and isinstance(data, dict):
            return
        if "UNAUTHENTICATED" in codes:
            hint = (
                ' Client IDs registered before 2024-05-13 work only with method="oauth2".'
                if self.method == "api_key"
                else ""
            )
            raise CredentialsRejectedError(
                f"Delivery Tracker rejected the credentials (UNAUTHENTICATED).{hint}"
            )
        what = ", ".join(codes) if codes else f"HTTP {response.status_code}"
        raise DeliveryAuthError(f"Delivery Tracker did not answer AuthTestQuery ({what}) at {url}")

    def _cannot_refresh(self, status_code: int) -> None:
        logger.warning(
            "Delivery Tracker rejected the API key (UNAUTHENTICATED, HTTP %s); an API key "
            "cannot be refreshed, so the response is returned as it is. Client IDs registered "
            'before 2024-05-13 cannot be used as API keys: use method="oauth2" with them, '
            "or create new credentials in the Delivery Tracker console.",
            status_code,
            extra={"credentials_rejected": True},  # the CLI reports it as its error
        )

    def _identity(self) -> tuple[object, ...]:
        return (*super()._identity(), self.method)

    def __repr__(self) -> str:
        if self.method == "api_key":
            return f"DeliveryTrackerAuth(client_id={self.client_id!r}, method='api_key')"
        return (
            f"DeliveryTrackerAuth(client_id={self.client_id!r}, method='oauth2', "
            f"token_url={self.token_url!r})"
        )


def _verify(auth: DeliveryTrackerAuth, api_url: str | None) -> str:
    url = auth.api_url if api_url is None else check_endpoint_url(api_url, "api_url")
    auth._verify_at(url, 15.0)
    return f"answered AuthTestQuery ({auth.method} mode, {url})."


SPEC = ProviderSpec(
    name="tracker",
    title="Delivery Tracker",
    auth_class=DeliveryTrackerAuth,
    env=(
        EnvVar("DELIVERY_TRACKER_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar(
            "DELIVERY_TRACKER_CLIENT_SECRET", "client_secret", required=True, field="client_secret"
        ),
        EnvVar("DELIVERY_TRACKER_METHOD", "method", help="api_key (default) or oauth2"),
    ),
    default_hosts=DeliveryTrackerAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal='GraphQL errors[].extensions.code "UNAUTHENTICATED", at any HTTP status',
    emulator_page="delivery_auth.emulator.tracker",
    endpoints=("token_url", "api_url"),
    verify=_verify,
    verify_help="the AuthTestQuery on the GraphQL API",
    api_url_help="the GraphQL URL",
    token=TokenCommand(
        help="Delivery Tracker uses OAuth2 here",
        options={"method": "oauth2"},
        refusal="Delivery Tracker's API-key mode has no token to fetch; use -o method=oauth2",
    ),
    cli_wording=((r'method="oauth2"', "-o method=oauth2"),),
)
