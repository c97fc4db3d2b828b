"""Token requests: the only module that talks to Authlib.

:class:`TokenFetcher` asks the token endpoint through Authlib's client-credentials
session and hands the raw answer to :func:`~delivery_auth.token_response.judge_token_response`
(status first: Authlib would take a 4xx JSON body without ``"error"`` for a token).
:meth:`TokenFetcher.fetch` is a back-off loop around one attempt: connection errors,
timeouts, 429 and 5xx are tried again; every other failure is one of our errors.

Example::

    fetcher = TokenFetcher("https://auth.example.com/oauth2/token", "id", "secret")
    token = fetcher.fetch()
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.auth import encode_client_secret_post
from authlib.oauth2.client import DEFAULT_HEADERS

from ._workers import is_thread_start_error, no_thread
from .deadline import DeadlineAdapter
from .errors import (
    ConfigurationError,
    DeliveryAuthError,
    TokenEndpointUnavailableError,
    TokenRequestError,
)
from .events import SILENT, Events
from .hosts import check_endpoint_url
from .policy import BackoffPolicy
from .token import Token
from .token_request import check_request_format, check_token_headers, json_body, secret_forms
from .token_response import TransientResponse, judge_token_response

__all__ = ["AUTH_METHODS", "TokenFetcher"]

logger = logging.getLogger("delivery_auth")

AUTH_METHODS = ("client_secret_post", "client_secret_basic")

_TRANSIENT_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


#: Shared by every fetcher built without its own (the policy is immutable).
_DEFAULT_BACKOFF = BackoffPolicy()


@dataclass(frozen=True)
class _Setback:
    """A failed attempt worth another: why (for the log), the server's wish, the final error."""

    reason: str
    retry_after: float | None
    #: Raised when no attempt is left.
    give_up: TokenEndpointUnavailableError
    #: the status that failed (a 429 or 5xx), or the error's class name (no answer)
    status: int | None = None
    error: str | None = None


