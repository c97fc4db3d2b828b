"""The emulator in a child process, driven over a pipe: for the load test, so that the
server does not share the test process's interpreter lock with 64 client threads."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from werkzeug.wrappers import Request, Response

from delivery_auth.emulator import TOKEN_PATHS, Emulator
from delivery_auth.emulator._auth import build_auth

#: Added to every answer of a protected resource: what the emulator thought of the token
#: the request carried at the moment it checked it ("ok", "revoked", "expired", ...).
#: A verdict asked for after the run would be wrong: a revocation revokes every token
#: issued before it, expired ones included.
VERDICT_HEADER = "X-Emulator-Token-Verdict"
#: Added beside it: which token that was (a digest: the client's own request objects do
#: not tell, since an auth flow may send the same request object again with a new header).
TOKEN_HEADER = "X-Emulator-Token-Digest"


def token_digest(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()[:16]


def report_verdicts(emu: Emulator) -> None:
    """Make ``emu`` answer each API request with :data:`VERDICT_HEADER` and :data:`TOKEN_HEADER`."""
    seen = threading.local()  # the server answers each connection on its own thread
    check_token = emu.state.check_token

    def checking(provider: str, value: str | None) -> Any:
        seen.verdict, seen.token = check_token(provider, value), value
        return seen.verdict

    emu.state.check_token = checking  # type: ignore[method-assign]

    def wrap(handler: Callable[..., Response]) -> Callable[..., Response]:
        def handle(request: Request, state: Any, path: str) -> Response:
            seen.verdict = None
            response = handler(request, state, path)
            if seen.verdict is not None:
                response.headers[VERDICT_HEADER] = seen.verdict
                response.headers[TOKEN_HEADER] = token_digest(seen.token)
            return response

        return handle

    for provider, handler in list(emu.app.handlers.items()):
        emu.app.handlers[provider] = wrap(handler)


def serve(conn: Connection, token_ttl: float) -> None:
    """Child process: run an emulator and answer commands until "stop"."""
    with Emulator(token_ttl=token_ttl) as emu:
        report_verdicts(emu)
        conn.send(emu.base_url)
        while True:
            command = conn.recv()
            if command == "revoke_all":
                conn.send(emu.revoke_all())
            elif command == "stats":
                stats = emu.stats
                conn.send(
                    {
                        "token_requests": stats.token_requests.as_dict(),
                        "resource_requests": stats.resource_requests.as_dict(),
                        "auth_failures": stats.auth_failures.as_dict(),
                    }
                )
            else:
                conn.send("stopped")
                return


class RemoteEmulator:
    """The parent's handle: URLs, auth objects, revocation and counters over the pipe."""

    def __init__(self, token_ttl: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, token_ttl), name="hardening-emulator", daemon=True
        )
        self._process.start()
        # Bounds that only a hang reaches, even on a loaded machine.
        if not self._conn.poll(120):
            self._process.kill()
            raise RuntimeError("the emulator process did not start within 120 s")
        self.base_url: str = self._conn.recv()

    def _ask(self, command: Any) -> Any:
        self._conn.send(command)
        if not self._conn.poll(120):
            raise RuntimeError(f"the emulator process did not answer {command!r}")
        return self._conn.recv()

    def revoke_all(self) -> int:
        return int(self._ask("revoke_all"))

    def stats(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = self._ask("stats")
        return result

    def url(self, provider: str, path: str) -> str:
        return f"{self.base_url}/{provider}{path}"

    def token_url(self, provider: str) -> str:
        path = TOKEN_PATHS[provider]
        assert path is not None, f"{provider} has no token endpoint"
        return self.url(provider, path)

    def auth(self, provider: str, **options: Any) -> Any:
        return build_auth(self.base_url, provider, options)

    def close(self) -> None:
        try:
            self._ask("stop")
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(10)
