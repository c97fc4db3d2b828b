"""What a resend carries: the same body bytes (or no resend at all), the rejection's cookies,
and the rejected response in ``history``. Real clients against real loopback servers; the
server records the bytes of every request it received."""

from __future__ import annotations

import asyncio
import gc
import io
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiofiles
import anyio
import httpx
import httpx2
import pytest
import requests
import trio
from conftest import CLIENTS, call
from loopback import LoopbackServer, Reply

from delivery_auth import ClientCredentialsAuth
from delivery_auth.replay import SeekPoints, merge_cookie_headers, rewound, seek_point

MakeAuth = Callable[..., ClientCredentialsAuth]
UNAUTHORIZED = Reply(401, {"error": "invalid_token"})
# Lines, so that async files (iterated line by line by httpx) send it in many chunks.
PAYLOAD = b"".join(b"line %04d of the shipment manifest\n" % i for i in range(2000))
# Smaller for async files: they are read line by line, each line a trip to a worker thread.
ASYNC_PAYLOAD = PAYLOAD[: PAYLOAD.index(b"line 0200")]
START = 15  # the caller consumed a prefix: a resend must start where the first send did
CANNOT_RESEND = "cannot be sent twice"


@pytest.fixture
def caplog_auth(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="delivery_auth")
    return caplog


def bodies(server: LoopbackServer) -> list[bytes]:
    return [seen.body for seen in server.state.api_requests]


def run(main: Callable[[], Awaitable[Any]], backend: str) -> Any:
    if backend == "trio":
        return trio.run(main)
    return asyncio.run(main())  # type: ignore[arg-type]


