"""Runs the emulator on a loopback port in a background thread: :class:`Emulator`.

One server, one port, a path prefix per provider (its name: ``/dhl/...``): one URL
to print and forward, one thread to start and stop, and every provider class already
takes full endpoint URLs, so the prefixes cost users nothing. Where each provider's
endpoints are comes from its page (:mod:`.page`); settings live in
``emu.state.settings`` and read and write through the emulator (``emu.token_ttl = 5``).

Example::

    with Emulator(token_ttl=3600) as emu:
        auth = emu.auth("dhl")
        requests.get(emu.url("dhl", "/shipping/v4/label"), auth=auth)
        emu.revoke_all()
        emu.stats.token_requests["dhl"]
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from ..hosts import is_loopback
from .app import ConnectionResetFault, EmulatorApp
from .page import PageField, page_of
from .state import Credentials, EmulatorState, Fault, Stats

__all__ = ["DEFAULT_RESOURCE_PATHS", "TOKEN_PATHS", "Emulator", "NonLoopbackHostError"]

logger = logging.getLogger("delivery_auth")

#: Token endpoint of each provider, below its prefix (read from its page; ``None``: none).
TOKEN_PATHS: Mapping[str, str | None] = PageField(lambda page: page.token_path)

#: A protected resource of each provider, below its prefix (read from its page).
DEFAULT_RESOURCE_PATHS: Mapping[str, str] = PageField(lambda page: page.resource_path)


class NonLoopbackHostError(ValueError):
    """The emulator was asked to listen on an address other than loopback."""


class _Handler(WSGIRequestHandler):
    """Werkzeug's handler, quiet (our logger, DEBUG) and able to reset a connection."""

    def setup(self) -> None:
        # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add ~40 ms to every answer.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("emulator: %s %s -> %s", self.command, self.path.split("?")[0], code)

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug("emulator: " + format, *args)

    def connection_dropped(
        self, error: BaseException, environ: Mapping[str, Any] | None = None
    ) -> None:
        if isinstance(error, ConnectionResetFault):
            # SO_LINGER with a zero timeout turns close() into a TCP RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()


