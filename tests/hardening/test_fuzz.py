"""Property-based fuzzing of every parser of untrusted input: token responses (the value
parser and the judgement of raw HTTP responses), problem details, GraphQL error
bodies, ``Retry-After``, JWT claims, the file cache's file and Redis values.

Each must return a value or raise only its documented error, and never echo a secret.
Integers include ones beyond any float; the inputs that once crashed a parser (found here)
keep explicit tests below.
"""

from __future__ import annotations

import base64
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis_server import RedisServer, redis_server_fixture

from delivery_auth import GraphQLFailureDetector, Token, TokenRequestError
from delivery_auth.cache.codec import CacheRecordError, TokenCodec
from delivery_auth.cache.file import FileTokenCache
from delivery_auth.cache.redis import RedisTokenCache
from delivery_auth.token import MAX_LIFETIME, TokenParseError, jwt_expiry
from delivery_auth.token_response import (
    TransientResponse,
    judge_token_response,
    parse_retry_after,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SECRET = "fuzz-secret-Qm93-never-shown"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.integers(min_value=2**1024, max_value=2**1500)  # beyond any float
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
    | st.sampled_from(["3600", "-1", "0", "1e309", "nan", " 60 ", SECRET, "Bearer", "bearer"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
token_fields = st.fixed_dictionaries(
    {},
    optional={
        "access_token": json_values | st.text(min_size=1, max_size=40),
        "token_type": json_values,
        "expires_in": json_values,
        "refresh_token": json_values,
        "scope": json_values,
        "error": json_values,
        "created_at": json_values,
    },
)


@FUZZ
@given(payload=json_values | token_fields)
def test_token_from_response(payload: Any) -> None:
    try:
        token = Token.from_response(payload)
    except TokenParseError as exc:
        message = str(exc)
    else:
        assert isinstance(token.access_token, str)
        assert token.access_token.strip()
        assert token.lifetime is None or (0 < token.lifetime <= MAX_LIFETIME)
        return
    assert SECRET not in message


def _judge(status: int, body: bytes, content_type: str, retry_after: str | None) -> Token:
    headers = {"Content-Type": content_type}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return judge_token_response(
        status, headers, body, token_url="http://127.0.0.1:9/token", secrets=(SECRET,)
    )


def _inspect(status: int, body: bytes, content_type: str, retry_after: str | None) -> None:
    """The judgement of one raw response: only its documented outcomes."""
    outcome: Token | TransientResponse | TokenRequestError
    try:
        outcome = _judge(status, body, content_type, retry_after)
    except (TransientResponse, TokenRequestError) as exc:
        outcome = exc
    if isinstance(outcome, Token):
        assert 200 <= status < 300
    elif isinstance(outcome, TransientResponse):
        assert outcome.status_code == 429 or outcome.status_code >= 500
        assert outcome.retry_after is None or outcome.retry_after >= 0
    else:
        assert isinstance(outcome, TokenRequestError)
        for text in (str(outcome), repr(outcome), outcome.description or "", outcome.error or ""):
            assert SECRET not in text


bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | token_fields.map(lambda v: json.dumps(v).encode())
    | token_fields.map(lambda v: json.dumps(v).encode()[: max(1, len(json.dumps(v)) // 2)])
)
statuses = st.sampled_from([200, 201, 204, 301, 302, 400, 401, 403, 404, 429, 500, 502, 503])
content_types = st.sampled_from(
    ["application/json", "application/problem+json", "text/html", "", "application/json; x"]
)


@FUZZ
@given(
    status=statuses | st.integers(min_value=100, max_value=599),
    body=bodies,
    content_type=content_types,
    retry_after=st.none() | st.text(max_size=30) | st.sampled_from(["0", "1e400", "-3", "nan"]),
)
def test_fetcher_response_handling(
    status: int, body: bytes, content_type: str, retry_after: str | None
) -> None:
    _inspect(status, body, content_type, retry_after)


problem_text = st.text(max_size=30) | st.just(f"client secret {SECRET} rejected") | json_values


@FUZZ
@given(
    status=st.sampled_from([400, 401, 403, 404, 409, 422]),
    problem=st.fixed_dictionaries(
        {},
        optional={
            "type": problem_text,
            "title": problem_text,
            "detail": problem_text,
            "status": json_values,
            "instance": problem_text,
            "error": problem_text,
            "error_description": problem_text,
        },
    ),
)
def test_problem_details(status: int, problem: dict[str, Any]) -> None:
    with pytest.raises(TokenRequestError) as info:
        _judge(status, json.dumps(problem).encode(), "application/problem+json", None)
    error = info.value
    assert error.status_code == status
    assert error.problem_type is None or isinstance(error.problem_type, str)
    for text in (str(error), error.description or "", error.error or "", error.problem_type or ""):
        assert SECRET not in text


@pytest.mark.parametrize("error", [["invalid_client"], {"code": "invalid_client"}])
def test_error_member_that_is_not_a_string(error: Any) -> None:
    """Once a bare TypeError (unhashable), found by this file's fetcher fuzzing."""
    with pytest.raises(TokenRequestError):
        _judge(400, json.dumps({"error": error}).encode(), "application/json", None)


def _reference(payload: Any) -> bool:
    errors = payload.get("errors") if isinstance(payload, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict)
        and isinstance(e.get("extensions"), dict)
        and e["extensions"].get("code") == "UNAUTHENTICATED"
        for e in errors
    )


graphql_errors = st.lists(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"message": st.text(max_size=10)},
            optional={
                "extensions": json_values
                | st.fixed_dictionaries(
                    {"code": st.sampled_from(["UNAUTHENTICATED", "FORBIDDEN", "unauthenticated"])}
                )
            },
        ),
    ),
    max_size=4,
)
graphql_bodies = st.fixed_dictionaries(
    {}, optional={"data": json_values, "errors": graphql_errors | json_values}
)


@FUZZ
@given(
    status=st.integers(min_value=200, max_value=599),
    payload=graphql_bodies,
    cut=st.none() | st.integers(min_value=0, max_value=200),
    content_type=content_types,
)
@example(status=200, payload={}, cut=None, content_type="application/json")
def test_graphql_error_bodies(
    status: int, payload: Any, cut: int | None, content_type: str
) -> None:
    detector = GraphQLFailureDetector()
    body = json.dumps(payload).encode()
    if cut is not None:
        body = body[:cut]
    found = detector.is_auth_failure(status, content_type, body)
    assert isinstance(found, bool)
    if cut is None and content_type.startswith("application/"):
        assert found == _reference(payload)


@FUZZ
@given(body=st.binary(max_size=300) | st.sampled_from([b"[" * 50_000, b'{"errors":' * 30_000]))
def test_graphql_detector_on_any_bytes(body: bytes) -> None:
    detector = GraphQLFailureDetector()
    assert isinstance(
        detector.is_auth_failure(200, "application/json", body + b"UNAUTHENTICATED"), bool
    )


@FUZZ
@given(value=st.none() | st.text(max_size=40))
@example(value="Mon, 01 Jan 99999 00:00:00 GMT")
@example(value="Wed, 21 Oct 2015 07:28:00 GMT")
@example(value="1e400")
@example(value="nan")
def test_retry_after(value: str | None) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or (isinstance(seconds, float) and seconds >= 0)


def _jwt(claims: Any) -> str:
    raw = json.dumps(claims).encode()
    return f"eyJhbGciOiJub25lIn0.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.sig"


@FUZZ
@given(
    token=st.text(max_size=60)
    | json_values.map(_jwt)
    | st.builds(lambda exp: _jwt({"exp": exp}), json_values)
)
def test_jwt_expiry(token: str) -> None:
    exp = jwt_expiry(token)
    assert exp is None or math.isfinite(exp)


def test_jwt_expiry_beyond_float() -> None:
    """Once a bare OverflowError."""
    assert jwt_expiry(_jwt({"exp": 10**400})) is None


# -- the shared caches -----------------------------------------------------------------------


records = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 2, "1", None])},
    optional={
        "token": json_values
        | st.fixed_dictionaries(
            {},
            optional={
                "access_token": json_values | st.text(min_size=1, max_size=20),
                "token_type": json_values | st.just("Bearer"),
                "lifetime": json_values,
                "issued_at": json_values,
                "refresh_token": json_values,
                "scope": json_values,
                "extra": json_values,
            },
        ),
        "fernet": json_values,
        "fp": json_values,
    },
)


