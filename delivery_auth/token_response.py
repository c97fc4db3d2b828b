"""Judging a token endpoint's answer: status, headers and body in, a :class:`Token` out.

:func:`judge_token_response` does no I/O and knows no HTTP library: the fetcher hands it
what arrived, and it returns the token or raises one of our errors
(:class:`TokenRequestError` and its subclasses), or :class:`TransientResponse` when the
endpoint failed in a way worth another attempt (429, 5xx). The status is judged first:
a 4xx JSON body without ``"error"`` (DHL's problem details) is never a token. Text the
server sent is shortened and never shows the secrets the caller names.

Example::

    token = judge_token_response(
        200,
        {"Content-Type": "application/json"},
        b'{"access_token": "abc", "expires_in": 3600}',
        token_url="https://auth.example.com/oauth2/token",
    )
    token.lifetime  # 3600.0
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidClientError, TokenRequestError
from .token import Token, TokenParseError

__all__ = ["TransientResponse", "judge_token_response", "parse_retry_after"]

#: OAuth error codes that mean "these credentials are not accepted".
_CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
#: What a grant's rejected credentials are, for the advice (RFC 6749 5.2: with the
#: password grant, ``invalid_grant`` is a wrong username or password).
_GRANT_CREDENTIALS = {"password": ("username and password", "invalid_grant")}
#: Server text longer than this is cut (with an ellipsis) before it reaches a message.
_MAX_TEXT = 200


class TransientResponse(Exception):
    """The token endpoint failed in a way worth another attempt (429, 5xx).

    Not one of our errors: the fetcher retries, and reports the failure only when its
    attempts run out. ``retry_after`` is the server's ``Retry-After`` in seconds.
    """

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


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``.

    ``now`` is the wall clock an HTTP date is measured from (default: :func:`time.time`).
    """
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
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name (HTTP names are case-insensitive)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def _decode(body: bytes, content_type: str | None) -> object:
    """The JSON value of ``body``, or ``None`` when it is not JSON.

    The charset the server declares wins; without one (or with one Python cannot decode),
    JSON's own UTF-8/16/32 detection decides, and bytes that are not valid in it are read
    as Latin-1 (as requests' guess did for the servers that send it undeclared).
    """
    text = None
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            try:
                text = body.decode(value.strip().strip("\"'"), errors="replace")
            except (LookupError, ValueError):  # unknown, or not a text encoding
                text = None
    if text is None:
        try:
            text = body.decode(json.detect_encoding(body))
        except UnicodeDecodeError:
            text = body.decode("latin-1")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, truncated, or absurdly nested
        return None


def _scrubbed(text: object, secrets: Collection[str]) -> str | None:
    """Server-provided text, shortened and with the secrets blanked out, or ``None``."""
    if not isinstance(text, str) or not text:
        return None
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: one may hold another
        if secret:
            text = text.replace(secret, "***")
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class _Explanation:
    """What the server said about a failure (OAuth error or problem details), scrubbed."""

    error: str | None
    description: str | None
    problem_type: str | None

    @classmethod
    def read(cls, fields: Mapping[str, Any], secrets: Collection[str]) -> _Explanation:
        return cls(
            error=_scrubbed(fields.get("error"), secrets)
            or _scrubbed(fields.get("title"), secrets),
            description=_scrubbed(fields.get("error_description"), secrets)
            or _scrubbed(fields.get("detail"), secrets),
            problem_type=_scrubbed(fields.get("type"), secrets),
        )

    @property
    def detail(self) -> str:
        """`` (error: description, problem code)`` for a message, or ``""``."""
        error, description = self.error, self.description
        explained = f"{error}: {description}" if error and description else error or description
        if self.problem_type:
            code = self.problem_type.rstrip("/").rsplit("/", 1)[-1]
            explained = f"{explained}, problem {code}" if explained else f"problem {code}"
        return f" ({explained})" if explained else ""