class _RawTokenSession(OAuth2Session):  # type: ignore[misc]  # Authlib ships no types
    """Authlib's session, handing back the token endpoint's raw answer.

    Authlib's own parsing takes a 4xx JSON body without ``"error"`` for a token (DHL's
    problem details) and raises its own exceptions; ``judge_token_response`` judges the
    answer instead, so ``fetch_token`` returns the :class:`requests.Response` as it came.
    """

    def parse_response_token(self, resp: requests.Response) -> requests.Response:
        return resp


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
    time (:meth:`close` may come from any thread). ``params`` are sent on every token
    request, refreshes included. ``timeout`` bounds each whole attempt (connecting,
    sending, headers and body), however slowly the server answers. The HTTP session is
    built on the first token request: building an auth object stays cheap.

    ``grant_type`` with ``grant_params`` and ``grant_secrets`` is the grant :meth:`fetch`
    asks for by default (``"password"`` with the username, and the password as a
    secret: never shown, even when the server echoes it). ``token_request_format``
    ``"json"`` sends the fields as a JSON object; ``token_headers`` go on every token
    request.
    """

    #: where failed attempts are reported (the engine attaches its auth object's events)
    events: Events = SILENT
    #: token-request attempts the last :meth:`fetch` made (for the events)
    attempts = 0

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
        grant_type: str = "client_credentials",
        grant_params: Mapping[str, str] | None = None,
        grant_secrets: Mapping[str, str] | None = None,
        token_request_format: str = "form",
        token_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.token_url = check_endpoint_url(token_url, "token_url")
        grant_fields = {**(grant_params or {}), **(grant_secrets or {})}
        credentials = [("client_id", client_id), ("client_secret", client_secret)]
        for name, value in (*credentials, *grant_fields.items()):
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
        self._grant_secrets = tuple((grant_secrets or {}).values())
        self.grant_type = grant_type
        self._grant = grant_fields
        self.request_format = check_request_format(token_request_format)
        self.token_headers = check_token_headers(
            token_headers, basic=token_endpoint_auth_method == "client_secret_basic"
        )
        self.scope = _normalise_scope(scope)
        self.auth_method = token_endpoint_auth_method
        self.params: dict[str, str] = {}
        for name, raw in (token_params or {}).items():
            if not isinstance(name, str) or name in (
                "grant_type",
                *dict(credentials),
                *grant_fields,
            ):
                raise ValueError(f"token_params may not set {name!r}")
            self.params[name] = str(raw)
        self.timeout = float(timeout)
        self.backoff = backoff or _DEFAULT_BACKOFF
        # close() may come from any thread: it and the first use take this lock to build,
        # or find, the session and the back-off wake-up (both made on first use).
        self._lock = threading.Lock()
        self._closed = False
        self._wakeup: threading.Event | None = None
        self._session: _RawTokenSession | None = None

    @functools.cached_property
    def _secret_forms(self) -> tuple[str, ...]:
        """The secrets as given, as client_secret_basic sends them and as JSON escapes
        them (a server may echo any): never shown in an error. Made on first use."""
        return tuple(
            form
            for secret in (self._client_secret, *self._grant_secrets)
            for form in secret_forms(secret)
        )

    def __repr__(self) -> str:
        return f"TokenFetcher(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def _new_session(self) -> _RawTokenSession:
        session = _RawTokenSession(
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
        if self.request_format == "json":  # the same fields, client auth included, as JSON
            for name, encode in (
                ("client_secret_basic", _client_secret_basic),
                ("client_secret_post", encode_client_secret_post),
            ):
                session.register_client_auth_method((name, json_body(encode)))
        return session

    # -- public -------------------------------------------------------------------------

    def fetch(self, **grant: str) -> Token:
        """Request a token: the fetcher's grant (``grant_type``, client credentials by
        default), or the grant ``grant`` names with its fields (``grant_type=
        "refresh_token", refresh_token=...``).

        Retries connection errors, timeouts, 429 and 5xx with exponential back-off and
        jitter, ``backoff.attempts`` attempts in all. Raises :class:`TokenRequestError`
        or one of its subclasses.
        """
        if "grant_type" not in grant:
            grant = {"grant_type": self.grant_type, **self._grant, **grant}
        grant_type = grant.pop("grant_type")
        form: dict[str, str] = dict(self.params)
        if self.scope and "scope" not in form:
            form["scope"] = self.scope
        form.update(grant)
        attempts = self.backoff.attempts
        for attempt in range(1, attempts + 1):
            self._check_open()
            self.attempts = attempt
            outcome = self._attempt(grant_type, form)
            if isinstance(outcome, Token):
                return outcome
            if attempt == attempts:
                raise outcome.give_up
            delay = self.backoff.delay(attempt, outcome.retry_after)
            self.events.retrying(attempt, attempts, outcome.status, outcome.error, delay)
            logger.info(
                "Token endpoint %s: %s; retrying in %.2f s (attempt %d of %d)",
                self.token_url,
                outcome.reason,
                delay,
                attempt + 1,
                attempts,
            )
            self._pause(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Stop any back-off wait and release the HTTP session (if one was ever built)."""
        with self._lock:
            self._closed = True
            session, wakeup = self._session, self._wakeup
        if wakeup is not None:
            wakeup.set()
        if session is not None:
            session.close()

    def reset_after_fork(self) -> None:
        """Drop the parent's connections in a forked child (they are not ours to close);
        the next token request builds a new session."""
        self._lock = threading.Lock()
        self._wakeup = None
        self._session = None

    # -- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise DeliveryAuthError("This auth object was closed; create a new one to go on.")

    def _open_session(self) -> _RawTokenSession:
        """The session, built on first use; refused once closed."""
        with self._lock:
            self._check_open()
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds before the next attempt; close() ends the wait at once."""
        with self._lock:
            self._check_open()
            if self._wakeup is None:
                self._wakeup = threading.Event()
            wakeup = self._wakeup
        if wakeup.wait(delay):
            self._check_open()

    def _attempt(self, grant_type: str, form: Mapping[str, str]) -> Token | _Setback:
        """One token request: the token, a setback worth another attempt, or our error."""
        started = time.monotonic()
        session = self._open_session()
        try:
            response = session.fetch_token(
                self.token_url,
                grant_type=grant_type,
                headers={**DEFAULT_HEADERS, **self.token_headers},
                timeout=self.timeout,
                allow_redirects=False,
                **form,
            )
        except requests.exceptions.SSLError:
            raise TokenRequestError(
                f"TLS verification of the token endpoint {self.token_url} failed. "
                "Check the URL and the machine's CA certificates.",
                token_url=self.token_url,
            ) from None
        except _TRANSIENT_EXCEPTIONS as exc:
            return self._unreachable(exc)
        except requests.RequestException as exc:
            raise TokenRequestError(
                f"The token request to {self.token_url} failed: {type(exc).__name__}. "
                "Check token_url.",
                token_url=self.token_url,
            ) from None
        except RuntimeError as exc:  # the deadline's watchdog is a thread of its own
            if not is_thread_start_error(exc):
                raise
            reason = str(exc)
            raise DeliveryAuthError(
                no_thread("the deadline of the token request", reason)
            ) from None
        try:
            token = judge_token_response(
                response.status_code,
                response.headers,
                response.content,
                token_url=self.token_url,
                secrets=self._secret_forms,
                grant_type=grant_type,
            )
        except TransientResponse as failure:
            return self._overloaded(failure)
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

    def _unreachable(self, exc: Exception) -> _Setback:
        """A connection error or timeout: retried, reported once attempts run out."""
        within = ""
        if isinstance(exc, requests.Timeout):  # ``timeout`` bounds each whole attempt
            within = f": no complete answer within timeout={self.timeout:g} s"
        name = type(exc).__name__
        final = TokenEndpointUnavailableError(
            f"Could not reach the token endpoint {self.token_url}{within} "
            f"({name}, {self.backoff.attempts} attempts). Check the network and the "
            "token_url; the request will be tried again on the next call.",
            token_url=self.token_url,
        )
        return _Setback(reason=f"{name}{within}", retry_after=None, give_up=final, error=name)

    def _overloaded(self, failure: TransientResponse) -> _Setback:
        """A 429 or 5xx: retried unless the server asks for a longer wait than we allow."""
        retry_after = failure.retry_after
        if retry_after is not None and retry_after > self.backoff.max_retry_after:
            raise self._unavailable(
                f"asked us to retry after {retry_after:.0f} s, longer than "
                f"max_retry_after={self.backoff.max_retry_after:.0f} s",
                failure,
            )
        reason = f"HTTP {failure.status_code}"
        final = self._unavailable(f"answered {reason} {self.backoff.attempts} times", failure)
        return _Setback(
            reason=reason, retry_after=retry_after, give_up=final, status=failure.status_code
        )

    def _unavailable(self, what: str, failure: TransientResponse) -> TokenEndpointUnavailableError:
        return TokenEndpointUnavailableError(
            f"The token endpoint {self.token_url} {what}. It is overloaded or down; the "
            "request will be tried again on the next call.",
            token_url=self.token_url,
            status_code=failure.status_code,
            error=failure.error,
            description=failure.description,
            retry_after=failure.retry_after,
        )
