"""The auth objects of the in-process scenarios, each behind one small interface.

A :class:`Subject` is one library's auth object for one client (``requests``,
``httpx``, ``httpx-async``, ``httpx2``, ``httpx2-async``), used the way its
documentation shows, with what its client does around the auth when the client is not
there (Authlib's clients check the token's expiry in ``request()``, before the auth
object runs: that check is part of Authlib's request leg here). :data:`ENTRANTS` lists
them; ``make(token_url)`` builds one against the benchmark's token server on 127.0.0.1
(async subjects are built inside the running event loop).

Two floors per client:

- ``floor``: sets one precomputed header and does nothing on the response side (a
  requests auth without a hook; an httpx ``auth_flow`` that yields once and returns).
  The request leg, the whole round with a 200 and the real-client call are quoted as
  ratios to it.
- ``floor + refresh``: the least a refresh-and-resend can do, written by hand: the same
  header, and on a 401 one plain token POST (same HTTP library, kept-alive session to
  the same token server), the new header, one resend. No lock, no host check. The round
  with a 401 is quoted as a ratio to it (the plain floor returns the 401).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx
import requests
from requests.auth import AuthBase

from . import inprocess
from .contenders import (
    EARLY_EXPIRY,
    FLOOR_HEADER,
    DirectHttpxAuth,
    FloorHttpxAuth,
    FloorRequestsAuth,
    HookBoundRequestsAuth,
    _floor_httpx2_auth,
    _reset_global_caches,
)
from .server import CLIENT_ID, CLIENT_SECRET

TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
}


async def _nothing() -> None:
    return None


@dataclass
class Subject:
    """One ready auth object.

    ``auth`` is what the client is given; ``check``/``acheck`` is what the library's
    client runs before it (``None``: nothing). ``client(transport)`` builds the
    library's real client on an in-process transport (a requests adapter, an httpx or
    httpx2 transport) and returns ``(call, close)``; ``call()`` makes one GET of
    :data:`inprocess.API_URL` and returns the response (awaitable for async clients).
    """

    auth: Any
    client: Callable[[Any], tuple[Callable[[], Any], Callable[[], Any]]]
    check: Callable[[], Any] | None = None
    acheck: Callable[[], Awaitable[Any]] | None = None
    close: Callable[[], Any] = lambda: None
    aclose: Callable[[], Awaitable[None]] = _nothing


@dataclass(frozen=True)
class Entrant:
    library: str
    client: str
    make: Callable[[str], Subject]  # (token_url); called inside the loop for async
    role: str = ""  # "floor", "floor + refresh", "info", "bound" or "" (a competitor)
    retries: bool = False  # on a 401: gets a fresh token and resends once

    @property
    def name(self) -> str:
        return f"{self.library} [{self.client}]"


# -- the hand-written refresh floors -------------------------------------------------


class RefreshFloorRequestsAuth(AuthBase):
    """The header; on a 401, one token POST and one resend (``HTTPDigestAuth``'s way)."""

    def __init__(self, token_url: str) -> None:
        self.token_url = token_url
        self.header = FLOOR_HEADER
        self.session = requests.Session()

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.header
        r.hooks["response"].append(self.handle_401)
        return r

    def handle_401(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if r.status_code != 401:
            return r
        answer = self.session.post(self.token_url, data=TOKEN_FORM)
        self.header = f"Bearer {answer.json()['access_token']}"
        r.content  # noqa: B018 - free the connection before resending
        r.close()
        prep = r.request.copy()
        prep.headers["Authorization"] = self.header
        resent: requests.Response = r.connection.send(prep, **kwargs)
        resent.history.append(r)
        resent.request = prep
        return resent


class RefreshFloorHttpxAuth:
    """The header; on a 401, one token POST and one resend (for httpx or httpx2).

    httpx's documented place for an auth that does I/O: ``sync_auth_flow`` and
    ``async_auth_flow`` themselves.
    """

    requires_request_body = False
    requires_response_body = False

    def __init__(self, mod: Any, token_url: str) -> None:
        self.mod = mod
        self.token_url = token_url
        self.header = FLOOR_HEADER
        self.sync_client: Any = None
        self.async_client: Any = None

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        request.headers["Authorization"] = self.header
        response = yield request
        if response.status_code == 401:
            if self.sync_client is None:
                self.sync_client = self.mod.Client()
            answer = self.sync_client.post(self.token_url, data=TOKEN_FORM)
            self.header = f"Bearer {answer.json()['access_token']}"
            request.headers["Authorization"] = self.header
            yield request

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        request.headers["Authorization"] = self.header
        response = yield request
        if response.status_code == 401:
            if self.async_client is None:
                self.async_client = self.mod.AsyncClient()
            answer = await self.async_client.post(self.token_url, data=TOKEN_FORM)
            self.header = f"Bearer {answer.json()['access_token']}"
            request.headers["Authorization"] = self.header
            yield request

    def close(self) -> None:
        if self.sync_client is not None:
            self.sync_client.close()

    async def aclose(self) -> None:
        if self.async_client is not None:
            await self.async_client.aclose()


def _refresh_floor_httpx(mod: Any, token_url: str) -> Any:
    """A :class:`RefreshFloorHttpxAuth` that is an ``Auth`` of ``mod``."""
    kind = type("RefreshFloorAuth", (RefreshFloorHttpxAuth, mod.Auth), {})
    return kind(mod, token_url)


# -- clients on a transport ----------------------------------------------------------


def _requests_client(auth: Any) -> Callable[[Any], tuple[Callable[[], Any], Callable[[], Any]]]:
    def client(adapter: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
        session = requests.Session()
        session.mount("https://", adapter)
        session.auth = auth
        url = inprocess.API_URL
        return (lambda: session.get(url)), session.close

    return client


def _httpx_client(
    mod: Any, auth: Any, asynchronous: bool
) -> Callable[[Any], tuple[Callable[[], Any], Callable[[], Any]]]:
    def client(transport: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
        url = inprocess.API_URL
        if asynchronous:
            aclient = mod.AsyncClient(auth=auth, transport=transport)
            return (lambda: aclient.get(url)), aclient.aclose
        sclient = mod.Client(auth=auth, transport=transport)
        return (lambda: sclient.get(url)), sclient.close

    return client


# -- requests ------------------------------------------------------------------------


def floor_requests(token_url: str) -> Subject:
    auth = FloorRequestsAuth(FLOOR_HEADER)
    return Subject(auth=auth, client=_requests_client(auth))


def hook_bound_requests(token_url: str) -> Subject:
    auth = HookBoundRequestsAuth(FLOOR_HEADER)
    return Subject(auth=auth, client=_requests_client(auth))


def refresh_floor_requests(token_url: str) -> Subject:
    auth = RefreshFloorRequestsAuth(token_url)
    return Subject(auth=auth, client=_requests_client(auth), close=auth.session.close)


def _ours(token_url: str, allowed_hosts: str | None = None) -> Any:
    from delivery_auth import ClientCredentialsAuth

    return ClientCredentialsAuth(token_url, CLIENT_ID, CLIENT_SECRET, allowed_hosts=allowed_hosts)


def ours_requests(token_url: str, allowed_hosts: str | None = None) -> Subject:
    auth = _ours(token_url, allowed_hosts)
    return Subject(auth=auth, client=_requests_client(auth), close=auth.close)


def _authlib_session(token_url: str) -> Any:
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(
        CLIENT_ID,
        CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - not a secret
        token_endpoint=token_url,
        grant_type="client_credentials",
        leeway=EARLY_EXPIRY,
    )


def authlib_requests(token_url: str) -> Subject:
    session = _authlib_session(token_url)
    session.fetch_token(token_url, grant_type="client_credentials")

    def client(adapter: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
        own = _authlib_session(token_url)
        own.token = session.token
        own.mount("https://", adapter)
        url = inprocess.API_URL
        return (lambda: own.get(url)), own.close

    # OAuth2Auth.__call__ runs the session's expiry check itself.
    return Subject(auth=session.token_auth, client=client, close=session.close)


def requests_auth_requests(token_url: str) -> Subject:
    import requests_auth

    _reset_global_caches()
    auth = requests_auth.OAuth2ClientCredentials(
        token_url, CLIENT_ID, CLIENT_SECRET, early_expiry=EARLY_EXPIRY
    )
    return Subject(auth=auth, client=_requests_client(auth), close=auth.session.close)


# -- httpx and httpx2 ----------------------------------------------------------------


def _header_only(auth_of: Callable[[], Any], client: str) -> Callable[[str], Subject]:
    def make(token_url: str) -> Subject:
        auth = auth_of()
        mod = inprocess.module(client)
        return Subject(auth=auth, client=_httpx_client(mod, auth, client.endswith("async")))

    return make


def _refresh_floor(client: str) -> Callable[[str], Subject]:
    def make(token_url: str) -> Subject:
        mod = inprocess.module(client)
        auth = _refresh_floor_httpx(mod, token_url)
        return Subject(
            auth=auth,
            client=_httpx_client(mod, auth, client.endswith("async")),
            close=auth.close,
            aclose=auth.aclose,
        )

    return make


def ours_httpx(client: str) -> Callable[..., Subject]:
    def make(token_url: str, allowed_hosts: str | None = None) -> Subject:
        auth = _ours(token_url, allowed_hosts)
        mod = inprocess.module(client)
        return Subject(
            auth=auth, client=_httpx_client(mod, auth, client.endswith("async")), close=auth.close
        )

    return make


def httpx_auth_httpx(client: str) -> Callable[[str], Subject]:
    def make(token_url: str) -> Subject:
        import httpx_auth

        _reset_global_caches()
        auth = httpx_auth.OAuth2ClientCredentials(
            token_url, CLIENT_ID, CLIENT_SECRET, early_expiry=EARLY_EXPIRY
        )
        return Subject(auth=auth, client=_httpx_client(httpx, auth, client.endswith("async")))

    return make


def _authlib_httpx2_kwargs(token_url: str) -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "token_endpoint_auth_method": "client_secret_post",
        "token_endpoint": token_url,
        "grant_type": "client_credentials",
        "leeway": EARLY_EXPIRY,
    }


def authlib_httpx2(token_url: str) -> Subject:
    from authlib.integrations.httpx_client import OAuth2Client

    owner = OAuth2Client(**_authlib_httpx2_kwargs(token_url))
    owner.fetch_token(token_url, grant_type="client_credentials")

    def client(transport: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
        own = OAuth2Client(**_authlib_httpx2_kwargs(token_url), transport=transport)
        own.token = owner.token
        url = inprocess.API_URL
        return (lambda: own.get(url)), own.close

    return Subject(
        auth=owner.token_auth,
        client=client,
        check=lambda: owner.ensure_active_token(owner.token),
        close=owner.close,
    )


def authlib_httpx2_async(token_url: str) -> Subject:
    """Built inside the running loop; its first token comes in ``acheck``."""
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    owner = AsyncOAuth2Client(**_authlib_httpx2_kwargs(token_url))

    async def acheck() -> None:
        if not owner.token:  # the documented first fetch; later calls only check expiry
            await owner.fetch_token(token_url, grant_type="client_credentials")
        await owner.ensure_active_token(owner.token)

    def client(transport: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
        own = AsyncOAuth2Client(**_authlib_httpx2_kwargs(token_url), transport=transport)
        url = inprocess.API_URL

        async def call() -> Any:
            if not own.token:  # the documented first fetch (the transport answers it)
                await own.fetch_token(token_url, grant_type="client_credentials")
            return await own.get(url)

        return call, own.aclose

    return Subject(auth=owner.token_auth, client=client, acheck=acheck, aclose=owner.aclose)


def _httpx2_available() -> bool:
    try:
        import httpx2  # noqa: F401
    except ImportError:
        return False
    return True


FLOOR = "floor"
REFRESH_FLOOR = "floor + refresh"
INFO = "info"
#: What any auth of that kind costs at least (shown beside the floor, in every table).
BOUND = "bound"


def _entrants() -> list[Entrant]:
    entrants = [
        Entrant("floor", "requests", floor_requests, FLOOR),
        Entrant("header + do-nothing response hook", "requests", hook_bound_requests, BOUND),
        Entrant("floor + refresh", "requests", refresh_floor_requests, REFRESH_FLOOR, True),
        Entrant("delivery_auth", "requests", ours_requests, retries=True),
        Entrant("authlib", "requests", authlib_requests),
        Entrant("requests-auth", "requests", requests_auth_requests),
    ]
    for client in ("httpx", "httpx-async"):
        entrants += [
            Entrant(
                "floor", client, _header_only(lambda: FloorHttpxAuth(FLOOR_HEADER), client), FLOOR
            ),
            Entrant("floor + refresh", client, _refresh_floor(client), REFRESH_FLOOR, True),
            Entrant("delivery_auth", client, ours_httpx(client), retries=True),
            Entrant("httpx-auth", client, httpx_auth_httpx(client)),
        ]
        if client == "httpx":
            entrants.append(
                Entrant(
                    "direct header auth",
                    client,
                    _header_only(lambda: DirectHttpxAuth(FLOOR_HEADER), client),
                    INFO,
                )
            )
    if _httpx2_available():
        for client, authlib in (("httpx2", authlib_httpx2), ("httpx2-async", authlib_httpx2_async)):
            entrants += [
                Entrant(
                    "floor",
                    client,
                    _header_only(lambda: _floor_httpx2_auth(FLOOR_HEADER), client),
                    FLOOR,
                ),
                Entrant("floor + refresh", client, _refresh_floor(client), REFRESH_FLOOR, True),
                Entrant("delivery_auth", client, ours_httpx(client), retries=True),
                Entrant("authlib", client, authlib),
            ]
    return entrants


#: Every subject, grouped by client in this order.
ENTRANTS: list[Entrant] = _entrants()
CLIENTS: tuple[str, ...] = tuple(dict.fromkeys(e.client for e in ENTRANTS))


def of_client(client: str) -> list[Entrant]:
    return [e for e in ENTRANTS if e.client == client]
