"""Bringg: regional token URLs, ttl on every token request, the created_at clock check,
401 -> one refresh and one resend, success:false is not an auth failure; against the
emulator's Bringg page (loopback)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from emulated import EmulatedProvider
from loopback import Reply

from delivery_auth import DisallowedHostError, InvalidClientError
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers import PROVIDERS, BringgAuth, ConfigurationError

CLIENT_ID = CREDENTIALS["bringg"].client_id
CLIENT_SECRET = CREDENTIALS["bringg"].client_secret

MakeAuth = Callable[..., BringgAuth]


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("bringg") as srv:
        yield srv


@pytest.fixture
def make_auth(server: EmulatedProvider) -> Iterator[MakeAuth]:
    def build(**options: Any) -> BringgAuth:
        options.setdefault("token_url", server.token_url)
        options.setdefault("backoff", FAST_BACKOFF)
        return BringgAuth(CLIENT_ID, CLIENT_SECRET, **options)

    yield from closing(build)


def orders(client: str, auth: BringgAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "POST", server.url("/open_api/v1/orders"), json={"id": 1})


def test_registered_under_its_short_name() -> None:
    assert PROVIDERS["bringg"] is BringgAuth


class TestTokenRequest:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_form_fields_and_header(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        assert orders(client, auth, server).status == 200
        (token_request,) = server.token_requests
        assert token_request.form == {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        (api_request,) = server.api_requests
        assert api_request.headers["Authorization"] == f"Bearer {server.issued[0]}"

    @pytest.mark.parametrize("client", CLIENTS)
    def test_ttl_is_sent_on_every_token_request(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(ttl=900, scope="orders")
        assert orders(client, auth, server).status == 200
        server.revoke_all()
        assert orders(client, auth, server).status == 200
        assert [seen.form.get("ttl") for seen in server.token_requests] == ["900", "900"]
        assert [seen.form.get("scope") for seen in server.token_requests] == ["orders"] * 2
        assert auth.get_token().lifetime == 900.0

    def test_rejected_credentials(self, server: EmulatedProvider) -> None:
        auth = BringgAuth(CLIENT_ID, "wrong-secret", token_url=server.token_url)
        with pytest.raises(InvalidClientError) as caught:
            orders("requests", auth, server)
        assert caught.value.status_code == 401
        assert "wrong-secret" not in str(caught.value)

    @pytest.mark.parametrize("ttl", [0, -5, 1.5, "60", True])
    def test_bad_ttl(self, ttl: Any) -> None:
        with pytest.raises(ValueError, match="ttl"):
            BringgAuth(CLIENT_ID, CLIENT_SECRET, ttl=ttl)


class TestRegions:
    @pytest.mark.parametrize(
        ("region", "url"),
        [
            (None, "https://admin-api.bringg.com/oauth/token"),
            ("us2", "https://us2-admin-api.bringg.com/oauth/token"),
            ("us3", "https://us3-api.bringg.com/oauth/token"),
            ("eu2", "https://eu2-admin-api.bringg.com/oauth/token"),
            ("EU3", "https://eu3-admin-api.bringg.com/oauth/token"),
        ],
    )
    def test_token_url_per_region(self, region: str | None, url: str) -> None:
        auth = BringgAuth(CLIENT_ID, CLIENT_SECRET, region=region)
        assert auth.token_url == url
        assert url == f"https://{auth.api_host}/oauth/token"

    def test_token_url_wins(self) -> None:
        auth = BringgAuth(
            CLIENT_ID, CLIENT_SECRET, region="eu2", token_url="https://x.bringg.com/t"
        )
        assert auth.token_url == "https://x.bringg.com/t"

    def test_unknown_region_lists_the_valid_ones(self) -> None:
        with pytest.raises(ValueError, match="eu1") as caught:
            BringgAuth(CLIENT_ID, CLIENT_SECRET, region="eu1")
        for region in ("us2", "us3", "eu2", "eu3"):
            assert region in str(caught.value)


class TestFailureSignals:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_401_refreshes_once_and_resends_once(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        assert orders(client, auth, server).status == 200
        server.revoke_all()  # e.g. the secret was regenerated in the console
        result = orders(client, auth, server)
        assert result.status == 200
        assert result.history == [401]
        assert len(server.token_requests) == 2
        assert len(server.api_requests) == 3
        assert server.api_requests[2].body == server.api_requests[1].body
        assert json.loads(server.api_requests[2].body) == {"id": 1}

    @pytest.mark.parametrize("client", CLIENTS)
    def test_success_false_at_200_is_not_an_auth_failure(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        business_error = {"success": False, "message": "Order not found", "rc": 7}
        server.api_script.append(Reply(200, business_error))
        result = orders(client, auth, server)
        assert result.status == 200
        assert result.json() == business_error
        assert len(server.token_requests) == 1
        assert len(server.api_requests) == 1

    @pytest.mark.parametrize("client", CLIENTS)
    def test_401_twice_is_returned_after_one_retry(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        server.api_script.extend([Reply(401, {"success": False})] * 2)
        result = orders(client, auth, server)
        assert result.status == 401
        assert len(server.token_requests) == 2
        assert len(server.api_requests) == 2


class TestClockSkew:
    @pytest.mark.parametrize("offset", [-3600.0, 600.0])
    def test_one_warning_and_local_lifetimes(
        self,
        offset: float,
        server: EmulatedProvider,
        make_auth: MakeAuth,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.INFO, logger="delivery_auth")
        server.emu.clock_offset = offset
        auth = make_auth(ttl=1200)
        assert orders("httpx", auth, server).status == 200
        server.revoke_all()
        assert orders("requests", auth, server).status == 200
        assert len(server.token_requests) == 2
        skew = [r for r in caplog.records if "clock" in r.getMessage()]
        assert len(skew) == 1  # one WARNING, not one per token
        assert skew[0].levelno == logging.WARNING
        message = skew[0].getMessage()
        assert ("ahead of" if offset > 0 else "behind") in message
        seconds = int(re.search(r"clock is (\d+) s", message).group(1))  # type: ignore[union-attr]
        # The measured skew also holds the time the token response took to arrive (and
        # created_at is whole seconds): a busy machine adds seconds, not minutes.
        assert abs(seconds - abs(offset)) <= 60
        # The lifetime comes from expires_in, measured locally; created_at does not shorten it.
        assert auth.get_token().lifetime == 1200.0
        assert auth.get_token().extra["created_at"] > 0

    def test_no_warning_when_the_clocks_agree(
        self, server: EmulatedProvider, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="delivery_auth")
        assert orders("httpx-async", make_auth(), server).status == 200
        assert not [
            r for r in caplog.records if r.name == "delivery_auth" and r.levelno >= logging.WARNING
        ]

    @pytest.mark.parametrize("created_at", ["yesterday", None, True, [1]])
    def test_odd_created_at_is_ignored(
        self,
        created_at: Any,
        server: EmulatedProvider,
        make_auth: MakeAuth,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="delivery_auth")
        server.token_script.append(
            Reply(200, {"access_token": "odd-token", "expires_in": 60, "created_at": created_at})
        )
        server.accept("odd-token")
        assert orders("requests", make_auth(), server).status == 200
        assert not [
            r for r in caplog.records if r.name == "delivery_auth" and r.levelno >= logging.WARNING
        ]


class TestHostsAndConfiguration:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_other_hosts_are_refused(self, client: str, make_auth: MakeAuth) -> None:
        auth = make_auth()
        with pytest.raises(DisallowedHostError) as caught:
            call(client, auth, "GET", "https://api.bringg.example.org/orders")
        assert "api.bringg.example.org" in str(caught.value)
        assert "allowed_hosts" in str(caught.value)

    def test_default_hosts(self) -> None:
        auth = BringgAuth(CLIENT_ID, CLIENT_SECRET)
        assert auth.allowed_hosts == ("*.bringg.com", "localhost", "127.0.0.0/8", "::1")

    def test_repr_and_equality(self) -> None:
        auth = BringgAuth(CLIENT_ID, CLIENT_SECRET, region="us2", ttl=60)
        assert CLIENT_SECRET not in repr(auth)
        assert "us2" in repr(auth)
        assert auth == BringgAuth(CLIENT_ID, CLIENT_SECRET, region="us2", ttl=60)
        assert auth != BringgAuth(CLIENT_ID, CLIENT_SECRET, region="us2", ttl=61)

    def test_from_env(self, server: EmulatedProvider) -> None:
        env = {
            "BRINGG_CLIENT_ID": CLIENT_ID,
            "BRINGG_CLIENT_SECRET": CLIENT_SECRET,
            "BRINGG_REGION": "eu2",
            "BRINGG_TTL": "600",
        }
        auth = BringgAuth.from_env(env)
        assert auth.token_url == "https://eu2-admin-api.bringg.com/oauth/token"
        assert auth.ttl == 600
        with BringgAuth.from_env(env, token_url=server.token_url) as local:
            assert orders("httpx", local, server).status == 200
        assert server.token_requests[0].form["ttl"] == "600"

    def test_from_env_missing_and_bad_values(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            BringgAuth.from_env({"BRINGG_REGION": "eu2"})
        assert caught.value.missing == ("BRINGG_CLIENT_ID", "BRINGG_CLIENT_SECRET")
        env = {"BRINGG_CLIENT_ID": "a", "BRINGG_CLIENT_SECRET": "b"}
        with pytest.raises(ConfigurationError, match="BRINGG_TTL"):
            BringgAuth.from_env({**env, "BRINGG_TTL": "30m"})
        with pytest.raises(ValueError, match="region"):
            BringgAuth.from_env({**env, "BRINGG_REGION": "mars"})


@pytest.mark.parametrize("client", CLIENTS)
def test_no_secret_or_token_in_logs_or_reprs(
    client: str, server: EmulatedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with BringgAuth(CLIENT_ID, CLIENT_SECRET, token_url=server.token_url, ttl=60) as auth:
        assert (
            call(client, auth, "POST", server.url("/open_api/v1/orders"), json={"id": 1}).status
            == 200
        )
        server.revoke_all()
        result = call(client, auth, "POST", server.url("/open_api/v1/orders"), json={"id": 1})
        assert result.status == 200
        assert result.history
        shown = caplog.text + repr(auth) + str(auth) + repr(auth.get_token())
    secrets = server.secrets_seen()
    assert len(secrets) >= 3  # the client secret and two credentials
    for secret in secrets:
        assert secret not in shown
