"""Endpoint URLs and ``allowed_hosts``: no password from a URL ever shows, Unicode hosts match.

- A URL with user info (``https://user:pw@host/...``) as ``token_url``, ``api_url`` or
  ``oauth_url`` is refused at construction, and the refusal never shows the password.
- Malformed URLs are reported without their user info.
- ``allowed_hosts`` entries in Unicode (``bücher.example``) match the IDNA form that
  requests, httpx and httpx2 put on the wire (``xn--bcher-kva.example``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import httpx2
import pytest
import requests
from conftest import FAST_BACKOFF
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer

from delivery_auth import (
    BringgAuth,
    ClientCredentialsAuth,
    ConfigurationError,
    DeliveryTrackerAuth,
    DHLeCommerceAuth,
    DisallowedHostError,
    MemoryTokenCache,
    Token,
    YandexCourierAuth,
)
from delivery_auth.cache import cache_key
from delivery_auth.hosts import HostPolicy, check_endpoint_url, origin_of
from delivery_auth.yandex import authorize_url, device_login

PASSWORD = "pw-Hunter2-in-url"

# -- D.17: user info in endpoint URLs ----------------------------------------------------------


def test_a_password_in_token_url_is_refused_and_never_shown(
    server: LoopbackServer, debug_log: pytest.LogCaptureFixture
) -> None:
    url = server.token_url.replace("http://", f"http://alice:{PASSWORD}@")

    def use() -> None:
        auth = ClientCredentialsAuth(url, CLIENT_ID, CLIENT_SECRET, backoff=FAST_BACKOFF)
        # Without the refusal the password travels on: into repr, logs and errors.
        texts = [repr(auth), str(auth.get_token())]
        auth.close()
        raise AssertionError(f"accepted a token_url with a password: {texts}")

    with pytest.raises(ConfigurationError) as info:
        use()
    error = info.value
    message = str(error)
    assert "token_url" in message
    assert "client_id" in message  # what to do instead
    assert "client_secret" in message
    texts = [message, repr(error), *(r.getMessage() for r in debug_log.records)]
    for text in texts:
        assert PASSWORD not in text
        assert "alice" not in text
        assert CLIENT_SECRET not in text
    assert server.state.token_requests == []


ENDPOINTS: dict[str, Callable[[str], Any]] = {
    "ClientCredentialsAuth": lambda url: ClientCredentialsAuth(url, "id", "secret"),
    "BringgAuth": lambda url: BringgAuth("id", "secret", token_url=url),
    "DHLeCommerceAuth": lambda url: DHLeCommerceAuth("id", "secret", token_url=url),
    "DeliveryTrackerAuth": lambda url: DeliveryTrackerAuth(
        "id", "secret", method="oauth2", token_url=url
    ),
    "YandexCourierAuth.api_url": lambda url: YandexCourierAuth("token", api_url=url),
    "YandexCourierAuth.token_url": lambda url: YandexCourierAuth(
        "token", refresh_token="r", client_id="id", client_secret="secret", token_url=url
    ),
    "authorize_url": lambda url: authorize_url("id", oauth_url=url),
    "device_login": lambda url: device_login("id", "secret", oauth_url=url),
}


@pytest.mark.parametrize("build", ENDPOINTS.values(), ids=list(ENDPOINTS))
@pytest.mark.parametrize(
    "url",
    [
        # Loopback and a closed port: nothing leaves the machine even before the fix.
        f"https://alice:{PASSWORD}@127.0.0.1:9/token",
        f"https://{PASSWORD}@127.0.0.1:9/token",  # a token as the user name
        f"http://alice:{PASSWORD}@127.0.0.1:9/token",
    ],
)
def test_every_endpoint_url_refuses_user_info(build: Callable[[str], Any], url: str) -> None:
    def use() -> None:
        made = build(url)
        if hasattr(made, "close"):
            made.close()

    with pytest.raises(ConfigurationError, match="user name or password") as info:
        use()
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)


@pytest.mark.parametrize(
    "url",
    [
        # The password holds '/', '?' or '#': the URL parser then splits inside it.
        f"https://alice:{PASSWORD}/x@auth.example.com/token",
        f"https://alice:{PASSWORD}?x@auth.example.com/token",
        f"https://alice:{PASSWORD}#x@auth.example.com/token",
        f"https://alice:{PASSWORD}\u2100@auth.example.com/token",  # NFKC check of netloc
    ],
)
def test_malformed_urls_are_reported_without_user_info(url: str) -> None:
    for check in (
        lambda: check_endpoint_url(url, "token_url"),
        lambda: origin_of(url),
        lambda: HostPolicy(None).origin_for(url),
    ):
        with pytest.raises(ValueError, match=r"'https://\*\*\*@auth\.example\.com/token'") as info:
            check()
        assert PASSWORD not in str(info.value), str(info.value)
        assert PASSWORD[:6] not in str(info.value), str(info.value)


# -- D.18: internationalised host names --------------------------------------------------------

UNICODE_URL = "https://bücher.example/v1/orders"
IDNA_HOST = "xn--bcher-kva.example"


def _prepared_urls(url: str) -> dict[str, object]:
    """``url`` as each client prepares it for sending."""
    return {
        "requests": requests.Request("GET", url).prepare().url,
        "httpx": httpx.Request("GET", url).url,
        "httpx2": httpx2.Request("GET", url).url,
    }


@pytest.mark.parametrize("client", ["requests", "httpx", "httpx2"])
@pytest.mark.parametrize(
    ("pattern", "url", "host"),
    [
        ("bücher.example", UNICODE_URL, IDNA_HOST),
        ("BÜCHER.example.", UNICODE_URL, IDNA_HOST),
        ("*.bücher.example", "https://shop.bücher.example/x", f"shop.{IDNA_HOST}"),
        # IDNA 2008 (what the clients use) keeps 'ß'; IDNA 2003 would have made it 'ss'.
        ("straße.example", "https://straße.example/x", "xn--strae-oqa.example"),
    ],
)
def test_unicode_allowed_hosts_match_what_the_clients_send(
    client: str, pattern: str, url: str, host: str
) -> None:
    prepared = _prepared_urls(url)[client]
    assert host in str(prepared)  # the client sends the IDNA form
    policy = HostPolicy([pattern])
    expected = f"https://{host}:443"
    if client == "requests":
        assert isinstance(prepared, str)
        assert policy.admit(prepared)[1] == expected
        assert policy.admit(prepared)[1] == expected  # the cached path agrees
    else:
        assert policy.origin_for_url(prepared) == expected
        assert policy.origin_for_url(prepared) == expected
    assert policy.admits(host)
    for lookalike in ("https://bucher.example/", f"https://{host}.evil/", "https://example/"):
        with pytest.raises(DisallowedHostError):
            policy.origin_for(requests.Request("GET", lookalike).prepare().url or "")


def test_a_unicode_url_string_has_the_idna_origin() -> None:
    expected = f"https://{IDNA_HOST}:443"
    assert origin_of(UNICODE_URL) == expected
    assert HostPolicy(["bücher.example"]).origin_for(UNICODE_URL) == expected
    assert HostPolicy([IDNA_HOST]).origin_for(UNICODE_URL) == expected  # ASCII pattern too


def test_the_refusal_names_the_host_in_both_forms() -> None:
    policy = HostPolicy(["api.example.com"])
    with pytest.raises(DisallowedHostError) as info:
        policy.origin_for_url(httpx.Request("GET", UNICODE_URL).url)
    assert IDNA_HOST in str(info.value)
    assert "bücher.example" in str(info.value)


@pytest.mark.parametrize("bad", ["☃.example", "-bücher.example", "bü cher.example", "*.☃.example"])
def test_an_invalid_international_pattern_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="allowed_hosts") as info:
        HostPolicy([bad])
    assert "IDNA" in str(info.value)


def _cached_auth() -> ClientCredentialsAuth:
    """An auth object with a cached token, so no token endpoint is needed."""
    cache = MemoryTokenCache()
    token_url = "https://auth.example.com/token"
    cache.set(cache_key(token_url, "id", "secret", None, {}), Token("cached", lifetime=3600))
    return ClientCredentialsAuth(
        token_url, "id", "secret", cache=cache, allowed_hosts=["bücher.example"]
    )


@pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async", "httpx2"])
def test_a_real_client_sends_the_token_to_a_unicode_allowed_host(client: str) -> None:
    """Nothing can listen on bücher.example, so each client gets a transport that records
    the request it would have sent and answers 200."""
    seen: list[tuple[str, str | None]] = []
    with _cached_auth() as auth:
        if client == "requests":

            class Recorder(requests.adapters.BaseAdapter):
                def send(self, request: requests.PreparedRequest, **kwargs: Any) -> Any:
                    seen.append((request.url or "", request.headers.get("Authorization")))
                    response = requests.Response()
                    response.status_code, response.request = 200, request
                    return response

                def close(self) -> None:
                    pass

            with requests.Session() as session:
                session.mount("https://", Recorder())
                assert session.get(UNICODE_URL, auth=auth).status_code == 200
        elif client == "httpx2":

            def record2(request: httpx2.Request) -> httpx2.Response:
                seen.append((str(request.url), request.headers.get("Authorization")))
                return httpx2.Response(200)

            with httpx2.Client(auth=auth, transport=httpx2.MockTransport(record2)) as c2:
                assert c2.get(UNICODE_URL).status_code == 200
        else:

            def record(request: httpx.Request) -> httpx.Response:
                seen.append((str(request.url), request.headers.get("Authorization")))
                return httpx.Response(200)

            if client == "httpx":
                with httpx.Client(auth=auth, transport=httpx.MockTransport(record)) as c:
                    assert c.get(UNICODE_URL).status_code == 200
            else:
                import asyncio

                async def go() -> None:
                    transport = httpx.MockTransport(record)
                    async with httpx.AsyncClient(auth=auth, transport=transport) as c:
                        assert (await c.get(UNICODE_URL)).status_code == 200

                asyncio.run(go())
    assert seen == [(f"https://{IDNA_HOST}/v1/orders", "Bearer cached")]
