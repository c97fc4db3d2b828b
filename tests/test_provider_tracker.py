"""Delivery Tracker: API key and OAuth2 modes, and the GraphQL UNAUTHENTICATED hook,
through every client against the emulator's Delivery Tracker page (loopback)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import pytest
import requests
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from emulated import UNAUTHENTICATED_SECOND, EmulatedProvider, graphql_errors
from loopback import Reply

from delivery_auth import DisallowedHostError, InsecureTransportError
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers import PROVIDERS, ConfigurationError, DeliveryTrackerAuth

CLIENT_ID = CREDENTIALS["tracker"].client_id
CLIENT_SECRET = CREDENTIALS["tracker"].client_secret

QUERY = {"query": "query { carriers(first: 1) { edges { node { id } } } }"}
MakeAuth = Callable[..., DeliveryTrackerAuth]


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("tracker") as srv:
        yield srv


@pytest.fixture
def make_auth(server: EmulatedProvider) -> Iterator[MakeAuth]:
    def build(client_secret: str = CLIENT_SECRET, **options: Any) -> DeliveryTrackerAuth:
        options.setdefault("token_url", server.token_url)
        options.setdefault("backoff", FAST_BACKOFF)
        return DeliveryTrackerAuth(CLIENT_ID, client_secret, **options)

    yield from closing(build)


def post(client: str, auth: DeliveryTrackerAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "POST", server.resource_url, json=QUERY)


def test_registered_under_its_short_name() -> None:
    assert PROVIDERS["tracker"] is DeliveryTrackerAuth
    assert DeliveryTrackerAuth.GRAPHQL_URL == "https://apis.tracker.delivery/graphql"
    assert DeliveryTrackerAuth.TOKEN_URL == "https://auth.tracker.delivery/oauth2/token"


class TestApiKey:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_header_and_no_token_request(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        result = post(client, auth, server)
        assert result.status == 200
        assert result.json()["data"]["carriers"]
        assert [seen.headers["Authorization"] for seen in server.api_requests] == [
            f"TRACKQL-API-KEY {CLIENT_ID}:{CLIENT_SECRET}"
        ]
        assert server.token_requests == []
        assert auth.token_requests == 0

    @pytest.mark.parametrize("client", CLIENTS)
    def test_unauthenticated_is_returned_with_a_warning(
        self,
        client: str,
        server: EmulatedProvider,
        make_auth: MakeAuth,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="delivery_auth")
        result = post(client, make_auth(client_secret="not-the-secret"), server)
        assert result.status == 200
        assert result.json() == {  # the emulator's answer, returned as it is
            "data": None,
            "errors": [{"message": "Invalid API key.", "extensions": {"code": "UNAUTHENTICATED"}}],
        }
        assert len(server.api_requests) == 1  # never resent: nothing to refresh
        assert server.token_requests == []
        warnings = [
            r for r in caplog.records if r.name == "delivery_auth" and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1
        message = warnings[0].getMessage()
        assert "2024-05-13" in message
        assert 'method="oauth2"' in message
        assert CLIENT_SECRET not in caplog.text

    def test_control_characters_are_refused(self) -> None:
        with pytest.raises(ValueError, match="control characters"):
            DeliveryTrackerAuth(CLIENT_ID, "secret\r\nX-Evil: 1")

    def test_repr_hides_the_secret(self, make_auth: MakeAuth) -> None:
        auth = make_auth()
        assert CLIENT_SECRET not in repr(auth)
        assert CLIENT_SECRET not in repr(auth.get_token())
        assert "api_key" in repr(auth)
        oauth2 = make_auth(method="oauth2")
        assert "oauth2" in repr(oauth2)
        assert CLIENT_SECRET not in repr(oauth2)


class TestOAuth2:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_token_request_and_header(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        assert post(client, auth, server).status == 200
        (token_request,) = server.token_requests
        assert token_request.method == "POST"
        assert token_request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert token_request.form == {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        (api_request,) = server.api_requests
        assert api_request.headers["Authorization"] == f"Bearer {server.issued[0]}"

    def test_basic_auth_and_scope(self, server: EmulatedProvider, make_auth: MakeAuth) -> None:
        auth = make_auth(
            method="oauth2", token_endpoint_auth_method="client_secret_basic", scope="track"
        )
        assert post("requests", auth, server).status == 200
        (token_request,) = server.token_requests
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        assert token_request.headers["Authorization"] == f"Basic {expected}"
        assert token_request.form == {"grant_type": "client_credentials", "scope": "track"}

    @pytest.mark.parametrize("status", [200, 400, 401, 500])
    @pytest.mark.parametrize("client", CLIENTS)
    def test_unauthenticated_at_any_status_refreshes_once_and_resends_once(
        self, client: str, status: int, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        assert post(client, auth, server).status == 200
        server.emu.tracker_unauthenticated_status = status
        server.revoke_all()  # the token expired on the server's side
        result = post(client, auth, server)
        assert result.status == 200
        assert result.history == [status]
        assert len(server.token_requests) == 2
        assert len(server.api_requests) == 3
        first, rejected, resent = (seen.headers["Authorization"] for seen in server.api_requests)
        assert rejected == first
        assert resent != rejected
        assert resent == f"Bearer {server.issued[1]}"

    @pytest.mark.parametrize("client", CLIENTS)
    def test_unauthenticated_twice_is_one_retry_only(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        server.api_script.extend([Reply(200, UNAUTHENTICATED_SECOND)] * 2)
        result = post(client, auth, server)
        assert result.json() == UNAUTHENTICATED_SECOND
        assert len(server.api_requests) == 2
        assert len(server.token_requests) == 2

    @pytest.mark.parametrize(
        ("status", "codes"),
        [
            (200, ("FORBIDDEN",)),
            (403, ("FORBIDDEN",)),
            (400, ("BAD_REQUEST", "FORBIDDEN", "NOT_FOUND")),
            (200, ("NOT_FOUND",)),
            (500, ("INTERNAL",)),
            (401, ("INTERNAL", "FORBIDDEN")),
        ],
    )
    @pytest.mark.parametrize("client", CLIENTS)
    def test_other_error_codes_never_refresh(
        self,
        client: str,
        status: int,
        codes: tuple[str, ...],
        server: EmulatedProvider,
        make_auth: MakeAuth,
    ) -> None:
        auth = make_auth(method="oauth2")
        server.api_script.append(Reply(status, graphql_errors(*codes)))
        result = post(client, auth, server)
        assert result.status == status
        assert result.history == []
        assert len(server.api_requests) == 1
        assert len(server.token_requests) == 1

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("application/json", b"UNAUTHENTICATED"),
            ("application/json", json.dumps(UNAUTHENTICATED_SECOND).encode()[:-3]),
            ("application/json", b'{"errors": {"extensions": {"code": "UNAUTHENTICATED"}}}'),
            ("application/json", b'{"errors": "UNAUTHENTICATED"}'),
            ("application/json", b'{"errors": ["UNAUTHENTICATED", 1, null, [], true]}'),
            ("application/json", b'{"errors": [{"message": "UNAUTHENTICATED"}]}'),
            ("application/json", b'{"errors": [{"extensions": null, "m": "UNAUTHENTICATED"}]}'),
            ("application/json", b'{"errors": [{"extensions": ["UNAUTHENTICATED"]}]}'),
            ("application/json", b'{"extensions": {"code": "UNAUTHENTICATED"}}'),
            ("application/json", b'[[{"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}]]'),
            ("application/json", b"\xff\xfe UNAUTHENTICATED \x00"),
            ("application/json", b"[" * 50_000 + b'"UNAUTHENTICATED"'),
            (
                "application/json",
                b'{"data": "' + b"x" * 3_000_000 + b'", "errors": '
                b'[{"extensions": {"code": "UNAUTHENTICATED"}}]}',
            ),
            ("text/html", json.dumps(UNAUTHENTICATED_SECOND).encode()),
            ("", json.dumps(UNAUTHENTICATED_SECOND).encode()),
        ],
        ids=[
            "not-json",
            "truncated",
            "errors-object",
            "errors-string",
            "elements-not-objects",
            "extensions-missing",
            "extensions-null",
            "extensions-list",
            "code-outside-errors",
            "batch-in-a-list",  # a batch answer is one flat array (test_response_bodies)
            "bad-utf8",
            "deep-nesting",
            "multi-megabyte",
            "html",
            "no-content-type",
        ],
    )
    @pytest.mark.parametrize("status", [200, 401])
    @pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async"])
    def test_malformed_bodies_are_not_auth_failures(
        self,
        client: str,
        status: int,
        content_type: str,
        body: bytes,
        server: EmulatedProvider,
        make_auth: MakeAuth,
    ) -> None:
        auth = make_auth(method="oauth2")
        headers = {"Content-Type": content_type} if content_type else {}
        server.api_script.append(Reply(status, body, headers))
        result = post(client, auth, server)
        assert result.status == status
        assert result.body == body
        assert len(server.api_requests) == 1
        assert len(server.token_requests) == 1

    def test_graphql_response_content_type_is_inspected(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        server.api_script.append(
            Reply(
                200,
                json.dumps(UNAUTHENTICATED_SECOND).encode(),
                {"Content-Type": "application/graphql-response+json; charset=utf-8"},
            )
        )
        assert post("httpx", auth, server).history == [200]
        assert len(server.token_requests) == 2


class TestStreaming:
    """With httpx, a response the detector does not need is never read by the flow."""

    BIG = b"tracking-export;" * 65_536  # 1 MiB of CSV-ish text

    def test_httpx_non_json_stream_stays_streamed(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        server.api_script.append(Reply(200, self.BIG, {"Content-Type": "text/csv"}))
        with (
            httpx.Client(auth=auth) as client,
            client.stream("POST", server.resource_url, json=QUERY) as response,
        ):
            assert not response.is_stream_consumed
            assert b"".join(response.iter_bytes()) == self.BIG

    def test_httpx2_non_json_stream_stays_streamed(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        server.api_script.append(Reply(401, self.BIG, {"Content-Type": "text/plain"}))
        with (
            httpx2.Client(auth=auth) as client,
            client.stream("POST", server.resource_url, json=QUERY) as response,
        ):
            assert not response.is_stream_consumed
            assert response.status_code == 401
            assert b"".join(response.iter_bytes()) == self.BIG
        assert len(server.api_requests) == 1

    def test_httpx_async_non_json_stream_stays_streamed(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        server.api_script.append(Reply(200, self.BIG, {"Content-Type": "text/csv"}))

        async def go() -> tuple[bool, bytes]:
            async with (
                httpx.AsyncClient(auth=auth) as client,
                client.stream("POST", server.resource_url, json=QUERY) as response,
            ):
                consumed = response.is_stream_consumed
                return consumed, b"".join([chunk async for chunk in response.aiter_bytes()])

        consumed, body = asyncio.run(go())
        assert consumed is False
        assert body == self.BIG

    def test_json_stream_is_judged_and_still_streamed(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        # The detector peeks at a JSON body and puts it back (tests/test_response_bodies.py
        # has the bodies past max_body): the user still streams every byte of it. And the
        # control for the tests above: is_stream_consumed does notice a read.
        auth = make_auth(method="oauth2")
        with (
            httpx.Client(auth=auth) as client,
            client.stream("POST", server.resource_url, json=QUERY) as response,
        ):
            assert not response.is_stream_consumed
            assert json.loads(b"".join(response.iter_raw()))["data"]["carriers"]
            assert response.is_stream_consumed

    def test_requests_non_json_stream_stays_streamed(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(method="oauth2")
        server.api_script.append(Reply(200, self.BIG, {"Content-Type": "text/csv"}))
        with requests.post(server.resource_url, json=QUERY, auth=auth, stream=True) as response:
            assert response._content_consumed is False  # type: ignore[attr-defined]
            assert b"".join(response.iter_content(65_536)) == self.BIG


class TestHostsAndConfiguration:
    @pytest.mark.parametrize("client", CLIENTS)
    @pytest.mark.parametrize("method", ["api_key", "oauth2"])
    def test_other_hosts_are_refused(self, client: str, method: str, make_auth: MakeAuth) -> None:
        auth = make_auth(method=method)
        with pytest.raises(DisallowedHostError) as caught:
            call(client, auth, "POST", "https://tracker.example.com/graphql", json=QUERY)
        assert "tracker.example.com" in str(caught.value)
        assert "allowed_hosts" in str(caught.value)

    def test_default_hosts(self) -> None:
        auth = DeliveryTrackerAuth(CLIENT_ID, CLIENT_SECRET)
        assert auth.allowed_hosts is not None
        assert "*.tracker.delivery" in auth.allowed_hosts
        assert "127.0.0.0/8" in auth.allowed_hosts

    def test_allowed_hosts_can_be_extended(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(allowed_hosts=["127.0.0.1"])
        assert post("httpx", auth, server).status == 200

    def test_unknown_method(self) -> None:
        with pytest.raises(ValueError, match="api_key"):
            DeliveryTrackerAuth(CLIENT_ID, CLIENT_SECRET, method="password")

    def test_plain_http_token_url_is_refused(self) -> None:
        with pytest.raises(InsecureTransportError):
            DeliveryTrackerAuth(
                CLIENT_ID, CLIENT_SECRET, method="oauth2", token_url="http://auth.example.com/t"
            )

    def test_from_env(self, server: EmulatedProvider) -> None:
        env = {
            "DELIVERY_TRACKER_CLIENT_ID": CLIENT_ID,
            "DELIVERY_TRACKER_CLIENT_SECRET": CLIENT_SECRET,
            "DELIVERY_TRACKER_METHOD": "OAuth2",
        }
        with DeliveryTrackerAuth.from_env(env, token_url=server.token_url) as auth:
            assert auth.method == "oauth2"
            assert post("requests", auth, server).status == 200
        assert len(server.token_requests) == 1

    def test_from_env_reads_os_environ(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DELIVERY_TRACKER_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("DELIVERY_TRACKER_CLIENT_SECRET", CLIENT_SECRET)
        monkeypatch.delenv("DELIVERY_TRACKER_METHOD", raising=False)
        auth = DeliveryTrackerAuth.from_env()
        assert auth.method == "api_key"
        assert auth == DeliveryTrackerAuth(CLIENT_ID, CLIENT_SECRET)
        assert auth != DeliveryTrackerAuth(CLIENT_ID, CLIENT_SECRET, method="oauth2")

    def test_from_env_names_every_missing_variable(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            DeliveryTrackerAuth.from_env({"DELIVERY_TRACKER_CLIENT_SECRET": " "})
        assert caught.value.missing == (
            "DELIVERY_TRACKER_CLIENT_ID",
            "DELIVERY_TRACKER_CLIENT_SECRET",
        )
        assert "DELIVERY_TRACKER_CLIENT_ID, DELIVERY_TRACKER_CLIENT_SECRET" in str(caught.value)
        assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("client", CLIENTS)
def test_no_secret_or_token_in_logs_or_reprs(
    client: str, server: EmulatedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with DeliveryTrackerAuth(
        CLIENT_ID, CLIENT_SECRET, method="oauth2", token_url=server.token_url
    ) as auth:
        assert call(client, auth, "POST", server.resource_url, json=QUERY).status == 200
        server.revoke_all()
        result = call(client, auth, "POST", server.resource_url, json=QUERY)
        assert result.status == 200
        assert result.history
        shown = caplog.text + repr(auth) + str(auth) + repr(auth.get_token())
    secrets = server.secrets_seen()
    assert len(secrets) >= 3  # the client secret and two credentials
    for secret in secrets:
        assert secret not in shown
