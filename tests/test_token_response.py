"""The judge of token responses, fed plain values: status, headers, body in; token or error out.

No server and no HTTP library: tests/test_fetch.py drives the same judgements through a
real token endpoint on 127.0.0.1.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import pytest

from delivery_auth import InvalidClientError, TokenRequestError
from delivery_auth.token_response import (
    TransientResponse,
    judge_token_response,
    parse_retry_after,
)

URL = "https://auth.example.com/oauth2/token"
SECRET = "s3cr+t/with:odd%chars"
DHL_PROBLEM = {
    "type": "https://api.dhlecs.com/docs/errors/400.0000005",
    "title": "Invalid credentials",
    "detail": "The client credentials are invalid",
}
PAST = email.utils.formatdate(0, usegmt=True)  # 1970: "retry now"


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@dataclass(frozen=True)
class Case:
    """One answer of a token endpoint and the error it must become."""

    status: int
    body: bytes
    error_type: type[Exception]
    message: str  # a regular expression the message must match
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


CASES = {
    "200 not JSON": Case(
        200, b"<html>", TokenRequestError, r"answered HTTP 200 with a body that is not JSON"
    ),
    "200 JSON array": Case(200, b"[1]", TokenRequestError, r"a body that is a JSON list, not a"),
    "200 error": Case(
        200,
        _json({"error": "server_error", "error_description": "try later"}),
        TokenRequestError,
        r"answered HTTP 200 with an error \(server_error: try later\)\.$",
    ),
    # Not an InvalidClientError: only a 4xx says the credentials were refused.
    "200 invalid_client": Case(
        200,
        _json({"error": "invalid_client"}),
        TokenRequestError,
        r"answered HTTP 200 with an error \(invalid_client\)\.$",
    ),
    "200 no access_token": Case(
        200,
        _json({"token_type": "Bearer"}),
        TokenRequestError,
        r"sent an unusable token response: access_token is missing\.$",
    ),
    "200 MAC token": Case(
        200,
        _json({"access_token": "a", "token_type": "mac"}),
        TokenRequestError,
        r"issued a token of type 'mac'; delivery-auth sends bearer tokens only",
    ),
    # A broken proxy's odd status with a token-shaped body is an error, not a token.
    "1xx": Case(
        199, _json({"access_token": "sneaky"}), TokenRequestError, "unexpected HTTP status 199"
    ),
    "302 redirect": Case(
        302,
        b"",
        TokenRequestError,
        r"redirected \(HTTP 302\) to https://login\.example\.com/token; credentials are never",
        {"Location": "https://login.example.com/token?client_secret=leak"},
    ),
    "400 other OAuth error": Case(
        400,
        _json({"error": "invalid_scope", "error_description": "no such scope"}),
        TokenRequestError,
        r"refused the token request \(HTTP 400 \(invalid_scope: no such scope\)\)\. Check scope",
    ),
    "400 without OAuth error": Case(
        400, b"Bad Request", InvalidClientError, r"rejected the client credentials \(HTTP 400\)\."
    ),
    "400 invalid_client": Case(
        400,
        _json({"error": "invalid_client"}),
        InvalidClientError,
        r"\(HTTP 400 \(invalid_client\)\)\. Check client_id and client_secret",
    ),
    "400 problem details (DHL)": Case(
        400,
        _json(DHL_PROBLEM),
        InvalidClientError,
        r"\(HTTP 400 \(Invalid credentials: The client credentials are invalid, problem "
        r"400\.0000005\)\)",
        {"Content-Type": "application/problem+json"},
    ),
    "401": Case(401, b"", InvalidClientError, r"\(HTTP 401\)"),
    "403 unauthorized_client": Case(
        403, _json({"error": "unauthorized_client"}), InvalidClientError, r"\(HTTP 403 "
    ),
    "403 without code": Case(403, b"{}", TokenRequestError, r"refused the token request"),
}


#: The server's words, kept as attributes of the error (beyond status_code and token_url).
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "200 error": {"error": "server_error", "description": "try later"},
    "200 invalid_client": {"error": "invalid_client"},
    "400 other OAuth error": {"error": "invalid_scope", "description": "no such scope"},
    "400 invalid_client": {"error": "invalid_client", "description": None, "problem_type": None},
    "400 problem details (DHL)": {
        "error": "Invalid credentials",
        "description": "The client credentials are invalid",
        "problem_type": DHL_PROBLEM["type"],
    },
}


@pytest.mark.parametrize(("name", "case"), CASES.items(), ids=CASES.keys())
def test_what_each_answer_means(name: str, case: Case) -> None:
    with pytest.raises(case.error_type, match=case.message) as info:
        judge_token_response(case.status, case.headers, case.body, token_url=URL)
    error = info.value
    assert type(error) is case.error_type
    assert isinstance(error, TokenRequestError)
    assert error.token_url == URL
    assert URL in str(error)
    assert error.status_code == case.status
    for attribute, value in ATTRIBUTES.get(name, {}).items():
        assert getattr(error, attribute) == value, attribute


def test_a_bearer_token() -> None:
    body = _json({"access_token": "abc", "token_type": "bearer", "expires_in": "3600"})
    token = judge_token_response(200, {}, body, token_url=URL)
    assert (token.access_token, token.token_type, token.lifetime) == ("abc", "Bearer", 3600.0)


def test_dhl_bearertoken_is_a_bearer_token() -> None:
    body = _json({"access_token": "abc", "token_type": "BearerToken", "expires_in": 1799})
    assert judge_token_response(201, {}, body, token_url=URL).token_type == "Bearer"


@pytest.mark.parametrize(
    ("status", "retry_after", "seconds"),
    [(429, "7", 7.0), (503, PAST, 0.0), (500, None, None), (502, "soon", None)],
)
def test_overload_is_transient(status: int, retry_after: str | None, seconds: float | None) -> None:
    headers = {} if retry_after is None else {"retry-after": retry_after}  # any case
    body = _json({"error": "temporarily_unavailable", "error_description": "busy"})
    with pytest.raises(TransientResponse) as info:
        judge_token_response(status, headers, body, token_url=URL)
    assert info.value.status_code == status
    assert info.value.retry_after == seconds
    assert (info.value.error, info.value.description) == ("temporarily_unavailable", "busy")


def test_retry_after_as_an_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now=now) == 90.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("nan") is None
    assert parse_retry_after("") is None


def test_a_missing_location_is_shown_as_nothing() -> None:
    with pytest.raises(TokenRequestError, match=r"redirected \(HTTP 307\) to ; credentials"):
        judge_token_response(307, {}, b"", token_url=URL)


@pytest.mark.parametrize("shown", [SECRET, quote_plus(SECRET)], ids=["raw", "form-encoded"])
def test_secrets_are_scrubbed_from_server_text(shown: str) -> None:
    body = _json(
        {"error": f"bad {shown}", "error_description": f"secret {shown} is wrong", "type": shown}
    )
    with pytest.raises(InvalidClientError) as info:
        judge_token_response(401, {}, body, token_url=URL, secrets=(SECRET, quote_plus(SECRET)))
    error = info.value
    assert (error.error, error.description, error.problem_type) == (
        "bad ***",
        "secret *** is wrong",
        "***",
    )
    assert shown not in str(error)


def test_long_server_text_is_shortened() -> None:
    body = _json({"error": "invalid_client", "error_description": "x" * 5000})
    with pytest.raises(InvalidClientError) as info:
        judge_token_response(400, {}, body, token_url=URL)
    assert info.value.description == "x" * 199 + "…"
    assert len(str(info.value)) < 600


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/json; charset=ISO-8859-1",
            '{"error_description": "refusé"}'.encode("latin-1"),
        ),
        ("application/json", '{"error_description": "refusé"}'.encode("utf-16")),
        ("application/json; charset=no-such", '{"error_description": "refusé"}'.encode()),
        ("application/json", '{"error_description": "refusé"}'.encode("latin-1")),
    ],
    ids=["declared charset", "utf-16 detected", "unknown charset", "undeclared latin-1"],
)
def test_body_encodings(content_type: str, body: bytes) -> None:
    with pytest.raises(InvalidClientError) as info:
        judge_token_response(400, {"Content-Type": content_type}, body, token_url=URL)
    assert info.value.description == "refusé"


def test_absurdly_nested_json_is_not_json() -> None:
    with pytest.raises(TokenRequestError, match="is not JSON"):
        judge_token_response(200, {}, b"[" * 100_000, token_url=URL)


def test_every_attribute_row_names_a_case() -> None:
    assert ATTRIBUTES.keys() <= CASES.keys()
