"""The token request: what is sent, how every kind of answer is judged, what is retried.

All against a real token endpoint on 127.0.0.1; errors are observed where users see them,
from their own requests/httpx call.
"""

from __future__ import annotations

import base64
import concurrent.futures
import socket
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl

import pytest
from conftest import CLIENTS, FAST_BACKOFF, call
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer, Reply

from delivery_auth import (
    BackoffPolicy,
    ClientCredentialsAuth,
    DeliveryAuthError,
    InsecureTransportError,
    InvalidClientError,
    Token,
    TokenEndpointUnavailableError,
    TokenRequestError,
)
from delivery_auth.fetch import TokenFetcher

MakeAuth = Callable[..., ClientCredentialsAuth]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestWhatIsSent:
    def test_client_secret_post_with_scope_and_params(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(scope=["orders:read", "orders:write"], token_params={"ttl": 0, "aud": "x"})
        assert call("requests", auth, "GET", server.url()).status == 200
        form = server.state.token_requests[0].form
        assert form == {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "orders:read orders:write",
            "ttl": "0",
            "aud": "x",
        }
        assert "Authorization" not in server.state.token_requests[0].headers

    def test_client_secret_basic(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        auth = make_auth(token_endpoint_auth_method="client_secret_basic", scope="read")
        assert call("httpx", auth, "GET", server.url()).status == 200
        seen = server.state.token_requests[0]
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert seen.headers["Authorization"] == f"Basic {expected}"
        assert "client_secret" not in seen.form
        assert seen.form["scope"] == "read"

    @pytest.mark.parametrize("client", CLIENTS)
    def test_token_params_are_sent_on_refresh_too(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        auth = make_auth(token_params={"ttl": 600, "audience": "api"})
        assert call(client, auth, "GET", server.url()).status == 200
        server.state.revoke_all()
        assert call(client, auth, "GET", server.url()).status == 200
        forms = [seen.form for seen in server.state.token_requests]
        assert len(forms) == 2
        assert all(f["ttl"] == "600" and f["audience"] == "api" for f in forms)

    def test_no_redirects_are_followed_by_the_token_request(
        self, server: LoopbackServer, other_server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        server.state.token_script.append(Reply(307, b"", {"Location": other_server.token_url}))
        with pytest.raises(TokenRequestError, match="redirected .*307") as info:
            call("requests", make_auth(), "GET", server.url())
        assert other_server.state.token_requests == []
        assert info.value.status_code == 307


class TestBadInput:
    def test_plain_http_token_url_is_refused(self) -> None:
        with pytest.raises(InsecureTransportError, match="token_url"):
            ClientCredentialsAuth("http://auth.example.com/token", "id", "secret")

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"client_id": ""}, "client_id"),
            ({"client_secret": None}, "client_secret"),
            ({"token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
            ({"timeout": 0}, "timeout"),
            ({"scope": ["ok", ""]}, "scope"),
            ({"token_params": {"client_secret": "x"}}, "token_params"),
            ({"cache": object()}, "TokenCache"),
            ({"refresh_ratio": 2}, "refresh_ratio"),
            ({"allowed_hosts": ["https://x"]}, "allowed_hosts"),
        ],
    )
    def test_constructor_names_the_bad_argument(
        self, kwargs: dict[str, object], message: str
    ) -> None:
        args: dict[str, object] = {
            "token_url": "https://auth.example.com/token",
            "client_id": "id",
            "client_secret": "secret",
        }
        args.update(kwargs)
        with pytest.raises((ValueError, TypeError), match=message):
            ClientCredentialsAuth(**args)  # type: ignore[arg-type]


class TestRejections:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_wrong_secret(self, server: LoopbackServer, client: str) -> None:
        auth = ClientCredentialsAuth(server.token_url, CLIENT_ID, "wrong-secret-value")
        with pytest.raises(InvalidClientError) as info:
            call(client, auth, "GET", server.url())
        error = info.value
        assert (error.status_code, error.error) == (401, "invalid_client")
        assert "Check client_id and client_secret" in str(error)
        assert "wrong-secret-value" not in str(error)
        assert len(server.state.token_requests) == 1  # never retried
        assert server.state.api_requests == []  # nothing sent without a token
        auth.close()

    @pytest.mark.parametrize(
        ("reply", "kind", "fragment"),
        [
            (Reply(400, {"error": "invalid_scope"}), TokenRequestError, "invalid_scope"),
            (Reply(400, {"error": "invalid_client"}), InvalidClientError, "invalid_client"),
            (Reply(403, {"error": "access_denied"}), TokenRequestError, "HTTP 403"),
            (
                Reply(
                    400,
                    {
                        "type": "https://api-sandbox.dhlecs.com/docs/errors/400.0000005",
                        "title": "Invalid credentials",
                    },
                    {"Content-Type": "application/problem+json"},
                ),
                InvalidClientError,
                "Invalid credentials, problem 400.0000005",
            ),
            # A 4xx whose JSON has no "error" is still an error, never a token.
            (Reply(400, {"access_token": "sneaky"}), InvalidClientError, "HTTP 400"),
            (Reply(418, {"access_token": "sneaky"}), TokenRequestError, "HTTP 418"),
        ],
    )
    def test_error_statuses(
        self,
        server: LoopbackServer,
        make_auth: MakeAuth,
        reply: Reply,
        kind: type[Exception],
        fragment: str,
    ) -> None:
        server.state.token_script.append(reply)
        with pytest.raises(kind, match=fragment) as info:
            call("requests", make_auth(), "GET", server.url())
        assert type(info.value) is kind
        assert len(server.state.token_requests) == 1

    def test_problem_details_attributes(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        problem = {"type": "https://x/docs/errors/401.0000002", "title": "Bad", "detail": "why"}
        server.state.token_script.append(Reply(401, problem))
        with pytest.raises(InvalidClientError) as info:
            call("httpx", make_auth(), "GET", server.url())
        assert info.value.problem_type == problem["type"]
        assert (info.value.error, info.value.description) == ("Bad", "why")

    @pytest.mark.parametrize(
        ("reply", "fragment"),
        [
            (Reply(200, "<html><body>Gateway says hi</body></html>"), "not JSON"),
            (
                Reply(200, b'{"access_token": "abc", "expi', {"Content-Type": "application/json"}),
                "not JSON",
            ),
            (Reply(200, [{"access_token": "abc"}]), "JSON list"),
            (Reply(200, b""), "not JSON"),
            (Reply(200, {"token_type": "Bearer"}), "access_token is missing"),
            (Reply(200, {"access_token": ""}), "access_token is not a non-empty string"),
            (Reply(200, {"access_token": ["x"]}), "access_token is not a non-empty string"),
            (Reply(200, {"access_token": "abc", "expires_in": "later"}), "expires_in"),
            (Reply(200, {"access_token": "abc", "expires_in": 0}), "expires_in"),
            (Reply(200, {"access_token": "abc", "expires_in": -60}), "expires_in"),
            (Reply(200, {"error": "server_error"}), "server_error"),
        ],
    )
    @pytest.mark.parametrize("client", ["requests", "httpx-async"])
    def test_unusable_token_responses(
        self,
        server: LoopbackServer,
        make_auth: MakeAuth,
        reply: Reply,
        fragment: str,
        client: str,
    ) -> None:
        server.state.token_script.append(reply)
        with pytest.raises(TokenRequestError, match=fragment) as info:
            call(client, make_auth(), "GET", server.url())
        assert info.value.status_code == 200
        assert info.value.token_url == server.token_url


class TestTransientFailures:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_5xx_then_success(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        server.state.token_script.extend([Reply(503, "busy"), Reply(502, b"")])
        assert call(client, make_auth(), "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 3

    def test_429_retry_after_is_honoured(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        server.state.token_script.append(Reply(429, {"error": "slow_down"}, {"Retry-After": "0"}))
        assert call("requests", make_auth(), "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 2

    def test_http_date_retry_after(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        past = "Wed, 21 Oct 2015 07:28:00 GMT"
        server.state.token_script.append(Reply(503, b"", {"Retry-After": past}))
        assert call("httpx", make_auth(), "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 2

    def test_retry_after_too_long_fails_at_once(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        server.state.token_script.append(Reply(429, b"", {"Retry-After": "120"}))
        with pytest.raises(TokenEndpointUnavailableError, match="retry after 120 s") as info:
            call("requests", make_auth(), "GET", server.url())
        assert info.value.retry_after == 120
        assert info.value.status_code == 429
        assert len(server.state.token_requests) == 1

    @pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async"])
    def test_attempts_are_bounded(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        server.state.token_script.extend([Reply(500, "oops")] * 5)
        with pytest.raises(TokenEndpointUnavailableError, match="HTTP 500 3 times") as info:
            call(client, make_auth(), "GET", server.url())
        assert info.value.status_code == 500
        assert len(server.state.token_requests) == 3
        assert server.state.api_requests == []

    def test_connection_refused(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/token"
        with ClientCredentialsAuth(url, CLIENT_ID, CLIENT_SECRET, backoff=FAST_BACKOFF) as auth:
            with pytest.raises(TokenEndpointUnavailableError, match="Could not reach") as info:
                auth.get_token()
        assert info.value.status_code is None

    def test_reset_mid_body_is_retried(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        server.state.token_script.append(Reply(200, {"access_token": "x" * 50}, reset=True))
        assert call("requests", make_auth(), "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 2

    def test_slower_than_timeout(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        # The server answers long after the client's 0.05 s, however slow the machine is.
        server.state.token_script.extend([Reply(200, {"access_token": "late"}, delay=30)] * 2)
        auth = make_auth(timeout=0.05, backoff=BackoffPolicy(attempts=2, base_delay=0.001))
        # The read timeout and the overall deadline run out together: either may report.
        with pytest.raises(
            TokenEndpointUnavailableError, match=r"within timeout=0\.05 s \(\w+, 2 attempts\)"
        ):
            call("requests", auth, "GET", server.url())

    def test_a_failed_fetch_is_tried_again_on_the_next_call(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(backoff=BackoffPolicy(attempts=1))
        server.state.token_script.append(Reply(503, b""))
        with pytest.raises(TokenEndpointUnavailableError):
            call("requests", auth, "GET", server.url())
        assert call("requests", auth, "GET", server.url()).status == 200


def test_logs_name_the_fetch_and_the_retries(
    server: LoopbackServer, make_auth: MakeAuth, debug_log: pytest.LogCaptureFixture
) -> None:
    server.state.token_script.append(Reply(503, b""))
    call("requests", make_auth(), "GET", server.url())
    ours = [r for r in debug_log.records if r.name == "delivery_auth"]
    messages = [r.getMessage() for r in ours]
    assert any("retrying in" in m and "HTTP 503" in m for m in messages)
    fetched = [m for m in messages if m.startswith("Fetched a client_credentials token")]
    assert len(fetched) == 1
    assert "lifetime 3600 s" in fetched[0]
    assert {r.levelname for r in ours} <= {"DEBUG", "INFO"}


def test_form_is_urlencoded(server: LoopbackServer, make_auth: MakeAuth) -> None:
    call("requests", make_auth(), "GET", server.url())
    seen = server.state.token_requests[0]
    assert seen.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert dict(parse_qsl(seen.body.decode()))["grant_type"] == "client_credentials"


class TestSessionOnFirstUse:
    """Authlib's session (and its deadline adapters) is built by the first token request:
    an auth object that is never used, or closed first, never builds one."""

    def test_building_or_closing_builds_no_session(self, server: LoopbackServer) -> None:
        fetcher = TokenFetcher(server.token_url, CLIENT_ID, CLIENT_SECRET)
        assert fetcher._session is None
        fetcher.close()
        assert fetcher._session is None
        with pytest.raises(DeliveryAuthError, match="closed"):
            fetcher.fetch()
        assert fetcher._session is None
        assert server.state.token_requests == []

    def test_the_first_request_builds_it_and_a_fork_drops_it(self, server: LoopbackServer) -> None:
        fetcher = TokenFetcher(server.token_url, CLIENT_ID, CLIENT_SECRET)
        assert fetcher.fetch().access_token
        session = fetcher._session
        assert session is not None
        assert fetcher.fetch().access_token
        assert fetcher._session is session  # one session, kept alive between requests
        fetcher.reset_after_fork()  # in a child: the parent's connections are not ours
        assert fetcher._session is None
        assert fetcher.fetch().access_token
        assert fetcher._session is not None
        assert fetcher._session is not session
        assert len(server.state.token_requests) == 3
        fetcher.close()

    def test_close_ends_a_back_off_wait_at_once(self, server: LoopbackServer) -> None:
        """The back-off would last minutes; close() from another thread ends it."""
        fetcher = TokenFetcher(
            server.token_url,
            CLIENT_ID,
            CLIENT_SECRET,
            backoff=BackoffPolicy(attempts=2, base_delay=600, max_delay=600),
        )
        server.state.token_script.append(Reply(503, b""))
        pausing = threading.Event()
        pause = fetcher._pause

        def watched(delay: float) -> None:
            pausing.set()
            pause(delay)

        fetcher._pause = watched  # type: ignore[method-assign]
        outcome: concurrent.futures.Future[Token] = concurrent.futures.Future()
        threading.Thread(target=lambda: _run_into(outcome, fetcher.fetch), daemon=True).start()
        assert pausing.wait(30)
        fetcher.close()
        with pytest.raises(DeliveryAuthError, match="closed"):
            outcome.result(30)  # 30 s: only a hang reaches it, the back-off is 300 s or more
        assert len(server.state.token_requests) == 1


def _run_into(outcome: concurrent.futures.Future[Token], run: Callable[[], Token]) -> None:
    try:
        outcome.set_result(run())
    except BaseException as exc:
        outcome.set_exception(exc)
