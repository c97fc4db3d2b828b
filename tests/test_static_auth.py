"""ApiKeyAuth and BasicCredentialsAuth, the generic static credentials: the header they
send (and only where it may go), default_headers, and a rejection returned with one
WARNING; through every client against a loopback server that records what it got."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CLIENTS, call
from loopback import LoopbackServer, Reply

from delivery_auth import (
    ApiKeyAuth,
    BasicCredentialsAuth,
    DisallowedHostError,
    InsecureTransportError,
    StatusFailureDetector,
)
from delivery_auth.flow import Attempt, Flow, Step, judge_response

KEY = "key-Zq8Kd0-never-log-me"
OK = Reply(200, {"ok": True})
REJECTED = Reply(401, {"message": "bad key"})


@pytest.fixture
def made() -> Iterator[list[Any]]:
    objects: list[Any] = []
    yield objects
    for auth in objects:
        auth.close()


def _key_auth(made: list[Any], **options: Any) -> ApiKeyAuth:
    options.setdefault("allowed_hosts", ["127.0.0.1"])
    auth = ApiKeyAuth(KEY, **options)
    made.append(auth)
    return auth


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("options", "name", "value"),
    [
        ({}, "Authorization", KEY),
        ({"scheme": "ShippoToken"}, "Authorization", f"ShippoToken {KEY}"),
        ({"header": "API-Key"}, "API-Key", KEY),
        ({"header": "X-Auth", "scheme": "Token"}, "X-Auth", f"Token {KEY}"),
    ],
    ids=["bare", "scheme", "header", "header-and-scheme"],
)
def test_the_key_goes_in_its_header(
    client: str, server: LoopbackServer, made: list[Any], options: Any, name: str, value: str
) -> None:
    auth = _key_auth(made, **options)
    server.state.api_script.extend([OK, OK])
    assert call(client, auth, "GET", server.url()).status == 200
    assert call(client, auth, "POST", server.url(), body=b"{}").status == 200
    sent = [seen.headers.get(name) for seen in server.state.api_requests]
    assert sent == [value, value]
    if name != "Authorization":
        assert all("Authorization" not in s.headers for s in server.state.api_requests)
    assert server.state.token_requests == []
    assert auth.token_requests == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_basic_credentials_are_utf8_base64(
    client: str, server: LoopbackServer, made: list[Any]
) -> None:
    auth = BasicCredentialsAuth("jörg", "pa ss:wörd", allowed_hosts=["127.0.0.1"])
    made.append(auth)
    server.state.api_script.append(OK)
    assert call(client, auth, "GET", server.url()).status == 200
    (seen,) = server.state.api_requests
    scheme, _, value = seen.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(value).decode("utf-8") == "jörg:pa ss:wörd"
    empty = BasicCredentialsAuth("api-key-as-user", "")
    assert base64.b64decode(empty.get_token().access_token) == b"api-key-as-user:"


@pytest.mark.parametrize("client", CLIENTS)
def test_default_headers_are_added_unless_the_request_sets_them(
    client: str, server: LoopbackServer, made: list[Any]
) -> None:
    auth = _key_auth(made, default_headers={"x-version": "3.1.0", "X-Other": "a"})
    server.state.api_script.extend([OK, OK])
    call(client, auth, "GET", server.url())
    call(client, auth, "GET", server.url(), headers={"X-Version": "2.0"})
    first, second = server.state.api_requests
    lowered = [{k.lower(): v for k, v in s.headers.items()} for s in (first, second)]
    assert (lowered[0]["x-version"], lowered[0]["x-other"]) == ("3.1.0", "a")
    assert (lowered[1]["x-version"], lowered[1]["x-other"]) == ("2.0", "a")


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("header", ["Authorization", "API-Key"])
def test_a_rejection_is_returned_with_one_warning_and_never_resent(
    client: str,
    header: str,
    server: LoopbackServer,
    made: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With header="API-Key" this fails if the flow looked at Authorization for its
    credential: the 401 would not be judged ours, so no warning."""
    caplog.set_level(logging.DEBUG, logger="delivery_auth")
    auth = _key_auth(made, header=header)
    server.state.api_script.extend([REJECTED, OK])
    result = call(client, auth, "POST", server.url(), body=b'{"a": 1}')
    assert (result.status, result.history) == (401, [])
    assert len(server.state.api_requests) == 1
    (warning,) = _warnings(caplog)
    message = warning.getMessage()
    assert "HTTP 401" in message
    assert header in message
    assert "ApiKeyAuth" in message
    assert warning.credentials_rejected is True  # type: ignore[attr-defined]
    assert all(KEY not in r.getMessage() for r in caplog.records)
    # the key is kept: the next call sends it again (and is served)
    assert call(client, auth, "GET", server.url()).status == 200


