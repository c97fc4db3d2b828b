"""Token requests: the only module that talks to Authlib.

:class:`TokenFetcher` asks the token endpoint through Authlib's client-credentials
session, checks the response itself (status first: Authlib takes a 4xx JSON body
without ``"error"`` for a token), retries transient failures with back-off, and maps
every failure to our exception tree.

Example::

    fetcher = TokenFetcher("https://auth.example.com/oauth2/token", "id", "secret")
    token = fetcher.fetch()
"""

from __future__ import annotations

import base64
import email.utils
import logging
import threading
import time
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, NoReturn
from urllib.parse import quote_plus

import requests
from authlib.integrations.requests_client import OAuth2Session

from .deadline import DeadlineAdapter
from .errors import (
    ConfigurationError,
    DeliveryAuthError,
    InvalidClientError,
    TokenEndpointUnavailableError,
    TokenRequestError,
)
from .hosts import check_endpoint_url
from .policy import BackoffPolicy
from .token import Token, TokenParseError

__all__ = ["AUTH_METHODS", "TokenFetcher"]

logger = logging.getLogger("delivery_auth")

AUTH_METHODS = ("client_secret_post", "client_secret_basic")

#: OAuth error codes that mean "these credentials are not accepted".
_CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
_TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_MAX_TEXT = 200


class _Accepted(Exception):
    """Carries the validated token out of Authlib's response hook."""

    def __init__(self, token: Token) -> None:
        super().__init__("token accepted")
        self.token = token


class _Transient(Exception):
    """A failure worth another attempt (429, 5xx)."""

    def __init__(
        self,
        status_code: int,
        retry_after: float | None,
        error: str | None,
        description: str | None,
    ) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after
        self.error = error
        self.description = description


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _client_secret_basic(
    client: Any, method: str, uri: str, headers: MutableMapping[str, str], body: str
) -> tuple[str, MutableMapping[str, str], str]:
    """HTTP Basic client authentication as RFC 6749 §2.3.1 defines it.

    The client id and the secret are each form-encoded (UTF-8, then
    ``application/x-www-form-urlencoded``), joined with ``:`` and base64-encoded.
    Authlib's own version skips the form-encoding and encodes Latin-1, so servers that
    follow the RFC reject ids or secrets holding ``+``, ``%`` or ``:``.
    """
    pair = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
    headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("ascii")).decode("ascii")
    return uri, headers, body


def _normalise_scope(scope: str | Sequence[str] | None) -> str | None:
    if scope is None:
        return None
    if isinstance(scope, str):
        return scope.strip() or None
    items = list(scope)
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise ValueError("scope must be a string or a sequence of non-empty strings")
    return " ".join(item.strip() for item in items) or None