def judge_token_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    token_url: str,
    secrets: Collection[str] = (),
    grant_type: str = "client_credentials",
) -> Token:
    """The token in a token endpoint's answer, or the error that answer means.

    Raises :class:`TransientResponse` for 429 and 5xx (worth another attempt), and
    :class:`InvalidClientError` or :class:`TokenRequestError` for everything else that
    is not a bearer token. ``secrets`` never appear in a message or attribute, even when
    the server echoes them; ``token_url`` names the endpoint in messages. With
    ``grant_type="password"``, ``invalid_grant`` (a wrong username or password) is an
    :class:`InvalidClientError` too.
    """
    payload = _decode(body, _header(headers, "Content-Type"))
    fields: Mapping[str, Any] = payload if isinstance(payload, Mapping) else {}
    said = _Explanation.read(fields, secrets)
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(_header(headers, "Retry-After"))
        raise TransientResponse(status, retry_after, said.error, said.description)
    if 300 <= status < 400:
        raise _redirected(status, _header(headers, "Location"), token_url)
    if status >= 400:
        raise _refused(status, fields.get("error"), said, token_url, grant_type)
    if not 200 <= status < 300:  # 1xx or anything else odd: never a token
        raise TokenRequestError(
            f"The token endpoint {token_url} answered with the unexpected HTTP "
            f"status {status}. Check that token_url is the token endpoint.",
            token_url=token_url,
            status_code=status,
        )
    return _issued(status, payload, said, token_url)


def _redirected(status: int, location: str | None, token_url: str) -> TokenRequestError:
    shown = ("?" if location is None else location).split("?")[0]  # a query may hold secrets
    return TokenRequestError(
        f"The token endpoint {token_url} redirected (HTTP {status}) to "
        f"{shown}; credentials are never sent after a redirect. Set token_url "
        "to the final URL.",
        token_url=token_url,
        status_code=status,
    )


def _refused(
    status: int, oauth_error: object, said: _Explanation, token_url: str, grant_type: str
) -> TokenRequestError:
    # A 400 without an OAuth error code (e.g. DHL's problem details) is how many
    # servers say "bad credentials"; a 400 naming another code is something else.
    user, user_error = _GRANT_CREDENTIALS.get(grant_type, ("", ""))
    rejected = (
        status == 401
        or (isinstance(oauth_error, str) and oauth_error in _CREDENTIAL_ERRORS)
        or (status == 400 and not isinstance(oauth_error, str))
        or (bool(user_error) and oauth_error == user_error)
    )
    if rejected:
        what = f"client credentials or the {user}" if user else "client credentials"
        check = f"client_id, client_secret, {user}" if user else "client_id and client_secret"
        return InvalidClientError(
            f"The token endpoint {token_url} rejected the {what} (HTTP {status}"
            f"{said.detail}). Check {check}, and that the secret was not regenerated.",
            token_url=token_url,
            status_code=status,
            error=said.error,
            description=said.description,
            problem_type=said.problem_type,
        )
    return TokenRequestError(
        f"The token endpoint {token_url} refused the token request "
        f"(HTTP {status}{said.detail}). Check scope and token_params.",
        token_url=token_url,
        status_code=status,
        error=said.error,
        description=said.description,
        problem_type=said.problem_type,
    )


def _issued(status: int, payload: object, said: _Explanation, token_url: str) -> Token:
    """The bearer token of a 2xx answer."""
    if not isinstance(payload, Mapping):
        kind = "not JSON" if payload is None else f"a JSON {type(payload).__name__}"
        raise TokenRequestError(
            f"The token endpoint {token_url} answered HTTP {status} with a body that "
            f"is {kind}, not a token. Check that token_url is the token endpoint.",
            token_url=token_url,
            status_code=status,
        )
    if "error" in payload:
        raise TokenRequestError(
            f"The token endpoint {token_url} answered HTTP {status} with an error{said.detail}.",
            token_url=token_url,
            status_code=status,
            error=said.error,
            description=said.description,
        )
    try:
        token = Token.from_response(payload)
    except TokenParseError as exc:
        raise TokenRequestError(
            f"The token endpoint {token_url} sent an unusable token response: {exc}.",
            token_url=token_url,
            status_code=status,
        ) from None
    if token.token_type != "Bearer":  # RFC 6749 7.1: never use a type we don't know
        raise TokenRequestError(
            f"The token endpoint {token_url} issued a token of type "
            f"{token.token_type[:20]!r}; delivery-auth sends bearer tokens only. Check "
            "the token endpoint's configuration.",
            token_url=token_url,
            status_code=status,
        )
    return token