def assert_not_resent(
    server: LoopbackServer, status: int, history: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """No resend: the 401 comes back as it is, with the documented warning."""
    assert (status, history) == (401, [])
    assert len(server.state.api_requests) == 1
    assert CANNOT_RESEND in caplog.text


class SeekRaises(io.BytesIO):
    """``tell()`` works, ``seek()`` raises: a pipe or socket wrapper."""

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("seek")

    def seekable(self) -> bool:
        return False


class TellRaises(io.BytesIO):
    """``tell()`` raises: where the first send started is unknown."""

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


class ReadOnly:
    """A file-like object with ``read()`` only (a decompressor, an HTTP download...)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


class AsyncSeekRaises:
    """An async file whose ``tell()`` works and whose ``seek()`` raises."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    async def tell(self) -> int:
        return self._data.tell()

    async def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("seek")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for line in self._data:
            yield line


# -- B.5: async files (coroutine seek/tell) ---------------------------------------------


@asynccontextmanager
async def open_async(opener: str, path: Path) -> AsyncIterator[Any]:
    if opener == "aiofiles":
        async with aiofiles.open(path, "rb") as file:
            yield file
    else:
        module: Any = anyio if opener == "anyio" else trio
        async with await module.open_file(path, "rb") as file:
            yield file


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
@pytest.mark.parametrize(
    ("opener", "backend"),
    [("anyio", "asyncio"), ("anyio", "trio"), ("trio", "trio"), ("aiofiles", "asyncio")],
)
def test_async_file_is_resent_from_where_it_started(
    server: LoopbackServer,
    make_auth: MakeAuth,
    tmp_path: Path,
    module: Any,
    opener: str,
    backend: str,
) -> None:
    path = tmp_path / "manifest.txt"
    path.write_bytes(ASYNC_PAYLOAD)
    auth = make_auth()
    server.state.api_script.append(UNAUTHORIZED)

    async def main() -> tuple[int, list[int]]:
        async with open_async(opener, path) as file, module.AsyncClient(auth=auth) as client:
            await file.seek(START)
            response = await client.put(server.url(), content=file)
            return response.status_code, [h.status_code for h in response.history]

    assert run(main, backend) == (200, [401])
    assert [len(b) for b in bodies(server)] == [len(ASYNC_PAYLOAD) - START] * 2
    assert bodies(server) == [ASYNC_PAYLOAD[START:]] * 2


class AsyncTellRaises(AsyncSeekRaises):
    async def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


@pytest.mark.parametrize("stream", [AsyncSeekRaises, AsyncTellRaises])
@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_file_that_cannot_seek_is_not_resent(
    server: LoopbackServer,
    make_auth: MakeAuth,
    caplog_auth: pytest.LogCaptureFixture,
    backend: str,
    stream: type[AsyncSeekRaises],
) -> None:
    auth = make_auth()
    server.state.api_script.append(UNAUTHORIZED)

    async def main() -> tuple[int, list[int]]:
        async with httpx.AsyncClient(auth=auth) as client:
            response = await client.put(server.url(), content=stream(PAYLOAD))
            return response.status_code, [h.status_code for h in response.history]

    assert_not_resent(server, *run(main, backend), caplog_auth)
    assert bodies(server) == [PAYLOAD]


def test_sync_flow_never_resends_an_async_file(
    server: LoopbackServer,
    make_auth: MakeAuth,
    tmp_path: Path,
    caplog_auth: pytest.LogCaptureFixture,
) -> None:
    """No sync client sends an async file, but the sync flow must not pretend to rewind one
    (calling its coroutine ``seek`` from sync code rewinds nothing)."""
    path = tmp_path / "manifest.txt"
    path.write_bytes(PAYLOAD)
    auth = make_auth()

    async def open_file() -> Any:
        return await anyio.open_file(path, "rb")

    file = asyncio.run(open_file())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        request = httpx.Request("PUT", server.url(), content=file)
        flow = auth.sync_auth_flow(request)
        sent = next(flow)
        rejected = httpx.Response(401, request=sent)
        with pytest.raises(StopIteration):
            flow.send(rejected)
        del flow
        gc.collect()
    assert CANNOT_RESEND in caplog_auth.text
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    file.wrapped.close()


# -- B.6: multipart file fields ---------------------------------------------------------

HTTPX_CLIENTS = ["httpx", "httpx-async", "httpx2"]


def post_multipart(client: str, auth: ClientCredentialsAuth, url: str, files: Any) -> Any:
    data = {"order": "42"}
    if client == "httpx-async":

        async def main() -> Any:
            async with httpx.AsyncClient(auth=auth) as c:
                return await c.post(url, data=data, files=files)

        return asyncio.run(main())
    module: Any = httpx2 if client == "httpx2" else httpx
    with module.Client(auth=auth) as c:
        return c.post(url, data=data, files=files)


@pytest.mark.parametrize("stream", [ReadOnly, SeekRaises], ids=["read-only", "seek-raises"])
@pytest.mark.parametrize("client", HTTPX_CLIENTS)
def test_multipart_with_a_file_field_that_cannot_be_rewound_is_not_resent(
    server: LoopbackServer,
    make_auth: MakeAuth,
    caplog_auth: pytest.LogCaptureFixture,
    client: str,
    stream: type,
) -> None:
    """A field with read() only, or whose seek() raises: httpx would resend it empty."""
    server.state.api_script.append(UNAUTHORIZED)
    files = {"label": ("label.pdf", stream(PAYLOAD), "application/pdf")}
    response = post_multipart(client, make_auth(), server.url(), files)
    statuses = [h.status_code for h in response.history]
    assert_not_resent(server, response.status_code, statuses, caplog_auth)
    assert PAYLOAD in bodies(server)[0]


@pytest.mark.parametrize("client", HTTPX_CLIENTS)
def test_multipart_with_seekable_fields_is_resent_byte_for_byte(
    server: LoopbackServer, make_auth: MakeAuth, client: str
) -> None:
    """httpx sends every seekable file field from offset 0, on the first send and on the
    resend alike (even one the caller had read into): the two sends are identical."""
    server.state.api_script.append(UNAUTHORIZED)
    moved = io.BytesIO(PAYLOAD)
    moved.seek(START)
    files = [
        ("label", ("label.pdf", moved, "application/pdf")),
        ("note", ("note.txt", b"fragile", "text/plain")),
    ]
    response = post_multipart(client, make_auth(), server.url(), files)
    assert (response.status_code, [h.status_code for h in response.history]) == (200, [401])
    first, second = bodies(server)
    assert first == second
    assert PAYLOAD in first
    assert b"fragile" in first


# -- B.7: tell() works, seek() raises ---------------------------------------------------


@pytest.mark.parametrize("stream", [SeekRaises, TellRaises])
@pytest.mark.parametrize("client", ["requests", "httpx", "httpx2"])  # async: see above
def test_stream_that_cannot_be_rewound_is_not_resent(
    server: LoopbackServer,
    make_auth: MakeAuth,
    caplog_auth: pytest.LogCaptureFixture,
    client: str,
    stream: type[io.BytesIO],
) -> None:
    server.state.api_script.append(UNAUTHORIZED)
    result = call(client, make_auth(), "PUT", server.url(), body=stream(PAYLOAD))
    assert_not_resent(server, result.status, result.history, caplog_auth)
    assert bodies(server) == [PAYLOAD]


def test_next_call_after_an_unrewindable_body_gets_a_fresh_token(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    """The rejected token is dropped even when the body could not be sent again."""
    auth = make_auth()
    server.state.api_script.append(UNAUTHORIZED)
    assert call("requests", auth, "PUT", server.url(), body=SeekRaises(PAYLOAD)).status == 401
    assert call("httpx", auth, "PUT", server.url(), body=b"next").status == 200
    assert len(server.state.token_requests) == 2


# -- B.8: requests with bytearray and memoryview bodies ---------------------------------


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_requests_in_memory_buffers_are_resent(
    server: LoopbackServer,
    make_auth: MakeAuth,
    caplog_auth: pytest.LogCaptureFixture,
    kind: Callable[[bytes], Any],
) -> None:
    server.state.api_script.append(UNAUTHORIZED)
    response = requests.put(server.url(), data=kind(PAYLOAD), auth=make_auth(), timeout=10)
    assert (response.status_code, [h.status_code for h in response.history]) == (200, [401])
    assert bodies(server) == [PAYLOAD] * 2
    assert CANNOT_RESEND not in caplog_auth.text


# -- C.11: cookies set by the rejection -------------------------------------------------

SETS_ROUTE = Reply(401, {"error": "invalid_token"}, {"Set-Cookie": "route=blue; Path=/"})


def cookie_pairs(header: str | None) -> set[str]:
    return {part.strip() for part in (header or "").split(";") if part.strip()}


def send_with_cookies(client: str, auth: ClientCredentialsAuth, url: str) -> int:
    """One GET with a client whose jar already holds ``session=abc`` and ``route=red``."""
    jar = {"session": "abc", "route": "red"}
    if client == "requests":
        with requests.Session() as session:
            session.cookies.update(jar)
            return session.get(url, auth=auth, timeout=10).status_code
    if client == "httpx-async":

        async def main() -> int:
            async with httpx.AsyncClient(auth=auth, cookies=jar) as c:
                return (await c.get(url)).status_code

        return asyncio.run(main())
    module: Any = httpx2 if client == "httpx2" else httpx
    with module.Client(auth=auth, cookies=jar) as c:
        return int(c.get(url).status_code)


@pytest.mark.parametrize("client", CLIENTS)
def test_resend_carries_the_cookies_the_401_set(
    server: LoopbackServer, make_auth: MakeAuth, client: str
) -> None:
    server.state.api_script.append(SETS_ROUTE)
    assert call(client, make_auth(), "GET", server.url()).status == 200
    first, resent = server.state.api_requests
    assert "Cookie" not in first.headers
    assert resent.headers.get("Cookie") == "route=blue"


@pytest.mark.parametrize("client", CLIENTS)
def test_resend_merges_the_401s_cookies_with_the_requests_own(
    server: LoopbackServer, make_auth: MakeAuth, client: str
) -> None:
    server.state.api_script.append(SETS_ROUTE)
    assert send_with_cookies(client, make_auth(), server.url()) == 200
    first, resent = server.state.api_requests
    assert cookie_pairs(first.headers.get("Cookie")) == {"session=abc", "route=red"}
    assert cookie_pairs(resent.headers.get("Cookie")) == {"session=abc", "route=blue"}


# -- C.12: the rejected response stays in history ---------------------------------------


def test_requests_401_after_a_same_origin_redirect_stays_in_history(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    moved = server.url("/api/moved")
    server.state.api_script.extend([Reply(302, b"", {"Location": moved}), UNAUTHORIZED])
    response = requests.get(server.url("/api/start"), auth=make_auth(), timeout=10)
    assert response.status_code == 200
    assert [h.status_code for h in response.history] == [302, 401]
    assert [h.url for h in response.history] == [server.url("/api/start"), moved]
    assert [s.path for s in server.state.api_requests] == [
        "/api/start",
        "/api/moved",
        "/api/moved",
    ]


# -- the pieces, without a client -------------------------------------------------------


def test_merge_cookie_headers() -> None:
    assert merge_cookie_headers(None, None) is None
    assert merge_cookie_headers("a=1; route=red", None) == "a=1; route=red"
    assert merge_cookie_headers(None, "route=blue") == "route=blue"
    assert merge_cookie_headers("a=1; route=red; flag", "route=blue; b=x=y") == (
        "a=1; route=blue; flag; b=x=y"
    )


def test_sync_rewind_of_a_coroutine_seek_rewinds_nothing_and_leaves_no_coroutine() -> None:
    class SyncTellAsyncSeek:
        def tell(self) -> int:
            return 0

        async def seek(self, offset: int) -> int:
            return offset

    rewind = seek_point(SyncTellAsyncSeek())
    assert isinstance(rewind, SeekPoints)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rewound(rewind) is False
        gc.collect()
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("module", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_httpx_byte_stream_given_as_stream_is_resent_byte_for_byte(
    server: LoopbackServer, make_auth: MakeAuth, module: Any
) -> None:
    """``stream=ByteStream(...)`` leaves ``request.content`` unread: still in memory, still
    resent whole (the in-memory shortcut of httpx_rewind must not miss it)."""
    server.state.api_script.append(UNAUTHORIZED)
    request = module.Request(
        "PUT",
        server.url(),
        stream=module.ByteStream(PAYLOAD),
        headers={  # a Request given a stream= gets neither header by itself
            "Host": f"127.0.0.1:{server.server_address[1]}",
            "Content-Length": str(len(PAYLOAD)),
        },
    )
    with pytest.raises(module.RequestNotRead):
        request.content  # the case at hand: not read
    with module.Client(auth=make_auth(), timeout=10) as client:
        response = client.send(request)
    assert (response.status_code, [h.status_code for h in response.history]) == (200, [401])
    assert bodies(server) == [PAYLOAD] * 2
