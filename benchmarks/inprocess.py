"""In-process stand-ins for the network: canned responses and transports, and fresh
request objects, for requests, httpx and httpx2.

Nothing here leaves the process. The scenarios that time the whole round of an auth
(:mod:`benchmarks.rounds`) and the calls through the real clients
(:mod:`benchmarks.calls`) use them, so that what is timed is the auth and the client,
not a socket. Token requests are the exception: they go to the benchmark's token
server on 127.0.0.1 (see :mod:`benchmarks.server`), the same one for every library.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

#: Where the in-process scenarios send API calls; nothing is listening there.
API_URL = "https://api.example.com/v1/orders"

#: An origin pattern for the many-origins scenario (``origin_url(i)`` matches it).
ORIGINS_PATTERN = "*.example.com"

OK_BODY = b'{"ok":true}'
REJECTED_BODY = b'{"error":"invalid_token"}'
#: A token answer for a token request that an in-process transport receives (Authlib's
#: httpx2 client fetches its token through the client under test).
TOKEN_BODY = json.dumps(
    {"access_token": "canned-token", "token_type": "Bearer", "expires_in": 3600}
).encode()


def origin_url(index: int) -> str:
    """The API URL on the ``index``-th distinct origin."""
    return f"https://h{index}.example.com/v1/x"


def _answer(path: str, status: int) -> tuple[int, bytes]:
    if path.endswith("/token"):
        return 200, TOKEN_BODY
    return status, OK_BODY if status == 200 else REJECTED_BODY


def _header_pairs(status: int, body: bytes) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if status == 401:
        headers.append(("WWW-Authenticate", 'Bearer error="invalid_token"'))
    return headers


# -- requests ------------------------------------------------------------------------


def requests_response(
    status: int, request: requests.PreparedRequest | None, connection: Any = None
) -> requests.Response:
    """A finished ``requests.Response`` as an adapter builds it (body already read)."""
    body = OK_BODY if status == 200 else REJECTED_BODY
    response = requests.Response()
    response.status_code = status
    response.reason = "OK" if status == 200 else "Unauthorized"
    response.headers = CaseInsensitiveDict(_header_pairs(status, body))
    response._content = body
    response._content_consumed = True  # type: ignore[attr-defined]
    response.encoding = "utf-8"
    response.url = (request.url or "") if request is not None else API_URL
    response.request = request  # type: ignore[assignment]
    response.connection = connection
    return response


class CannedAdapter(BaseAdapter):
    """A requests transport adapter that answers every request in-process.

    API calls get ``status`` (200 by default) and a small JSON body; a request to a path
    ending in ``/token`` gets a token. Mount it on ``https://`` of a ``Session``.
    """

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> requests.Response:
        url = request.url or ""
        status, body = _answer(url.split("?", 1)[0], self.status)
        response = requests_response(status, request, self)
        response._content = body
        response.headers["Content-Length"] = str(len(body))
        return response

    def close(self) -> None:
        pass


def prepared(urls: list[str]) -> list[requests.PreparedRequest]:
    """One prepared GET per URL, to copy from (:func:`fresh_prepared`)."""
    return [requests.Request("GET", url).prepare() for url in urls]


def fresh_prepared(
    bases: list[requests.PreparedRequest], count: int, start: int = 0
) -> list[requests.PreparedRequest]:
    """``count`` copies of ``bases``, cycling from ``bases[start]``, each with its own
    hooks (``PreparedRequest.copy()`` shares the hooks dict between copies: a response
    hook appended to one would be seen by all)."""
    fresh = []
    for index in range(start, start + count):
        request = bases[index % len(bases)].copy()
        request.hooks = {"response": []}
        fresh.append(request)
    return fresh


# -- httpx and httpx2 ----------------------------------------------------------------


def module(client: str) -> Any:
    """The HTTP module of a client name: ``httpx`` or ``httpx2`` (sync or async)."""
    if client.startswith("httpx2"):
        import httpx2

        return httpx2
    return httpx


def httpx_response(mod: Any, status: int, request: Any = None) -> Any:
    """A finished response of ``mod`` (httpx or httpx2) with its body read."""
    body = OK_BODY if status == 200 else REJECTED_BODY
    return mod.Response(status, headers=_header_pairs(status, body), content=body, request=request)


def fresh_httpx(mod: Any, urls: list[str], count: int, start: int = 0) -> list[Any]:
    """``count`` GET requests of ``mod`` cycling through ``urls`` from ``urls[start]``."""
    return [mod.Request("GET", urls[index % len(urls)]) for index in range(start, start + count)]


def canned_transport(mod: Any, *, asynchronous: bool = False) -> Any:
    """An in-process transport of ``mod`` (httpx or httpx2): 200 and a small JSON body
    for every API call, a token for a path ending in ``/token``."""

    def answer(request: Any) -> Any:
        status, body = _answer(request.url.path, 200)
        return mod.Response(status, headers=_header_pairs(status, body), content=body)

    if asynchronous:

        class CannedAsyncTransport(mod.AsyncBaseTransport):  # type: ignore[misc]
            async def handle_async_request(self, request: Any) -> Any:
                return answer(request)

        return CannedAsyncTransport()

    class CannedTransport(mod.BaseTransport):  # type: ignore[misc]
        def handle_request(self, request: Any) -> Any:
            return answer(request)

    return CannedTransport()