class TokenFetcher:
    """Requests tokens from one token endpoint with one set of client credentials.

    Not shared between threads on its own: the engine calls it from one flight at a
    time. ``params`` are sent on every token request, refreshes included. ``timeout``
    bounds each whole attempt (connecting, sending, headers and body), however slowly
    the server answers.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | Sequence[str] | None = None,
        token_endpoint_auth_method: str = "client_secret_post",
        token_params: Mapping[str, object] | None = None,
        timeout: float = 10.0,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self.token_url = check_endpoint_url(token_url, "token_url")
        for name, value in (("client_id", client_id), ("client_secret", client_secret)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
            if not _encodable(value):  # checked outside an except: no error carries the value
                raise ConfigurationError(
                    f"{name} cannot be encoded as UTF-8: it holds a lone surrogate "
                    "character, typically from text decoded with errors='surrogateescape'. "
                    f"Check how {name} is read (file encoding, environment)."
                )
        if token_endpoint_auth_method not in AUTH_METHODS:
            raise ValueError(
                f"token_endpoint_auth_method must be one of {AUTH_METHODS}, "
                f"got {token_endpoint_auth_method!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.client_id = client_id
        self._client_secret = client_secret
        # As given, and as client_secret_basic sends it (a server may echo either).
        forms = {client_secret, quote_plus(client_secret)}
        self._secret_forms = sorted(forms, key=len, reverse=True)
        self.scope = _normalise_scope(scope)
        self.auth_method = token_endpoint_auth_method
        self.params: dict[str, str] = {}
        for name, raw in (token_params or {}).items():
            if not isinstance(name, str) or name in ("grant_type", "client_id", "client_secret"):
                raise ValueError(f"token_params may not set {name!r}")
            self.params[name] = str(raw)
        self.timeout = float(timeout)
        self.backoff = backoff or BackoffPolicy()
        self._closed = threading.Event()
        self._session = self._new_session()

    def __repr__(self) -> str:
        return f"TokenFetcher(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def _new_session(self) -> OAuth2Session:
        session = OAuth2Session(
            client_id=self.client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method=self.auth_method,
        )
        # ``timeout`` bounds each whole attempt: a read timeout alone restarts on every
        # byte, and every caller (and any shared-cache lock lease) waits on this request.
        for prefix in ("https://", "http://"):
            session.mount(prefix, DeadlineAdapter())
        # Authlib's extension point: our RFC 6749 encoding replaces its client_secret_basic.
        session.register_client_auth_method(("client_secret_basic", _client_secret_basic))
        session.register_compliance_hook("access_token_response", self._inspect)
        session.register_compliance_hook("refresh_token_response", self._inspect)
        return session

    # -- public -------------------------------------------------------------------------

    def fetch(self, **grant: str) -> Token:
        """Request a token (client credentials unless ``grant`` names another grant).

        Retries connection errors, timeouts, 429 and 5xx with exponential back-off and
        jitter, ``backoff.attempts`` attempts in all. Raises :class:`TokenRequestError`
        or one of its subclasses.
        """
        grant_type = grant.pop("grant_type", "client_credentials")
        params: dict[str, str] = dict(self.params)
        if self.scope and "scope" not in params:
            params["scope"] = self.scope
        params.update(grant)
        attempts = self.backoff.attempts
        for attempt in range(1, attempts + 1):
            self._check_open()
            started = time.monotonic()
            try:
                self._session.fetch_token(
                    self.token_url,
                    grant_type=grant_type,
                    timeout=self.timeout,
                    allow_redirects=False,
                    **params,
                )
            except _Accepted as accepted:
                token = accepted.token
                logger.info(
                    "Fetched a %s token from %s for client %s in %.0f ms (lifetime %s, %s)",
                    grant_type,
                    self.token_url,
                    self.client_id,
                    (time.monotonic() - started) * 1000,
                    "unknown" if token.lifetime is None else f"{token.lifetime:.0f} s",
                    f"fingerprint {token.fingerprint}",
                )
                return token
            except _Transient as failure:
                reason = f"HTTP {failure.status_code}"
                retry_after = failure.retry_after
                if retry_after is not None and retry_after > self.backoff.max_retry_after:
                    self._unavailable(
                        f"asked us to retry after {retry_after:.0f} s, longer than "
                        f"max_retry_after={self.backoff.max_retry_after:.0f} s",
                        failure,
                    )
                if attempt == attempts:
                    self._unavailable(f"answered {reason} {attempts} times", failure)
            except requests.exceptions.SSLError:
                raise TokenRequestError(
                    f"TLS verification of the token endpoint {self.token_url} failed. "
                    "Check the URL and the machine's CA certificates.",
                    token_url=self.token_url,
                ) from None
            except _TRANSIENT_EXCEPTIONS as exc:
                retry_after = None
                within = ""
                if isinstance(exc, requests.Timeout):  # ``timeout`` bounds each whole attempt
                    within = f": no complete answer within timeout={self.timeout:g} s"
                reason = f"{type(exc).__name__}{within}"
                if attempt == attempts:
                    raise TokenEndpointUnavailableError(
                        f"Could not reach the token endpoint {self.token_url}{within} "
                        f"({type(exc).__name__}, {attempts} attempts). Check the network and the "
                        "token_url; the request will be tried again on the next call.",
                        token_url=self.token_url,
                    ) from None
            except requests.RequestException as exc:
                raise TokenRequestError(
                    f"The token request to {self.token_url} failed: {type(exc).__name__}. "
                    "Check token_url.",
                    token_url=self.token_url,
                ) from None
            delay = self.backoff.delay(attempt, retry_after)
            logger.info(
                "Token endpoint %s: %s; retrying in %.2f s (attempt %d of %d)",
                self.token_url,
                reason,
                delay,
                attempt + 1,
                attempts,
            )
            if self._closed.wait(delay):
                self._check_open()
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Stop any back-off wait and release the HTTP session."""
        self._closed.set()
        self._session.close()

    def reset_after_fork(self) -> None:
        """Drop the parent's connections in a forked child (they are not ours to close)."""
        self._session = self._new_session()

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed.is_set():
            raise DeliveryAuthError("This auth object was closed; create a new one to go on.")

    def _unavailable(self, what: str, failure: _Transient) -> NoReturn:
        raise TokenEndpointUnavailableError(
            f"The token endpoint {self.token_url} {what}. It is overloaded or down; the "
            "request will be tried again on the next call.",
            token_url=self.token_url,
            status_code=failure.status_code,
            error=failure.error,
            description=failure.description,
            retry_after=failure.retry_after,
        )

    def _scrub(self, text: object) -> str | None:
        """Server-provided text, shortened and with our secret blanked out, or ``None``."""
        if not isinstance(text, str) or not text:
            return None
        for form in self._secret_forms:
            text = text.replace(form, "***")
        return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"

    def _inspect(self, response: requests.Response) -> NoReturn:
        """Authlib's response hook: validate the raw token response, never return."""
        status = response.status_code
        payload: Any
        try:
            payload = response.json()
        except (ValueError, RecursionError):  # not JSON, truncated, or absurdly nested
            payload = None
        body: Mapping[str, Any] = payload if isinstance(payload, Mapping) else {}
        error = self._scrub(body.get("error")) or self._scrub(body.get("title"))
        description = self._scrub(body.get("error_description")) or self._scrub(body.get("detail"))
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise _Transient(status, retry_after, error, description)
        if 300 <= status < 400:
            location = response.headers.get("Location", "?").split("?")[0]
            raise TokenRequestError(
                f"The token endpoint {self.token_url} redirected (HTTP {status}) to "
                f"{location}; credentials are never sent after a redirect. Set token_url "
                "to the final URL.",
                token_url=self.token_url,
                status_code=status,
            )
        explained = f"{error}: {description}" if error and description else error or description
        problem_type = self._scrub(body.get("type"))
        if problem_type:
            code = problem_type.rstrip("/").rsplit("/", 1)[-1]
            explained = f"{explained}, problem {code}" if explained else f"problem {code}"
        detail = f" ({explained})" if explained else ""
        if status >= 400:
            oauth_error = body.get("error")
            # A 400 without an OAuth error code (e.g. DHL's problem details) is how many
            # servers say "bad credentials"; a 400 naming another code is something else.
            rejected = (
                status == 401
                or (isinstance(oauth_error, str) and oauth_error in _CREDENTIAL_ERRORS)
                or (status == 400 and not isinstance(oauth_error, str))
            )
            if rejected:
                raise InvalidClientError(
                    f"The token endpoint {self.token_url} rejected the client credentials "
                    f"(HTTP {status}{detail}). Check client_id and client_secret, and that "
                    "the secret was not regenerated.",
                    token_url=self.token_url,
                    status_code=status,
                    error=error,
                    description=description,
                    problem_type=problem_type,
                )
            raise TokenRequestError(
                f"The token endpoint {self.token_url} refused the token request "
                f"(HTTP {status}{detail}). Check scope and token_params.",
                token_url=self.token_url,
                status_code=status,
                error=error,
                description=description,
                problem_type=problem_type,
            )
        if not 200 <= status < 300:  # 1xx or anything else odd: never a token
            raise TokenRequestError(
                f"The token endpoint {self.token_url} answered with the unexpected HTTP "
                f"status {status}. Check that token_url is the token endpoint.",
                token_url=self.token_url,
                status_code=status,
            )
        if not isinstance(payload, Mapping):
            kind = "not JSON" if payload is None else f"a JSON {type(payload).__name__}"
            raise TokenRequestError(
                f"The token endpoint {self.token_url} answered HTTP {status} with a body that "
                f"is {kind}, not a token. Check that token_url is the token endpoint.",
                token_url=self.token_url,
                status_code=status,
            )
        if "error" in body:
            raise TokenRequestError(
                f"The token endpoint {self.token_url} answered HTTP {status} with an "
                f"error{detail}.",
                token_url=self.token_url,
                status_code=status,
                error=error,
                description=description,
            )
        try:
            token = Token.from_response(payload)
        except TokenParseError as exc:
            raise TokenRequestError(
                f"The token endpoint {self.token_url} sent an unusable token response: {exc}.",
                token_url=self.token_url,
                status_code=status,
            ) from None
        if token.token_type != "Bearer":  # RFC 6749 7.1: never use a type we don't know
            raise TokenRequestError(
                f"The token endpoint {self.token_url} issued a token of type "
                f"{token.token_type[:20]!r}; delivery-auth sends bearer tokens only. Check "
                "the token endpoint's configuration.",
                token_url=self.token_url,
                status_code=status,
            )
        raise _Accepted(token)