class _Server(ThreadedWSGIServer):
    def log(self, type: str, message: str, *args: Any) -> None:
        logger.debug("emulator %s: " + message, type, *args)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("emulator: error while handling a request", exc_info=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise OSError(
            exc.errno, f"the emulator cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    return sock


class Emulator:
    """A test double of the registered providers (Delivery Tracker, Bringg, DHL
    eCommerce, Yandex Courier, and any registered later).

    **It is not the real thing.** It serves, on a loopback port in a background thread,
    token endpoints and protected resources that behave like the providers (each one's
    rules are in its emulator page), accepts only the fixed test credentials of
    :meth:`credentials`, and exposes settings and counters for tests. Every setting of
    ``emu.state.settings`` reads and writes as an attribute (``emu.token_ttl = 30``;
    a page's own, such as ``emu.tracker_unauthenticated_status``, too).

    Example::

        with Emulator(token_ttl=3600) as emu:
            auth = emu.auth("dhl")                  # a DHLeCommerceAuth aimed at emu
            requests.get(emu.url("dhl", "/shipping/v4/label"), auth=auth)
            emu.revoke_all()                        # server-side revocation
            emu.inject_fault("dhl", "rate_limit", retry_after=1)
            emu.stats.token_requests["dhl"]         # thread-safe counters

    Args:
        token_ttl: lifetime (``expires_in``) of new access tokens, in seconds.
        clock_offset: seconds added to the emulator's clock (Bringg's ``created_at``).
        host: a loopback address; anything else needs ``allow_non_loopback=True``.
        port: ``0`` picks a free port.
        allow_non_loopback: serve on another address anyway (never do this on a
            network you do not control: the credentials are public constants).
    """

    def __init__(
        self,
        *,
        token_ttl: float = 3600.0,
        clock_offset: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_non_loopback: bool = False,
    ) -> None:
        if not is_loopback(host) and not allow_non_loopback:
            raise NonLoopbackHostError(
                f"the emulator is a test double and listens only on loopback; {host!r} is "
                "not a loopback address. Use 127.0.0.1 (or pass allow_non_loopback=True if "
                "you really mean to expose it)."
            )
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
        self.state = EmulatorState(token_ttl=token_ttl, clock_offset=clock_offset)
        self.app = EmulatorApp(self.state)
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving (idempotent); returns ``self``."""
        if self._server is not None:
            return self
        sock = _bind(self._host, self._port)
        try:
            server = _Server(
                self._host, sock.getsockname()[1], self.app, handler=_Handler, fd=sock.fileno()
            )
        finally:
            sock.close()  # the server holds its own duplicate of the socket
        self.state.stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="delivery-auth-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.debug("emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.state.stopping.set()  # wakes requests sleeping in a "delay" fault
        server.shutdown()
        if thread is not None:
            thread.join()
        server.server_close()
        self._server = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        return f"<Emulator (test double) {where}>"

    def reset(self) -> None:
        """Forget tokens, faults and counts; settings return to the constructor's values."""
        self.state.reset()

    # -- addresses ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running; use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (raises if the emulator is not running)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def url(self, provider: str, path: str = "/") -> str:
        """The emulator's URL of ``path`` for ``provider``.

        Example::

            emu.url("tracker", "/graphql")   # 'http://127.0.0.1:PORT/tracker/graphql'
        """
        self.state.check_provider(provider)
        if not path.startswith("/"):
            path = "/" + path
        return f"{self.base_url}/{provider}{path}"

    def token_url(self, provider: str) -> str:
        """The token endpoint of ``provider`` (its page's ``token_path``).

        A ``ValueError`` when the provider has none (its credentials need no token request).
        """
        path = page_of(provider).token_path
        if path is None:
            raise ValueError(
                f"{provider} has no token endpoint: its credentials are sent without a "
                "token request. Use resource_url() for its API."
            )
        return self.url(provider, path)

    def resource_url(self, provider: str) -> str:
        """A protected resource of ``provider`` (its page's ``resource_path``)."""
        return self.url(provider, page_of(provider).resource_path)

    # -- credentials and auth objects ----------------------------------------------------

    @staticmethod
    def credentials(provider: str) -> Credentials:
        """The fixed test credentials the emulator accepts for ``provider``."""
        return page_of(provider).credentials

    def auth(self, provider: str, **options: Any) -> Any:
        """A provider auth object (e.g. ``DHLeCommerceAuth``) aimed at this emulator.

        ``options`` go to the provider class (``method="oauth2"``, ``ttl=600``,
        ``refresh_ratio=0.5``...).
        """
        from ._auth import build_auth

        return build_auth(self.base_url, self.state.check_provider(provider), options)

    def env(self, provider: str) -> dict[str, str]:
        """Environment variables that make ``from_env()`` and the CLI use this emulator."""
        from ._auth import environment

        return environment(self.state.check_provider(provider))

    # -- settings and counters -------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the settings (emu.token_ttl, ...).
        state = self.__dict__.get("state")
        if state is not None and name in state.settings:
            return getattr(state.settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        state = self.__dict__.get("state")
        if state is not None and name in state.settings:
            setattr(state.settings, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def stats(self) -> Stats:
        """Thread-safe counters: ``token_requests``, ``tokens_issued``,
        ``resource_requests``, ``auth_failures`` (each indexed by provider)."""
        return self.state.stats

    def configure_device_flow(
        self,
        *,
        pending_polls: int | None = None,
        outcome: str | None = None,
        interval: int | None = None,
        expires_in: int | None = None,
    ) -> None:
        """How device-code logins go: ``pending_polls`` answers of
        ``authorization_pending``, then ``outcome`` ("approve", "deny" or "expire");
        ``interval`` and ``expires_in`` are what ``/device/code`` announces (the
        settings ``device_pending_polls``, ``device_outcome``, ...)."""
        given = {
            "device_pending_polls": pending_polls,
            "device_outcome": outcome,
            "device_interval": interval,
            "device_expires_in": expires_in,
        }
        self.state.settings.update(**{k: v for k, v in given.items() if v is not None})

    def issue_token(self, provider: str) -> str:
        """A new valid access token of ``provider`` for its test client, without a request.

        Example::

            token = emu.issue_token("yandex")   # a Yandex OAuth token, as if pasted by a user
            auth = emu.auth("yandex", token=token)
        """
        return self.state.issue(provider, self.credentials(provider).client_id).value

    def accept_token(self, provider: str, access_token: str, ttl: float | None = None) -> None:
        """Make the API of ``provider`` accept ``access_token`` (e.g. one your code has stored).

        Example::

            emu.accept_token("yandex", "token-from-my-fixture-file")
        """
        self.state.accept(provider, access_token, ttl)

    def revoke(self, access_token: str) -> bool:
        """Revoke one access token; ``False`` if the emulator never issued it."""
        return self.state.revoke(access_token)

    def revoke_all(self, provider: str | None = None, *, refresh_tokens: bool = False) -> int:
        """Revoke every access token (of ``provider``, or of all); returns how many.
        Refresh tokens keep working unless ``refresh_tokens=True``."""
        return self.state.revoke_all(provider, refresh_tokens=refresh_tokens)

    def expire_all(self, provider: str | None = None) -> int:
        """Make every live token expire now (DHL then says "Access token expired")."""
        return self.state.expire_all(provider)

    def inject_fault(
        self,
        provider: str,
        kind: str,
        *,
        times: int = 1,
        endpoint: str = "token",
        status: int | None = None,
        retry_after: float = 1.0,
        delay: float = 0.5,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Make the next ``times`` requests to an endpoint of ``provider`` fail.

        ``kind`` is one of ``server_error`` (``status``, default 503), ``rate_limit``
        (429 with ``Retry-After: retry_after``), ``delay`` (answer after ``delay``
        seconds), ``garbage`` (a body that is not JSON), ``html`` (an HTML error page,
        ``status`` default 502), ``reset`` (connection reset), ``auth_failure`` (the
        provider's "credentials rejected" answer) or ``reply`` (a scripted answer:
        ``status``, default 200, ``body`` and ``headers``). ``endpoint`` is ``"token"``
        or ``"resource"``.

        Example::

            emu.inject_fault("bringg", "server_error", times=2)
            emu.inject_fault("dhl", "auth_failure", endpoint="resource")
        """
        if status is not None and (
            isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599
        ):
            raise ValueError(f"status must be an HTTP status code, got {status!r}")
        for name, value in (("retry_after", retry_after), ("delay", delay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")
        self.state.inject_fault(
            provider,
            endpoint,
            Fault(
                kind,
                status=status,
                retry_after=float(retry_after),
                delay=float(delay),
                body=body.encode() if isinstance(body, str) else bytes(body),
                headers=tuple((headers or {}).items()),
            ),
            times,
        )

    def clear_faults(self) -> None:
        """Drop every injected fault that has not fired yet."""
        self.state.clear_faults()
