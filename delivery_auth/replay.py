"""What a resend carries: the first send's body byte for byte (or no resend at all), the
cookies the rejection set, and, with requests, the rejected response in ``history``.

The adapters in :mod:`delivery_auth.auth` record how to replay a body before the first send
(:func:`seek_point`, :func:`httpx_rewind`, :func:`ahttpx_rewind`) and, after a rejection,
rewind it (:func:`rewound`, :func:`arewound`) or, when that fails, return the response
instead of resending. Bodies in memory need nothing; files are rewound to where the first
send started; generators, read-only streams and files whose ``seek()`` fails are never
resent. Async files (anyio, trio, aiofiles) have coroutine ``tell``/``seek``: only the
async flow can use them, and it awaits both.
"""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import requests
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar, get_cookie_header

__all__ = [
    "UNREPLAYABLE",
    "ResentResponse",
    "Rewind",
    "SeekPoints",
    "Unreplayable",
    "ahttpx_rewind",
    "arewound",
    "httpx_carry_cookies",
    "httpx_rewind",
    "merge_cookie_headers",
    "requests_carry_cookies",
    "rewound",
    "seek_point",
]

# Bodies requests sends from memory as they are (it treats the last two as streams).
_IN_MEMORY = (bytes, str, bytearray, memoryview)

# The stream of an httpx or httpx2 request whose body is in memory (no body, bytes, str,
# form, JSON): sent again byte for byte with nothing to record.
_IN_MEMORY_STREAMS: set[type] = {httpx.ByteStream}
try:
    from httpx2 import ByteStream as _Httpx2ByteStream
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    _IN_MEMORY_STREAMS.add(_Httpx2ByteStream)


class Unreplayable:
    """Marks a request body that cannot be sent twice (generator, one-shot stream)."""

    __slots__ = ()


UNREPLAYABLE = Unreplayable()


def _discard(value: object) -> None:
    """Close a coroutine that sync code cannot await, so it neither runs nor warns."""
    if inspect.iscoroutine(value):
        value.close()


class SeekPoints:
    """Seekable bodies and the positions to rewind them to before a resend.

    A position is an ``int``, or an awaitable of one (an async file's ``tell()``) until
    :meth:`settle` has awaited it.
    """

    __slots__ = ("points",)

    def __init__(self, points: list[tuple[Any, Any]]) -> None:
        self.points = points

    async def settle(self) -> Rewind:
        """Await the positions async files report (before the first send)."""
        settled = []
        for body, position in self.points:
            try:
                settled.append(
                    (body, await position if inspect.isawaitable(position) else position)
                )
            except (OSError, ValueError):
                return UNREPLAYABLE
        self.points = settled
        return self

    def rewind(self) -> bool:
        """Seek every body back from sync code; ``False`` when one cannot be."""
        for body, position in self.points:
            try:
                result = body.seek(position)
            except (OSError, ValueError):  # io.UnsupportedOperation is both
                return False
            if inspect.isawaitable(result):  # only the async flow records such positions
                _discard(result)
                return False
        return True

    async def arewind(self) -> bool:
        """Seek every body back, awaiting an async file's ``seek()``."""
        for body, position in self.points:
            try:
                result = body.seek(position)
                if inspect.isawaitable(result):
                    await result
            except (OSError, ValueError):
                return False
        return True


Rewind = SeekPoints | Unreplayable | None  # None: the body is in memory (or absent)


def seek_point(body: Any, asynchronous: bool = False) -> Rewind:
    """How to send ``body`` again: ``None`` (in memory), seek points, or unreplayable.

    From sync code (``asynchronous=False``) an async file is unreplayable: its ``tell()``
    returns a coroutine that only an event loop can run.
    """
    if body is None or isinstance(body, _IN_MEMORY):
        return None
    if inspect.isgenerator(body) or not (hasattr(body, "seek") and hasattr(body, "tell")):
        return UNREPLAYABLE
    try:
        position = body.tell()
    except (OSError, ValueError):
        return UNREPLAYABLE
    if inspect.isawaitable(position) and not asynchronous:
        _discard(position)
        return UNREPLAYABLE
    return SeekPoints([(body, position)])


def _multipart_rewind(stream: Any) -> Rewind:
    # httpx (and httpx2) seek every file field that has seek() to 0 before sending it, on the
    # first send and on a resend alike; a field without seek() is read from where it stands,
    # so a resend would carry it empty. Whether seek(0) still works is tried at the resend.
    files = []
    for field in stream.fields:
        file = getattr(field, "file", None)  # DataField has none; bytes and str are in memory
        if file is None or isinstance(file, (bytes, str)):
            continue
        if not hasattr(file, "seek"):
            return UNREPLAYABLE
        files.append((file, 0))
    return SeekPoints(files) if files else None


