"""An overall deadline for one HTTP exchange made with requests.

A read timeout (requests, urllib3) restarts on every byte received, so a server that
drips its headers or its body a few bytes at a time is never timed out. Mounted on a
``requests.Session``, :class:`DeadlineAdapter` turns ``timeout`` into a bound on the
whole exchange: connecting, sending, and reading the headers and the body. When the
deadline passes, a watchdog shuts the connection's socket down, which wakes the blocked
read at once; the exchange then raises :class:`DeadlineExceeded` (a
``requests.Timeout``) and urllib3 discards the connection.

Example::

    session = requests.Session()
    session.mount("https://", DeadlineAdapter())
    session.post(url, data=form, timeout=10)   # at most about 10 s, whatever the server does

The watchdog holds a duplicate of the socket's descriptor (``socket.fromfd``), so it
never touches a descriptor that urllib3 closed and the system reused, and it never
blocks the socket's owner. It is one short-lived thread per exchange, joined before
:meth:`DeadlineAdapter.send` returns. Name resolution and each connection attempt are
bounded by ``timeout`` on their own; a connection made after the deadline is cut at once.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from contextvars import ContextVar
from typing import Any

import requests
from requests.adapters import DEFAULT_POOLBLOCK, HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.poolmanager import PoolManager

__all__ = ["DeadlineAdapter", "DeadlineExceeded"]

#: The deadline of the exchange running in this thread (requests is synchronous).
_current: ContextVar[_Deadline | None] = ContextVar("delivery_auth_deadline", default=None)


class DeadlineExceeded(requests.exceptions.Timeout):
    """The whole exchange took longer than its timeout; its connection was cut."""


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed or never connected
        sock.shutdown(socket.SHUT_RDWR)


class _Deadline:
    """A watchdog that shuts down the watched sockets when ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._finished = False
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.name = "delivery-auth-deadline"
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Cut ``sock`` at the deadline, or at once when it has passed."""
        try:
            copy = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
        except OSError:  # closed under us: nothing left to cut
            return
        with self._lock:
            if not self._finished:
                self._watched.append(copy)
                if self.expired:
                    _cut(copy)
                return
        copy.close()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._watched:
                _cut(sock)

    def finish(self) -> bool:
        """Stop the watchdog and close the duplicates; True if the deadline had passed."""
        self._timer.cancel()
        with self._lock:
            self._finished = True
            watched, self._watched = self._watched, []
        self._timer.join()
        for sock in watched:
            sock.close()
        return self.expired


class _WatchedConnection(HTTPConnection):
    """Mixed into urllib3's connection classes: hands each socket to the current deadline."""

    _watched_by: _Deadline | None = None

    def _new_conn(self) -> socket.socket:
        # The plain socket, before TLS or a proxy tunnel: the handshake is covered too.
        sock = super()._new_conn()
        deadline = self._watched_by = _current.get()
        if deadline is not None:
            deadline.watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        # A kept-alive connection made during an earlier exchange.
        deadline = _current.get()
        if deadline is not None and deadline is not self._watched_by and self.sock is not None:
            self._watched_by = deadline
            deadline.watch(self.sock)
        super().request(*args, **kwargs)


@functools.cache
def _watched_pool(pool_class: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    connection_class = pool_class.ConnectionCls
    watched = type(
        f"Watched{connection_class.__name__}", (_WatchedConnection, connection_class), {}
    )
    return type(f"Watched{pool_class.__name__}", (pool_class,), {"ConnectionCls": watched})


def _watch_pools(manager: PoolManager) -> None:
    manager.pool_classes_by_scheme = {
        scheme: _watched_pool(pool_class)
        for scheme, pool_class in manager.pool_classes_by_scheme.items()
    }


def _total(timeout: Any) -> float | None:
    """The overall budget of an exchange from requests' ``timeout`` argument."""
    if isinstance(timeout, bool):
        return None
    if isinstance(timeout, (int, float)):
        return float(timeout)
    if isinstance(timeout, tuple) and all(
        isinstance(part, (int, float)) and not isinstance(part, bool) for part in timeout
    ):
        return float(sum(timeout))  # (connect, read): connecting, then the answer
    return None


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose ``timeout`` bounds the whole exchange, body included.

    A float ``timeout`` is the budget; a ``(connect, read)`` tuple gives their sum;
    ``None`` means no deadline (as in requests). With ``stream=True`` only the headers
    are covered (the caller reads the body).
    """

    def init_poolmanager(
        self,
        connections: int,
        maxsize: int,
        block: bool = DEFAULT_POOLBLOCK,
        **pool_kwargs: Any,
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watch_pools(manager)
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        seconds = _total(timeout)
        if seconds is None:
            return super().send(request, stream, timeout, verify, cert, proxies)
        deadline = _Deadline(seconds)
        token = _current.set(deadline)
        try:
            try:
                response = super().send(request, stream, timeout, verify, cert, proxies)
                if not stream:
                    response.content  # noqa: B018 - read the body under the deadline too
            finally:
                _current.reset(token)
                expired = deadline.finish()
        except Exception as exc:
            if expired:
                raise _exceeded(request, seconds) from exc
            raise
        if expired:
            # A cut while the headers arrive can even look like a complete, empty
            # response: whatever came back after the deadline is not trusted.
            response.close()
            raise _exceeded(request, seconds)
        return response


def _exceeded(request: requests.PreparedRequest, seconds: float) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"no complete response within {seconds:g} s; the connection was closed",
        request=request,
    )
