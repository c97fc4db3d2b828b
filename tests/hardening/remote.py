"""The emulator in a child process, driven over a pipe: for the load test, so that the
server does not share the test process's interpreter lock with 64 client threads."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from delivery_auth.emulator import TOKEN_PATHS, Emulator
from delivery_auth.emulator._auth import build_auth


def serve(conn: Connection, token_ttl: float) -> None:
    """Child process: run an emulator and answer commands until "stop"."""
    with Emulator(token_ttl=token_ttl) as emu:
        conn.send(emu.base_url)
        while True:
            command = conn.recv()
            if isinstance(command, tuple) and command[0] == "classify":
                # Why the emulator would refuse each (provider, token) now: "revoked",
                # "expired", "unknown", "wrong_provider" or "ok".
                conn.send([emu.state.check_token(p, t) for p, t in command[1]])
            elif command == "revoke_all":
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
        if not self._conn.poll(60):
            self._process.kill()
            raise RuntimeError("the emulator process did not start within 60 s")
        self.base_url: str = self._conn.recv()

    def classify(self, tokens: list[tuple[str, str]]) -> list[str]:
        """The emulator's verdict on each ``(provider, access token)``."""
        result: list[str] = self._ask(("classify", tokens))
        return result

    def _ask(self, command: Any) -> Any:
        self._conn.send(command)
        if not self._conn.poll(30):
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
        return self.url(provider, TOKEN_PATHS[provider])

    def auth(self, provider: str, **options: Any) -> Any:
        return build_auth(self, provider, options)  # type: ignore[arg-type]

    def close(self) -> None:
        try:
            self._ask("stop")
        finally:
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(10)
