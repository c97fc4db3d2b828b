"""Reading a response body for the failure detector: at most ``limit`` bytes, and never a
byte taken from the user.

The detector judges a body only when the whole body fits in its limit
(:func:`delivery_auth.flow.body_limit`); ``None`` means "not read". The user gets every
byte either way:

- **httpx and httpx2**: a declared ``Content-Length`` over the limit is not touched.
  Otherwise the raw stream is read until it ends or passes the limit, and what was read
  is put back in front of what is left (the response's ``stream`` is wrapped), so the
  response is handed back unconsumed: ``client.stream(...)`` users stream it (raw or
  decoded) as if nobody had looked, and other users get it read by the client as usual.
  A content-encoded body is decoded in small steps, stopping past the limit.
- **requests**: there is no way to put bytes back in front of ``r.raw``, which a
  ``stream=True`` user may read directly. Without ``stream=True``, requests reads the
  whole body right after the hooks anyway, so it is read here through ``r.content``
  (unless its ``Content-Length`` is over the limit) and judged when it fits. With
  ``stream=True`` only a body with a declared length within the limit and no
  ``Content-Encoding`` is read (into ``r.content``, which ``iter_content`` then serves);
  any other is left alone and not judged.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import requests

from .flow import FailureDetector, body_limit, declared_length

try:  # a stream put back on an httpx2 response must be an httpx2 stream
    from httpx2 import AsyncByteStream as _Httpx2AsyncByteStream
    from httpx2 import SyncByteStream as _Httpx2SyncByteStream
except ImportError:  # pragma: no cover - depends on the environment

    class _Httpx2SyncByteStream:  # type: ignore[no-redef]
        """Stands in for ``httpx2.SyncByteStream`` when httpx2 is not installed."""

    class _Httpx2AsyncByteStream:  # type: ignore[no-redef]
        """Stands in for ``httpx2.AsyncByteStream`` when httpx2 is not installed."""


__all__ = ["aread_httpx_body", "read_httpx_body", "read_requests_body"]

#: Raw bytes decoded at a time when a compressed body is decoded for the detector: the
#: decoded size is checked after each step, so a small body that inflates enormously
#: is abandoned after about ``limit`` bytes plus one step's output (gzip: 256 KiB).
_DECODE_STEP = 256


def read_httpx_body(response: Any, detector: FailureDetector) -> bytes | None:
    """The decoded body of an httpx or httpx2 ``response`` if it has at most
    ``body_limit(detector)`` bytes, else ``None``; the response is left unconsumed."""
    limit = body_limit(detector)
    if _declared_over(response.headers, limit):
        return None
    if response.is_stream_consumed or response.is_closed:
        return _already_read(response, limit)
    original = response.stream
    head: list[bytes] = []
    size = 0
    rest = iter(original)
    for chunk in rest:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            response.stream = _SyncReplay(head, rest, original)
            return None
    response.stream = _SyncReplay(head, None, original)
    return _decoded(response, b"".join(head), limit)


async def aread_httpx_body(response: Any, detector: FailureDetector) -> bytes | None:
    """:func:`read_httpx_body` for ``AsyncClient`` responses."""
    limit = body_limit(detector)
    if _declared_over(response.headers, limit):
        return None
    if response.is_stream_consumed or response.is_closed:
        return _already_read(response, limit)
    original = response.stream
    if not hasattr(original, "__aiter__"):  # not an async stream: httpx would refuse too
        return None
    head: list[bytes] = []
    size = 0
    rest = original.__aiter__()
    async for chunk in rest:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            response.stream = _AsyncReplay(head, rest, original)
            return None
    response.stream = _AsyncReplay(head, None, original)
    return _decoded(response, b"".join(head), limit)


def read_requests_body(
    r: requests.Response, detector: FailureDetector, streaming: bool
) -> bytes | None:
    """The decoded body of a requests response if it has at most ``body_limit(detector)``
    bytes, else ``None`` (see the module docstring for what ``streaming`` changes)."""
    limit = body_limit(detector)
    length = declared_length(r.headers.get("Content-Length"))
    if length is not None and length > limit:
        return None
    if streaming and (length is None or _encoded(r.headers.get("Content-Encoding"))):
        return None
    content = r.content
    return content if len(content) <= limit else None


def _declared_over(headers: Any, limit: int) -> bool:
    length = declared_length(headers.get("content-length"))
    return length is not None and length > limit


def _encoded(content_encoding: str | None) -> bool:
    return content_encoding is not None and content_encoding.strip().lower() not in (
        "",
        "identity",
    )


def _already_read(response: Any, limit: int) -> bytes | None:
    """A response someone read before the flow saw it (a transport that returns bodies
    in memory): its content, if there is any and it fits."""
    try:
        content: bytes = response.content
    except Exception:  # ResponseNotRead (httpx or httpx2): closed unread, nothing to judge
        return None
    return content if len(content) <= limit else None


def _decoded(response: Any, raw: bytes, limit: int) -> bytes | None:
    """``raw`` decoded as the response's ``Content-Encoding`` says, or ``None`` when that
    is over ``limit`` bytes or cannot be decoded (the user meets that error when reading)."""
    if not _encoded(response.headers.get("content-encoding")):
        return raw
    steps = (raw[start : start + _DECODE_STEP] for start in range(0, len(raw), _DECODE_STEP))
    # A throwaway response of the same library decodes exactly as the client would.
    probe = type(response)(response.status_code, headers=response.headers, content=steps)
    parts: list[bytes] = []
    size = 0
    try:
        for part in probe.iter_bytes():
            size += len(part)
            if size > limit:
                return None
            parts.append(part)
    except Exception:  # DecodingError of httpx or httpx2
        return None
    return b"".join(parts)


class _SyncReplay(httpx.SyncByteStream, _Httpx2SyncByteStream):
    """The chunks the peek read, then the rest of the original stream (``None``: ended).

    Closing it closes the original (which releases the connection and, in httpx2,
    records ``elapsed``); ``elapsed`` is read through from the original.
    """

    def __init__(self, head: list[bytes], rest: Iterator[bytes] | None, original: Any) -> None:
        self._head = collections.deque(head)
        self._rest = rest
        self._original = original

    @property
    def elapsed(self) -> Any:
        return getattr(self._original, "elapsed", None)

    def __iter__(self) -> Iterator[bytes]:
        while self._head:
            yield self._head.popleft()
        if self._rest is not None:
            yield from self._rest

    def close(self) -> None:
        self._head.clear()
        rest, self._rest = self._rest, None
        close_rest = getattr(rest, "close", None)
        if close_rest is not None:
            close_rest()  # a generator left half-way: let it clean up now
        self._original.close()


class _AsyncReplay(httpx.AsyncByteStream, _Httpx2AsyncByteStream):
    """:class:`_SyncReplay` for async streams."""

    def __init__(self, head: list[bytes], rest: AsyncIterator[bytes] | None, original: Any) -> None:
        self._head = collections.deque(head)
        self._rest = rest
        self._original = original

    @property
    def elapsed(self) -> Any:
        return getattr(self._original, "elapsed", None)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self._head:
            yield self._head.popleft()
        if self._rest is not None:
            async for chunk in self._rest:
                yield chunk

    async def aclose(self) -> None:
        self._head.clear()
        rest, self._rest = self._rest, None
        close_rest = getattr(rest, "aclose", None)
        if close_rest is not None:
            await close_rest()
        await self._original.aclose()