@FUZZ
@given(record=records | json_values)
def test_codec_unseal(record: Any) -> None:
    for codec in (TokenCodec(), TokenCodec(encryption_key=_KEY)):
        try:
            token = codec.unseal(record)
        except CacheRecordError:
            continue
        assert isinstance(token, Token)


_KEY = base64.urlsafe_b64encode(b"k" * 32)


def test_codec_number_beyond_float() -> None:
    """Once a bare OverflowError out of FileTokenCache.get / RedisTokenCache.get."""
    record = {"v": 1, "token": {"access_token": "a", "token_type": "Bearer", "issued_at": 10**400}}
    with pytest.raises(CacheRecordError):
        TokenCodec().unseal(record)


def _document(tokens: Any) -> bytes:
    return json.dumps(
        {"format": "delivery-auth token cache", "version": 1, "tokens": tokens}
    ).encode()


@FUZZ
@given(
    content=st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.sampled_from(["k", "other"]), records | json_values, max_size=2).map(
        _document
    )
)
def test_file_cache_contents(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "tokens.json"
        path.write_bytes(content)
        cache = FileTokenCache(path)
        found = cache.get("k")
        assert found is None or isinstance(found, Token)
        fresh = Token("fuzz-token-value", lifetime=600)
        cache.set("k", fresh)
        assert cache.get("k") == fresh


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()


@pytest.fixture(scope="module")
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as client:
        yield client


@FUZZ
@given(
    value=st.binary(min_size=1, max_size=300)
    | (records | json_values).map(lambda r: b"0123abcd:" + json.dumps(r).encode())
)
def test_redis_values(redis_client: redis.Redis, value: bytes) -> None:
    redis_client.set("fuzz:token:{k}", value)
    for cache in (RedisTokenCache(redis_client, prefix="fuzz:"),):
        found = cache.get("k")
        assert found is None or isinstance(found, Token)