def httpx_rewind(request: Any, asynchronous: bool = False) -> Rewind:
    """How to send an httpx or httpx2 ``request`` again (see :func:`seek_point`)."""
    if type(request.stream) in _IN_MEMORY_STREAMS:  # most requests: decided at once
        return None
    try:
        request.content  # noqa: B018 - raises RequestNotRead unless the body is in memory
    except Exception:  # httpx.RequestNotRead or httpx2.RequestNotRead: a stream
        stream = request.stream
        if type(stream).__name__ == "MultipartStream":
            return _multipart_rewind(stream)
        # A file passed as content= is wrapped in an iterator stream that will not
        # rewind it: remember where it started so a resend carries the same bytes.
        return seek_point(getattr(stream, "_stream", None), asynchronous)
    return None


async def ahttpx_rewind(request: Any) -> Rewind:
    """:func:`httpx_rewind` for the async flow: async files' positions are awaited."""
    rewind = httpx_rewind(request, asynchronous=True)
    return await rewind.settle() if isinstance(rewind, SeekPoints) else rewind


def rewound(rewind: Rewind) -> bool:
    """Put the body back where the first send started; ``False``: do not resend it."""
    return rewind is None or (isinstance(rewind, SeekPoints) and rewind.rewind())


async def arewound(rewind: Rewind) -> bool:
    """:func:`rewound` for the async flow."""
    return rewind is None or (isinstance(rewind, SeekPoints) and await rewind.arewind())


def merge_cookie_headers(had: str | None, new: str | None) -> str | None:
    """One ``Cookie`` value: the cookies of ``had``, with those of ``new`` added or, for the
    same name, replacing them (the server has just set them)."""
    merged: dict[str, str] = {}
    for header in (had, new):
        for pair in (header or "").split(";"):
            if pair.strip():
                merged[pair.partition("=")[0].strip()] = pair.strip()
    return "; ".join(merged.values()) or None


def httpx_carry_cookies(request: Any, rejected: Any) -> None:
    """Give a request about to be resent the cookies its rejection set (httpx, httpx2).

    The client puts them in its jar, but the request was built before, with the jar as it
    was; httpx's ``DigestAuth`` does the same, except that it drops them when the request
    already carries a ``Cookie`` header.
    """
    if not rejected.cookies:
        return
    had = request.headers.pop("cookie", None)
    type(rejected.cookies)(rejected.cookies).set_cookie_header(request)
    merged = merge_cookie_headers(had, request.headers.get("cookie"))
    if merged is not None:
        request.headers["Cookie"] = merged


def requests_carry_cookies(prep: requests.PreparedRequest, rejected: requests.Response) -> None:
    """:func:`httpx_carry_cookies` for requests (``prepare_cookies`` would keep the old
    header whenever the request already had one)."""
    just_set = RequestsCookieJar()
    extract_cookies_to_jar(just_set, rejected.request, rejected.raw)  # type: ignore[no-untyped-call]
    had = prep.headers.pop("Cookie", None)
    merged = merge_cookie_headers(had, get_cookie_header(just_set, prep))  # type: ignore[no-untyped-call]
    if merged is not None:
        prep.headers["Cookie"] = merged


class ResentResponse(requests.Response):
    """The response to a resend; its ``history`` keeps the rejected response at its end.

    After a redirect, requests' ``Session.send`` gives the last response the redirect
    chain as ``history`` once the hooks have run, which would drop the rejected response:
    ``/a`` 302 → ``/b`` 401 → resent ``/b`` 200 keeps ``history == [302, 401]`` this way.
    """

    rejected: requests.Response | None = None

    @property
    def history(self) -> list[requests.Response]:
        chain: list[requests.Response] = self.__dict__["history"]
        return chain

    @history.setter
    def history(self, chain: list[requests.Response]) -> None:
        if self.rejected is not None and self.rejected not in chain:
            chain = [*chain, self.rejected]
        self.__dict__["history"] = chain

    @classmethod
    def after(cls, resent: requests.Response, rejected: requests.Response) -> ResentResponse:
        """``resent``, as a :class:`ResentResponse` whose history ends with ``rejected``."""
        resent.__class__ = cls
        assert isinstance(resent, cls)
        resent.rejected = rejected
        resent.history = resent.history  # through the setter: appends ``rejected``
        return resent