def test_judge_response_reads_the_flow_header() -> None:
    auth = ApiKeyAuth(KEY, header="API-Key")
    lease = auth._engine.current()
    attempt = Attempt("https://api.example.com:443", lease)
    flow = Flow(StatusFailureDetector(), print, "API-Key")
    url = "https://api.example.com/x"
    assert judge_response(attempt, flow.detector, 401, "", url, lease.header) is Step.RETRY
    assert judge_response(attempt, flow.detector, 401, "", url, None) is Step.DONE
    assert auth._driver.flow.header == "API-Key"


@pytest.mark.parametrize("client", CLIENTS)
def test_the_key_never_leaves_allowed_hosts_or_https(client: str, made: list[Any]) -> None:
    auth = _key_auth(made, header="API-Key", allowed_hosts=["api.example.com"])
    with pytest.raises(DisallowedHostError, match="allowed_hosts"):
        call(client, auth, "GET", "https://api.example.com.evil.example/x")
    with pytest.raises(InsecureTransportError, match="plain http"):
        call(client, auth, "GET", "http://api.example.com/x")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_cross_origin_redirect_carries_no_custom_header_key(
    client: str, server: LoopbackServer, other_server: LoopbackServer, made: list[Any]
) -> None:
    """requests and httpx keep every header but Authorization on such a redirect: the
    requests adapter drops the key before requests copies the request, and for httpx and
    httpx2 the key is taken off the redirected request as it is sent
    (delivery_auth._redirects)."""
    auth = _key_auth(made, header="API-Key")
    other_server.state.api_script.append(OK)
    server.state.api_script.append(Reply(302, b"", {"Location": other_server.url("/away")}))
    result = call(client, auth, "GET", server.url())
    assert (result.status, result.history) == (200, [302])
    (first,) = server.state.api_requests
    assert first.headers.get("API-Key") == KEY
    (away,) = other_server.state.api_requests
    assert "API-Key" not in away.headers


@pytest.mark.parametrize("client", CLIENTS)
def test_a_same_origin_redirect_keeps_the_key(
    client: str, server: LoopbackServer, made: list[Any]
) -> None:
    auth = _key_auth(made, header="API-Key")
    server.state.api_script.extend([Reply(302, b"", {"Location": server.url("/next")}), OK])
    result = call(client, auth, "GET", server.url())
    assert (result.status, result.history) == (200, [302])
    assert [s.headers.get("API-Key") for s in server.state.api_requests] == [KEY, KEY]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ApiKeyAuth(""), "key must be a non-empty string"),
        (lambda: ApiKeyAuth(None), "key must be a non-empty string"),  # type: ignore[arg-type]
        (lambda: ApiKeyAuth("a\r\nX-Evil: 1"), "line breaks"),
        (lambda: ApiKeyAuth(KEY, header="API Key"), "header must be an HTTP header name"),
        (lambda: ApiKeyAuth(KEY, scheme="Bearer x"), "scheme must be an HTTP header name"),
        (lambda: ApiKeyAuth(f"Bearer {KEY}", scheme="Bearer"), "without the 'Bearer' prefix"),
        (lambda: ApiKeyAuth(KEY, default_headers={"x": "a\nb"}), "without line breaks"),
        (lambda: ApiKeyAuth(KEY, default_headers={"x y": "a"}), "default_headers name"),
        (lambda: BasicCredentialsAuth("a:b", "c"), "must not contain ':'"),
        (lambda: BasicCredentialsAuth("", "c"), "username must be a non-empty string"),
        (lambda: BasicCredentialsAuth("u", "p\n"), "password must not contain line breaks"),
    ],
)
def test_bad_input_gets_a_clear_error_without_the_secret(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        build()
    assert KEY not in str(caught.value)


def test_repr_and_equality_show_no_secret() -> None:
    key = ApiKeyAuth(KEY, header="API-Key")
    basic = BasicCredentialsAuth("user", KEY)
    for auth in (key, basic):
        assert KEY not in repr(auth)
        assert KEY not in repr(auth.get_token())
    assert repr(key) == "ApiKeyAuth(header='API-Key', scheme=None)"
    assert repr(basic) == "BasicCredentialsAuth(username='user')"
    assert key == ApiKeyAuth(KEY, header="API-Key")
    assert key != ApiKeyAuth(KEY, header="X-Key")
    assert basic != BasicCredentialsAuth("user", "other")
    assert ApiKeyAuth(KEY, header="authorization").header == "Authorization"
