"""Yandex Courier: the OAuth header, 401 with and without a refresh token, 403 is not a
token problem, verify(), and Yandex ID's implicit link and device-code login; against the
emulator's Yandex page (loopback)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from conftest import CLIENTS, FAST_BACKOFF, call, closing
from emulated import EmulatedProvider
from loopback import Reply

from delivery_auth import (
    DeliveryAuthError,
    DisallowedHostError,
    InvalidClientError,
    TokenRevokedError,
)
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.providers import PROVIDERS, ConfigurationError, YandexCourierAuth
from delivery_auth.yandex import DeviceCode, DeviceLoginError, authorize_url, device_login

KNOWN = CREDENTIALS["yandex"]
CLIENT_ID = KNOWN.client_id
CLIENT_SECRET = KNOWN.client_secret
assert KNOWN.token is not None
assert KNOWN.refresh_token is not None
YANDEX_TOKEN: str = KNOWN.token
YANDEX_REFRESH: str = KNOWN.refresh_token
PENDING = Reply(400, {"error": "authorization_pending", "error_description": "pending"})
SLOW_DOWN = Reply(400, {"error": "slow_down", "error_description": "slow down"})

MakeAuth = Callable[..., YandexCourierAuth]


@pytest.fixture
def server() -> Iterator[EmulatedProvider]:
    with EmulatedProvider("yandex", token_paths=("/token", "/device/code")) as srv:
        yield srv


@pytest.fixture
def make_auth(server: EmulatedProvider) -> Iterator[MakeAuth]:
    def build(
        token: str = YANDEX_TOKEN, *, refresh: bool = False, **options: Any
    ) -> YandexCourierAuth:
        options.setdefault("api_url", server.base)
        options.setdefault("token_url", server.url("/token"))
        options.setdefault("backoff", FAST_BACKOFF)
        if refresh:
            options.update(
                refresh_token=YANDEX_REFRESH, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
            )
        return YandexCourierAuth(token, **options)

    yield from closing(build)


def orders(client: str, auth: YandexCourierAuth, server: EmulatedProvider) -> Any:
    return call(client, auth, "GET", server.url("/api/v1/companies/42/orders"))


def test_registered_under_its_short_name() -> None:
    assert PROVIDERS["yandex"] is YandexCourierAuth


class TestHeader:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_oauth_scheme_and_no_token_request(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        result = orders(client, make_auth(), server)
        assert result.status == 200
        assert [seen.headers["Authorization"] for seen in server.api_requests] == [
            f"OAuth {YANDEX_TOKEN}"
        ]
        assert server.token_requests == []

    @pytest.mark.parametrize("bad", ["", "   ", "OAuth abc", "abc\r\nX: 1", None])
    def test_bad_tokens(self, bad: Any) -> None:
        with pytest.raises(ValueError, match="token"):
            YandexCourierAuth(bad)

    def test_refresh_token_needs_client_credentials(self) -> None:
        with pytest.raises(ValueError, match="client_id and client_secret"):
            YandexCourierAuth(YANDEX_TOKEN, refresh_token=YANDEX_REFRESH)
        with pytest.raises(ValueError, match="client_secret") as caught:
            YandexCourierAuth(YANDEX_TOKEN, refresh_token=YANDEX_REFRESH, client_id=CLIENT_ID)
        assert "client_id and" not in str(caught.value)

    def test_repr_and_equality_hide_the_token(self) -> None:
        auth = YandexCourierAuth(YANDEX_TOKEN)
        assert YANDEX_TOKEN not in repr(auth)
        assert YANDEX_TOKEN not in repr(auth.get_token())
        assert auth == YandexCourierAuth(YANDEX_TOKEN)
        assert auth != YandexCourierAuth("another-token")


class TestWithoutRefreshToken:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_401_is_returned_with_a_warning_and_never_resent(
        self,
        client: str,
        server: EmulatedProvider,
        make_auth: MakeAuth,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        server.revoke_all()
        result = orders(client, make_auth(), server)
        assert result.status == 401
        assert result.history == []
        assert len(server.api_requests) == 1
        assert server.token_requests == []
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "delivery_auth" and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 1
        assert "authorize_url" in warnings[0]
        assert "device_login" in warnings[0]
        assert YANDEX_TOKEN not in caplog.text

    @pytest.mark.parametrize("client", CLIENTS)
    def test_403_is_not_a_token_problem(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        server.api_script.append(Reply(403, {"message": "Company apikey is unknown or banned"}))
        assert orders(client, make_auth(), server).status == 403
        assert len(server.api_requests) == 1


class TestWithRefreshToken:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_401_renews_once_and_resends_once(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(refresh=True)
        assert orders(client, auth, server).status == 200
        server.revoke_all()
        result = orders(client, auth, server)
        assert result.status == 200
        assert result.history == [401]
        assert len(server.api_requests) == 3
        (token_request,) = server.token_requests
        assert token_request.form == {
            "grant_type": "refresh_token",
            "refresh_token": YANDEX_REFRESH,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        headers = [seen.headers["Authorization"] for seen in server.api_requests]
        assert headers[0] == headers[1] == f"OAuth {YANDEX_TOKEN}"
        assert headers[2] == f"OAuth {server.issued[0]}"

    def test_the_newest_refresh_token_is_kept(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(refresh=True)
        server.emu.yandex_rotate_refresh_tokens = True
        for client in ("requests", "httpx", "httpx-async"):
            server.revoke_all()  # the server also forgets each used refresh token
            assert orders(client, auth, server).status == 200
        used = [seen.form["refresh_token"] for seen in server.token_requests]
        assert len(used) == 3
        assert used[0] == YANDEX_REFRESH
        assert len(set(used)) == 3

    @pytest.mark.parametrize("client", CLIENTS)
    def test_403_does_not_renew(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        server.api_script.append(Reply(403, {"message": "Company apikey is unknown or banned"}))
        assert orders(client, make_auth(refresh=True), server).status == 403
        assert server.token_requests == []
        assert len(server.api_requests) == 1

    @pytest.mark.parametrize("client", CLIENTS)
    def test_revoked_refresh_token_raises_with_guidance(
        self, client: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        server.emu.revoke_all("yandex", refresh_tokens=True)
        with pytest.raises(TokenRevokedError, match="device_login") as caught:
            orders(client, make_auth(refresh=True), server)
        assert YANDEX_REFRESH not in str(caught.value)
        assert len(server.api_requests) == 1

    def test_same_token_is_never_resent(
        self, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        server.api_script.append(Reply(401, {"error": "expired"}))
        server.token_script.append(
            Reply(200, {"access_token": YANDEX_TOKEN, "refresh_token": "1:r2", "expires_in": 9})
        )
        with pytest.raises(TokenRevokedError, match="same value"):
            orders("httpx", make_auth(refresh=True), server)
        assert len(server.api_requests) == 1

    def test_wrong_client_secret(self, server: EmulatedProvider, make_auth: MakeAuth) -> None:
        server.revoke_all()
        auth = make_auth(refresh_token=YANDEX_REFRESH, client_id=CLIENT_ID, client_secret="nope-x")
        with pytest.raises(InvalidClientError) as caught:
            orders("requests", auth, server)
        assert "nope-x" not in str(caught.value)


class TestVerify:
    def test_ok(self, server: EmulatedProvider, make_auth: MakeAuth) -> None:
        auth = make_auth()
        assert auth.verify() is None
        assert asyncio.run(auth.averify()) is None
        assert [seen.path for seen in server.api_requests] == ["/api/v1/test"] * 2

    def test_default_url(self) -> None:
        assert YandexCourierAuth(YANDEX_TOKEN).test_url == "https://courier.yandex.ru/api/v1/test"

    def test_revoked(self, server: EmulatedProvider, make_auth: MakeAuth) -> None:
        server.revoke_all()
        auth = make_auth()
        with pytest.raises(TokenRevokedError, match="authorize_url"):
            auth.verify()
        with pytest.raises(TokenRevokedError):
            asyncio.run(auth.averify())

    def test_revoked_but_renewable(self, server: EmulatedProvider, make_auth: MakeAuth) -> None:
        server.revoke_all()
        make_auth(refresh=True).verify()
        assert len(server.token_requests) == 1
        assert len(server.api_requests) == 2

    @pytest.mark.parametrize(
        ("reply", "words"),
        [
            (Reply(403, {"message": "Company apikey is unknown or banned"}), "administrator"),
            (Reply(504, b"Gateway Timeout"), "try again later"),
            (Reply(200, {"message": "maintenance"}), "expected"),
            (Reply(200, b"<html>OK</html>"), "expected"),
            (Reply(500, {"message": "OK"}), "HTTP 500"),
        ],
    )
    def test_other_answers(
        self, reply: Reply, words: str, server: EmulatedProvider, make_auth: MakeAuth
    ) -> None:
        server.api_script.append(reply)
        with pytest.raises(DeliveryAuthError, match=words) as caught:
            make_auth().verify()
        assert not isinstance(caught.value, TokenRevokedError)

    def test_unreachable(self, make_auth: MakeAuth) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        auth = make_auth(api_url=f"http://127.0.0.1:{port}")
        with pytest.raises(DeliveryAuthError, match="Could not reach"):
            auth.verify(timeout=2)
        with pytest.raises(DeliveryAuthError, match="Could not reach"):
            asyncio.run(auth.averify(timeout=2))


class TestAuthorizeUrl:
    def test_implicit_flow_link(self) -> None:
        assert authorize_url("0123abcd") == (
            "https://oauth.yandex.com/authorize?response_type=token&client_id=0123abcd"
        )
        assert authorize_url("a b&c").endswith("client_id=a+b%26c")

    def test_needs_a_client_id(self) -> None:
        with pytest.raises(ValueError, match="client_id"):
            authorize_url("  ")


class TestDeviceLogin:
    def run(
        self, server: EmulatedProvider, script: Sequence[Reply] = (), **options: Any
    ) -> tuple[Any, list[float], list[DeviceCode]]:
        """A device login; ``script``: answers to the first polls (then the emulator's)."""
        sleeps: list[float] = []
        codes: list[DeviceCode] = []

        def on_code(code: DeviceCode) -> None:
            codes.append(code)
            server.token_script.extend(script)  # after /device/code: for the polls

        options.setdefault("client_secret", CLIENT_SECRET)
        token = device_login(
            CLIENT_ID,
            oauth_url=server.base,
            on_code=on_code,
            sleep=sleeps.append,
            **options,
        )
        return token, sleeps, codes

    def test_polls_at_the_servers_interval_until_confirmed(self, server: EmulatedProvider) -> None:
        server.emu.configure_device_flow(interval=3, pending_polls=0)
        token, sleeps, codes = self.run(
            server, device_name="ci-box", script=[PENDING, PENDING, SLOW_DOWN]
        )
        announced = server.token_answers[0]
        assert codes == [DeviceCode(announced["user_code"], f"{server.base}/device", 3, 300)]
        assert sleeps == [3, 3, 8]  # slow_down adds 5 s
        assert token.access_token == server.issued[-1]
        assert token.refresh_token == server.token_answers[-1]["refresh_token"]
        device_request, *polls = server.token_requests
        assert device_request.form == {"client_id": CLIENT_ID, "device_name": "ci-box"}
        assert len(polls) == 4
        assert polls[-1].form == {
            "grant_type": "device_code",
            "code": announced["device_code"],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
        # The result plugs straight into the auth object.
        auth = YandexCourierAuth(
            token.access_token,
            refresh_token=token.refresh_token,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_url=server.base,
        )
        auth.verify()

    @pytest.mark.parametrize(
        ("outcome", "words"), [("expired_token", "expired"), ("access_denied", "denied")]
    )
    def test_expiry_and_denial(self, outcome: str, words: str, server: EmulatedProvider) -> None:
        server.emu.configure_device_flow(
            pending_polls=1, outcome={"expired_token": "expire", "access_denied": "deny"}[outcome]
        )
        with pytest.raises(DeviceLoginError, match=words) as caught:
            self.run(server)
        assert caught.value.error == outcome
        assert len(server.token_requests) == 3

    def test_stops_when_the_code_expires_locally(self, server: EmulatedProvider) -> None:
        server.emu.configure_device_flow(interval=5, expires_in=12, pending_polls=10)
        sleeps: list[float] = []
        with pytest.raises(DeviceLoginError, match="expired") as caught:
            device_login(
                CLIENT_ID,
                CLIENT_SECRET,
                oauth_url=server.base,
                on_code=lambda c: None,
                sleep=sleeps.append,
            )
        assert caught.value.error == "expired_token"
        assert sleeps == [5, 5]
        assert len(server.token_requests) == 1 + 3

    def test_wrong_client_id(self, server: EmulatedProvider) -> None:
        with pytest.raises(InvalidClientError, match="ClientID"):
            device_login("someone-else", CLIENT_SECRET, oauth_url=server.base, sleep=lambda s: None)

    def test_wrong_client_secret(self, server: EmulatedProvider) -> None:
        with pytest.raises(InvalidClientError) as caught:
            self.run(server, client_secret="bad-secret-99")
        assert "bad-secret-99" not in str(caught.value)

    def test_default_prompt_goes_to_stderr(
        self, server: EmulatedProvider, capsys: pytest.CaptureFixture[str]
    ) -> None:
        device_login(CLIENT_ID, CLIENT_SECRET, oauth_url=server.base, sleep=lambda s: None)
        err = capsys.readouterr().err
        assert server.token_answers[0]["user_code"] in err
        assert f"{server.base}/device" in err
        assert CLIENT_SECRET not in err

    def test_broken_device_code_answer(self, server: EmulatedProvider) -> None:
        server.token_script.append(Reply(200, {"user_code": "X"}))
        with pytest.raises(DeviceLoginError, match="device_code"):
            self.run(server)
        server.token_script.append(Reply(500, b"oops"))
        with pytest.raises(DeviceLoginError, match="HTTP 500"):
            self.run(server)

    @pytest.mark.parametrize(("interval", "expected"), [("7", 7), ("soon", 5), (0, 5), (None, 5)])
    def test_odd_intervals(self, interval: Any, expected: int, server: EmulatedProvider) -> None:
        answer = {
            "device_code": "dev-code-1",
            "user_code": "U",
            "verification_url": "https://ya.ru/device",
            "interval": interval,
        }
        server.token_script.append(Reply(200, answer))
        tokens = Reply(200, {"access_token": "t-1", "refresh_token": "r-1", "expires_in": 60})
        _, sleeps, codes = self.run(server, [PENDING, tokens], device_id="box-1")
        assert sleeps == [expected]
        assert codes[0].expires_in == 300
        assert server.token_requests[0].form["device_id"] == "box-1"

    def test_unreachable_and_bad_arguments(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(DeliveryAuthError, match="Could not reach"):
            device_login(CLIENT_ID, CLIENT_SECRET, oauth_url=f"http://127.0.0.1:{port}", timeout=2)
        with pytest.raises(ValueError, match="client_secret"):
            device_login(CLIENT_ID, "")


class TestHostsAndConfiguration:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_other_hosts_are_refused(self, client: str, make_auth: MakeAuth) -> None:
        with pytest.raises(DisallowedHostError) as caught:
            call(client, make_auth(), "GET", "https://courier.example.ru/api/v1/test")
        assert "courier.example.ru" in str(caught.value)
        assert "allowed_hosts" in str(caught.value)

    def test_default_hosts(self) -> None:
        hosts = YandexCourierAuth(YANDEX_TOKEN).allowed_hosts
        assert hosts is not None
        assert {"courier.yandex.ru", "oauth.yandex.com", "127.0.0.0/8"} <= set(hosts)

    def test_from_env(self, server: EmulatedProvider) -> None:
        env = {"YANDEX_COURIER_TOKEN": YANDEX_TOKEN}
        auth = YandexCourierAuth.from_env(env, api_url=server.base)
        assert not auth.refreshable
        auth.verify()
        env.update(
            YANDEX_REFRESH_TOKEN=YANDEX_REFRESH,
            YANDEX_CLIENT_ID=CLIENT_ID,
            YANDEX_CLIENT_SECRET=CLIENT_SECRET,
        )
        server.revoke_all()
        renewing = YandexCourierAuth.from_env(
            env, api_url=server.base, token_url=server.url("/token")
        )
        assert renewing.refreshable
        renewing.verify()
        assert len(server.token_requests) == 1

    def test_from_env_missing(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            YandexCourierAuth.from_env({})
        assert caught.value.missing == ("YANDEX_COURIER_TOKEN",)
        with pytest.raises(ConfigurationError) as caught:
            YandexCourierAuth.from_env(
                {"YANDEX_COURIER_TOKEN": "t", "YANDEX_REFRESH_TOKEN": "r", "YANDEX_CLIENT_ID": ""}
            )
        assert caught.value.missing == ("YANDEX_CLIENT_ID", "YANDEX_CLIENT_SECRET")


@pytest.mark.parametrize("client", CLIENTS)
def test_no_secret_or_token_in_logs_or_reprs(
    client: str, server: EmulatedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with YandexCourierAuth(
        YANDEX_TOKEN,
        refresh_token=YANDEX_REFRESH,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_url=server.url("/token"),
    ) as auth:
        assert call(client, auth, "GET", server.url("/api/v1/test")).status == 200
        server.revoke_all()
        result = call(client, auth, "GET", server.url("/api/v1/test"))
        assert result.status == 200
        assert result.history
        shown = caplog.text + repr(auth) + str(auth) + repr(auth.get_token())
    secrets = server.secrets_seen()
    assert YANDEX_REFRESH in secrets
    assert len(secrets) >= 3  # the client secret and two credentials
    for secret in secrets:
        assert secret not in shown
