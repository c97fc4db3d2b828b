"""Narrow unit tests of the value objects and policies (no I/O)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from delivery_auth import BackoffPolicy, RefreshPolicy, Token
from delivery_auth.errors import DisallowedHostError, InsecureTransportError
from delivery_auth.hosts import (
    ORIGIN_CACHE_LIMIT,
    HostPolicy,
    check_endpoint_url,
    is_loopback,
    origin_of,
)
from delivery_auth.token import MAX_LIFETIME, TokenParseError, jwt_expiry


def jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


class TestTokenParsing:
    @pytest.mark.parametrize(
        ("expires_in", "lifetime"),
        [
            (3600, 3600.0),
            (1800.5, 1800.5),
            ("3600", 3600.0),
            ("90.25", 90.25),
            (10**12, MAX_LIFETIME),
        ],
    )
    def test_expires_in_forms(self, expires_in: object, lifetime: float) -> None:
        token = Token.from_response({"access_token": "abc", "expires_in": expires_in})
        assert token.lifetime == lifetime

    @pytest.mark.parametrize(
        "expires_in", [0, -5, "soon", "", "nan", "inf", True, [], {"s": 1}, float("nan")]
    )
    def test_bad_expires_in_is_an_error(self, expires_in: object) -> None:
        with pytest.raises(TokenParseError, match="expires_in"):
            Token.from_response({"access_token": "abc", "expires_in": expires_in})

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            ([1, 2], "JSON list"),
            ("token", "JSON str"),
            ({}, "access_token is missing"),
            ({"access_token": ""}, "not a non-empty string"),
            ({"access_token": "   "}, "not a non-empty string"),
            ({"access_token": 42}, "not a non-empty string"),
            ({"access_token": "a\r\nX-Evil: 1"}, "control characters"),
            ({"access_token": "abc", "token_type": 7}, "token_type"),
        ],
    )
    def test_unusable_payloads(self, payload: object, message: str) -> None:
        with pytest.raises(TokenParseError, match=message):
            Token.from_response(payload)

    def test_jwt_exp_is_used_without_expires_in(self) -> None:
        now = time.time()
        token = Token.from_response({"access_token": jwt({"exp": now + 600})}, issued_at=now)
        assert token.lifetime == pytest.approx(600)

    def test_expired_jwt_without_expires_in_is_an_error(self) -> None:
        with pytest.raises(TokenParseError, match="in the past"):
            Token.from_response({"access_token": jwt({"exp": time.time() - 5})})

    @pytest.mark.parametrize(
        "access_token",
        [
            "opaque",
            "a.b",
            "a.!!!.c",
            jwt({"exp": "soon"}),
            jwt({"sub": "x"}),
            "a." + "A" * 70000 + ".c",
        ],
    )
    def test_no_expiry_means_kept_until_rejected(self, access_token: str) -> None:
        token = Token.from_response({"access_token": access_token})
        assert token.lifetime is None
        assert jwt_expiry(access_token) is None

    def test_bearer_is_normalised_and_extra_is_kept(self) -> None:
        token = Token.from_response(
            {"access_token": "abc", "token_type": "bearer", "created_at": 5, "scope": "a b"}
        )
        assert token.token_type == "Bearer"
        assert token.extra == {"created_at": 5}
        assert token.scope == "a b"

    def test_repr_and_str_never_show_the_token(self) -> None:
        token = Token.from_response({"access_token": "very-secret-token", "refresh_token": "rt-x"})
        for text in (repr(token), str(token)):
            assert "very-secret-token" not in text
            assert "rt-x" not in text
            assert token.fingerprint in text

    def test_equality_is_by_access_token(self) -> None:
        assert Token("a", obtained_at=1) == Token("a", obtained_at=2)
        assert Token("a") != Token("b")
        assert len({Token("a"), Token("a")}) == 1
        assert Token("a") != "a"


class TestRefreshPolicy:
    def test_defaults(self) -> None:
        schedule = RefreshPolicy().schedule(Token("t", lifetime=3600, obtained_at=1000))
        assert schedule.refresh_at == 1000 + 1800
        assert schedule.usable_until == 1000 + 3600 - 60

    def test_zero_means_zero(self) -> None:
        policy = RefreshPolicy(refresh_margin=0, refresh_ratio=0)
        schedule = policy.schedule(Token("t", lifetime=100, obtained_at=0))
        assert schedule.refresh_at == 0
        assert schedule.usable_until == 100

    def test_margin_is_capped_for_short_lifetimes(self) -> None:
        schedule = RefreshPolicy(refresh_margin=60).schedule(Token("t", lifetime=2, obtained_at=0))
        assert schedule.usable_until == 1.5
        assert schedule.refresh_at == 1.0

    def test_refresh_never_after_last_usable_moment(self) -> None:
        policy = RefreshPolicy(refresh_margin=60, refresh_ratio=1)
        schedule = policy.schedule(Token("t", lifetime=3600, obtained_at=0))
        assert schedule.refresh_at == schedule.usable_until == 3540

    def test_max_age(self) -> None:
        policy = RefreshPolicy(max_age=1800, refresh_ratio=0.9)
        assert policy.schedule(Token("t", lifetime=3600, obtained_at=0)).refresh_at == 1800
        unknown = policy.schedule(Token("t", lifetime=None, obtained_at=0))
        assert (unknown.refresh_at, unknown.usable_until) == (1800, None)

    def test_unknown_lifetime_is_kept(self) -> None:
        schedule = RefreshPolicy().schedule(Token("t", lifetime=None, obtained_at=0))
        assert (schedule.refresh_at, schedule.usable_until) == (None, None)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"refresh_margin": -1},
            {"refresh_margin": float("inf")},
            {"refresh_margin": "60"},
            {"refresh_ratio": 1.5},
            {"refresh_ratio": -0.1},
            {"refresh_ratio": True},
            {"max_age": -3},
        ],
    )
    def test_bad_values_are_rejected_with_their_name(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            RefreshPolicy(**kwargs)  # type: ignore[arg-type]


class TestBackoffPolicy:
    def test_exponential_with_jitter_and_cap(self) -> None:
        policy = BackoffPolicy(base_delay=1, max_delay=3)
        for attempt, ceiling in [(1, 1), (2, 2), (3, 3), (9, 3)]:
            delays = {policy.delay(attempt) for _ in range(50)}
            assert all(ceiling / 2 <= d <= ceiling for d in delays)
            assert len(delays) > 1  # jittered

    def test_retry_after_wins(self) -> None:
        assert BackoffPolicy().delay(1, retry_after=7.0) == 7.0

    @pytest.mark.parametrize(
        "kwargs", [{"attempts": 0}, {"attempts": 1.5}, {"base_delay": -1}, {"max_retry_after": "x"}]
    )
    def test_bad_values(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            BackoffPolicy(**kwargs)  # type: ignore[arg-type]


class TestHosts:
    def test_origin(self) -> None:
        assert origin_of("https://API.Example.com/x?y=1") == "https://api.example.com:443"
        assert origin_of("http://user:pw@127.0.0.1:8080/") == "http://127.0.0.1:8080"
        assert origin_of("http://[::1]:81/a") == "http://[::1]:81"

    @pytest.mark.parametrize("url", ["ftp://x.com/", "/relative", "https://", "https://h:99999/"])
    def test_origin_of_bad_urls(self, url: str) -> None:
        with pytest.raises(ValueError, match="URL|port"):
            origin_of(url)

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("localhost", True),
            ("127.0.0.1", True),
            ("127.9.9.9", True),
            ("::1", True),
            ("[::1]", True),
            ("10.0.0.1", False),
            ("example.com", False),
            ("localhost.evil.com", False),
        ],
    )
    def test_is_loopback(self, host: str, loopback: bool) -> None:
        assert is_loopback(host) is loopback

    def test_patterns(self) -> None:
        policy = HostPolicy(["api.example.com", "*.bringg.com", "127.0.0.0/8", "::1"])
        assert policy.admits("API.example.com.")
        assert policy.admits("eu2-admin-api.bringg.com")
        assert not policy.admits("bringg.com")
        assert not policy.admits("evilbringg.com")
        assert not policy.admits("example.com")
        assert policy.admits("127.0.0.5")
        assert policy.admits("[::1]")
        assert not policy.admits("10.1.1.1")
        assert HostPolicy(None).admits("anything.example")
        assert HostPolicy("one.example").patterns == ("one.example",)

    @pytest.mark.parametrize("bad", ["", "  ", "https://x.com", "a*b.com", "x.com:443", 5])
    def test_bad_patterns(self, bad: object) -> None:
        with pytest.raises(ValueError, match="allowed_hosts"):
            HostPolicy([bad])  # type: ignore[list-item]

    def test_origin_for_checks_transport_then_hosts(self) -> None:
        policy = HostPolicy(["api.example.com", "localhost"])
        assert policy.origin_for("https://api.example.com/v1") == "https://api.example.com:443"
        # second call takes the cached path and must give the same answer
        assert policy.origin_for("https://api.example.com/v2?x") == "https://api.example.com:443"
        assert policy.origin_for("http://localhost:81/x") == "http://localhost:81"
        with pytest.raises(InsecureTransportError, match="plain http"):
            policy.origin_for("http://api.example.com/v1")
        with pytest.raises(DisallowedHostError, match=r"'evil\.example'.*allowed_hosts"):
            policy.origin_for("https://evil.example/v1")

    def test_origin_cache_is_bounded(self) -> None:
        policy = HostPolicy(None)
        for port in range(1, ORIGIN_CACHE_LIMIT + 200):
            policy.origin_for(f"https://h.example:{port}/")
        assert len(policy._origins) == ORIGIN_CACHE_LIMIT

    def test_endpoint_url_check(self) -> None:
        assert check_endpoint_url("https://a.example/t", "token_url") == "https://a.example/t"
        assert check_endpoint_url("http://127.0.0.1:9/t", "token_url")
        with pytest.raises(InsecureTransportError, match="token_url.*plain http"):
            check_endpoint_url("http://auth.example.com/token", "token_url")
        with pytest.raises(ValueError, match="token_url must be"):
            check_endpoint_url(None, "token_url")  # type: ignore[arg-type]


class TestHostFastPaths:
    """The cached paths of HostPolicy decide exactly like the full check."""

    @pytest.mark.parametrize(
        "url",
        [
            "https://a.example.evil/x",
            "https://a.example:444/x",
            "https://a.example@evil.example/x",
            "https://a.example\\@evil.example/x",
            "http://a.example/x",
        ],
    )
    def test_lookalikes_of_an_admitted_origin_get_the_full_check(self, url: str) -> None:
        policy = HostPolicy(["a.example"])
        assert policy.origin_for("https://a.example/ok") == "https://a.example:443"
        try:
            origin = policy.origin_for(url)
        except (DisallowedHostError, InsecureTransportError, ValueError):
            return
        assert origin != "https://a.example:443" or url.startswith("https://a.example/")

    def test_alternating_origins(self) -> None:
        policy = HostPolicy(None)
        for _ in range(3):
            assert policy.origin_for("https://one.example/a") == "https://one.example:443"
            assert policy.origin_for("https://two.example/b") == "https://two.example:443"
            assert policy.origin_for("https://one.example") == "https://one.example:443"

    @pytest.mark.parametrize("module", ["httpx", "httpx2"])
    def test_origin_for_url_with_parsed_urls(self, module: str) -> None:
        import importlib

        url_type = importlib.import_module(module).URL
        policy = HostPolicy(["api.example.com"])
        for _ in range(2):  # miss, then the cached path
            assert policy.origin_for_url(url_type("https://api.example.com/v1")) == (
                "https://api.example.com:443"
            )
        with pytest.raises(DisallowedHostError):
            policy.origin_for_url(url_type("https://evil.example/v1"))
        with pytest.raises(DisallowedHostError):  # still refused the second time
            policy.origin_for_url(url_type("https://evil.example/v1"))
        with pytest.raises(InsecureTransportError):
            policy.origin_for_url(url_type("http://api.example.com/v1"))

    def test_origin_for_url_with_other_objects(self) -> None:
        class Plain:
            def __str__(self) -> str:
                return "https://api.example.com/v1"

        assert HostPolicy(None).origin_for_url(Plain()) == "https://api.example.com:443"


def test_requests_hook_without_a_response_list() -> None:
    import requests

    from delivery_auth import ClientCredentialsAuth, MemoryTokenCache, Token
    from delivery_auth.cache import cache_key

    cache = MemoryTokenCache()
    url = "https://auth.example.com/token"
    cache.set(cache_key(url, "id", "secret", None, {}), Token("cached", lifetime=3600))
    auth = ClientCredentialsAuth(url, "id", "secret", cache=cache)
    for _ in range(2):  # the full path, then the cached path
        prepared = requests.Request("GET", "https://api.example.com/x").prepare()
        prepared.hooks = {}  # as a hand-built PreparedRequest might have it
        auth(prepared)
        assert len(prepared.hooks["response"]) == 1
        assert prepared.headers["Authorization"] == "Bearer cached"
    auth.close()
