"""Which Redis client RedisTokenCache talks through, and what its failures look like.

A client may come from redis-py or valkey-py (or a fork of either) and talk to one server or
to a Redis Cluster; ``url=`` makes a redis-py client of the right kind. Nothing here imports
a client library at module import time.

Example::

    connection = connect_url("redis://node-1.internal:6379/0", cluster=None)  # asks the node
    connection.client.get("key"); connection.release(keys=["lock"], args=["owner"])
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

__all__ = ["Connection", "connect_url", "hash_tag", "is_redirection", "library_errors"]

# Release the lock only if we still own it (it may have expired and been taken by another),
# and tell the workers waiting for it (ARGV[2] the channel, ARGV[3] the message). pcall: a
# user without the right to publish still releases the lock.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    redis.pcall('PUBLISH', ARGV[2], ARGV[3])
    return 1
end
return 0
"""

# Delete the token only if it is still the one that was rejected. A stored value is
# "<sha256 of the access token>:<record>", so the comparison needs no decryption.
_COMPARE_AND_DELETE_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value and string.sub(value, 1, string.len(ARGV[1])) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class Connection:
    """A client and the two scripts registered on it."""

    def __init__(self, client: Any, *, cluster: bool = False) -> None:
        self.client = client
        self.cluster = cluster
        self.release = client.register_script(_RELEASE_SCRIPT)
        self.compare_and_delete = client.register_script(_COMPARE_AND_DELETE_SCRIPT)


def library_errors(client_type: type) -> tuple[type[BaseException], ...]:
    """What a failing server or client library raises: ``OSError`` and the root exception
    classes of the client's library, found from the client's class (redis-py's ``RedisError``
    and ``RedisClusterException``, valkey-py's ``ValkeyError`` and ``ValkeyClusterException``,
    a fork's own), plus those of redis-py and valkey-py when they are imported anyway.
    Nothing is imported here: a client's library is loaded already."""
    errors: list[type[BaseException]] = [OSError]
    packages = {cls.__module__.partition(".")[0] for cls in client_type.__mro__}
    for package in sorted(packages | {"redis", "valkey"}):
        module = sys.modules.get(f"{package}.exceptions")
        if module is None:
            continue
        connection_error = getattr(module, "ConnectionError", None)
        if not (isinstance(connection_error, type) and issubclass(connection_error, Exception)):
            continue  # not a Redis client library
        errors.extend(
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Exception)
            and value.__module__ == module.__name__
            and not any(base.__module__ == module.__name__ for base in value.__bases__)
        )
    return tuple(errors)


def is_redirection(exc: BaseException) -> bool:
    """A cluster node's MOVED or ASK: the key lives on another node (not an outage)."""
    return any(cls.__name__ in ("MovedError", "AskError") for cls in type(exc).__mro__)


def hash_tag(name: str) -> str | None:
    """The part of a key that picks its Redis Cluster slot: the text between the first ``{``
    and the next ``}``, if not empty (else the whole key decides)."""
    start = name.find("{")
    end = name.find("}", start + 1) if start >= 0 else -1
    return name[start + 1 : end] if end > start + 1 else None


#: A new connection of a client made from ``url`` sends no command of its own beyond AUTH
#: and SELECT when the URL asks for them: RESP2 (no HELLO) unless the URL says
#: ``?protocol=3``, and no CLIENT SETINFO (the library's name and version in CLIENT LIST,
#: two commands per connection: a fleet of processes pays them on every connection).
_QUIET_CONNECT: dict[str, Any] = {"protocol": 2}


def connect_url(url: str, *, cluster: bool | None) -> Connection:
    """A redis-py client for ``url``: a cluster client if ``cluster``, or if ``None`` and the
    node says it is part of a cluster (one ``INFO cluster`` at first contact), else a plain
    one. It gives up on an unreachable server after 2 s and retries a command once, and its
    connections send no HELLO or CLIENT SETINFO."""
    import redis as redis_py
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    options: dict[str, Any] = {
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "retry": Retry(NoBackoff(), 1),
        **_QUIET_CONNECT,
    }
    if "driver_info" in inspect.signature(redis_py.Redis.__init__).parameters:
        options["driver_info"] = None  # where it exists, lib_name=None is deprecated
    else:
        options.update(lib_name=None, lib_version=None)
    if cluster is None:
        plain = redis_py.Redis.from_url(url, **options)
        try:
            cluster = bool(plain.info("cluster").get("cluster_enabled"))
        except redis_py.ResponseError:  # INFO refused (ACL): a redirection will tell
            cluster = False
        except BaseException:
            plain.close()
            raise
        if not cluster:
            return Connection(plain)
        plain.close()
    return Connection(redis_py.RedisCluster.from_url(url, **options), cluster=True)
