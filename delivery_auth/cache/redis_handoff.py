"""How a process waiting for another's token learns that it was stored: one channel per entry.

The lock holder PUBLISHes ``stored`` right after it SETs the token and ``released`` when it
lets the lock go (in the release script). A waiter SUBSCRIBEs on a connection of its own,
and only once the server has confirmed the subscription looks at the lock again: a message
published after that look cannot be missed, one published before it is seen by the look
itself (the lock is free). Then it sleeps until a message comes, and looks at the lock
only now and then (doubling intervals) and when the holder's lease must have run out: a
holder that died, or one of an older version that publishes nothing, delays the waiters
no longer than before.

PUBLISH rather than Redis 7's sharded SPUBLISH: PUBLISH works on every Redis and Valkey
version and proxy that has pub/sub, and in a cluster it reaches subscribers on every node
(so a waiter may listen on any node, and a resharding moves nothing under it). Its cost,
one message crossing the cluster bus, comes once per token stored, not per request.

Example::

    listener = listen(client, "delivery_auth:handoff:{k}", cluster=False, errors=errors, within=5.0)
    outcome = wait_for_holder(listener, attempt, lease_end=..., deadline=..., recheck=1.0)
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .codec import WarnOnce

__all__ = [
    "GAVE_UP",
    "RELEASED",
    "STORED",
    "TAKEN",
    "Handoff",
    "Listener",
    "is_refusal",
    "listen",
    "wait_for_holder",
]

logger = logging.getLogger("delivery_auth")

T = TypeVar("T")

#: Messages on an entry's channel.
STORED = "stored"
RELEASED = "released"
#: Outcomes of :func:`wait_for_holder`.
TAKEN = "taken"
GAVE_UP = "gave up"
_LOST = "lost"  # the listening connection failed: go on by looking at the lock
_LOOK = "look"  # subscribed again after a lost connection: look at the lock
#: How often a waiter looks at the lock when it cannot subscribe (plus up to 50% jitter).
POLL_INTERVAL = 0.05
#: At most how long a waiter waits for the server to confirm its subscription.
_SUBSCRIBE_WAIT = 10.0


def is_refusal(exc: BaseException) -> bool:
    """The server answered with an error (no permission for the channel, an unknown command
    behind a proxy): pub/sub will not work for this user, and the server is not down."""
    return any(cls.__name__ == "ResponseError" for cls in type(exc).__mro__)


class Listener:
    """A subscription to one channel on a connection that nothing else uses."""

    def __init__(self, pubsub: Any, pool: Any, errors: tuple[type[BaseException], ...]) -> None:
        self._pubsub = pubsub
        self._pool = pool  # the private pool behind ``pubsub``, or None
        self._errors = errors

    def next_message(self, timeout: float) -> str | None:
        """``stored``, ``released``, ``look`` (subscribed anew: what was published while
        the connection was down is lost), ``lost`` (the connection failed), or ``None``
        when ``timeout`` seconds passed (or a message of no interest came) first."""
        try:
            message = self._pubsub.get_message(timeout=timeout)
        except self._errors:
            return _LOST
        if not isinstance(message, dict):
            return None
        if message.get("type") == "subscribe":
            # The client lost the connection, made a new one and subscribed again by itself
            # (redis-py and valkey-py do): only a look at the lock covers the gap.
            return _LOOK
        if message.get("type") != "message":
            return None
        data = message.get("data")
        return data.decode("ascii", "replace") if isinstance(data, bytes) else str(data)

    def close(self) -> None:
        """Drop the subscription with its connection (the server forgets both)."""
        with contextlib.suppress(Exception):  # best effort: the socket may be gone already
            self._pubsub.close()
        if self._pool is not None:
            with contextlib.suppress(Exception):
                self._pool.disconnect()


def _private_pubsub(client: Any) -> tuple[Any, Any]:
    """A PubSub of ``client``'s kind over a pool of its own: the client's own PubSub would
    take the idle connection of the client's pool and hand it back closed, so that the next
    command would connect (and authenticate) again."""
    shared = client.pubsub()
    pool: Any = getattr(client, "connection_pool", None)
    try:
        private = type(pool)(connection_class=pool.connection_class, **pool.connection_kwargs)
        return type(shared)(private), private
    except Exception:  # a pool we cannot copy (Sentinel, a fork's own): share it
        return shared, None


def _node_client(cluster: Any, channel: str) -> Any:
    """The plain client of the cluster node that owns ``channel``'s slot (any node would
    hear a PUBLISH; this one also owns the entry's keys)."""
    node = cluster.get_node_from_key(channel)
    for getter in ("get_redis_connection", "get_valkey_connection"):
        method = getattr(cluster, getter, None)
        if method is not None:
            return method(node)
    raise TypeError(f"cannot find the node clients of a {type(cluster).__name__}")


def listen(
    client: Any,
    channel: str,
    *,
    cluster: bool,
    errors: tuple[type[BaseException], ...],
    within: float,
) -> Listener:
    """Subscribe to ``channel`` and return once the server has confirmed it; raises one of
    ``errors`` (or ``TimeoutError`` after ``within`` seconds without a confirmation)."""
    if cluster:
        client = _node_client(client, channel)
    pubsub, pool = _private_pubsub(client)
    listener = Listener(pubsub, pool, errors)
    try:
        pubsub.subscribe(channel)
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the Redis server did not confirm the subscription")
            message = pubsub.get_message(timeout=remaining)
            if isinstance(message, dict) and message.get("type") == "subscribe":
                return listener
    except BaseException:
        listener.close()
        raise


def wait_for_holder(
    listener: Listener | None,
    attempt: Callable[[], bool],
    *,
    lease_end: float,
    deadline: float,
    recheck: float,
    poll: float,
) -> str:
    """Wait for the holder of a lock: :data:`TAKEN` (``attempt`` took the lock),
    :data:`STORED` (the holder stored a token: read it without the lock) or
    :data:`GAVE_UP` (``deadline`` passed, the lock still taken).

    ``attempt`` tries the lock once; it runs at once (the subscription is in place now),
    on a ``released`` message, after a new subscription (the connection was lost), after
    ``recheck`` seconds (doubling each time), at ``lease_end`` (when the lease of the lock
    we met must have run out) and at ``deadline``.
    Without a ``listener`` (no pub/sub), it runs every ``poll`` seconds (plus jitter).
    """
    if attempt():
        return TAKEN
    interval = recheck if listener is not None else poll
    next_look = _next_look(time.monotonic(), interval, lease_end, deadline, listener is None)
    while True:
        now = time.monotonic()
        if now < next_look:
            if listener is None:
                time.sleep(next_look - now)
                continue
            message = listener.next_message(next_look - now)
            if message == STORED:
                return STORED
            if message == _LOST:  # go on as if there were no pub/sub
                listener.close()
                listener, interval = None, poll
                next_look = _next_look(time.monotonic(), interval, lease_end, deadline, True)
                continue
            if message not in (RELEASED, _LOOK):
                continue  # timed out (the loop looks at the clock) or of no interest
        if attempt():
            return TAKEN
        now = time.monotonic()
        if now >= deadline:
            return GAVE_UP
        if listener is not None:
            interval *= 2
        next_look = _next_look(now, interval, lease_end, deadline, listener is None)


def _next_look(
    now: float, interval: float, lease_end: float, deadline: float, jitter: bool
) -> float:
    if jitter:  # pollers should not hit Redis in step
        interval *= 1 + random.random() / 2
    candidates = [now + interval, deadline]
    if lease_end > now:
        candidates.append(lease_end)
    return min(candidates)


class Handoff:
    """The hand-off of one cache: publish what happened to an entry, wait for its holder.

    ``errors`` are what the client's library raises; when the server refuses SUBSCRIBE or
    PUBLISH (an ACL without channels, a proxy without pub/sub), one WARNING says what to
    grant and the waiters of this cache poll the lock from then on.
    """

    def __init__(
        self, errors: tuple[type[BaseException], ...], warnings: WarnOnce, channels: str
    ) -> None:
        self._errors = errors
        self._warnings = warnings
        self._channels = channels  # the prefix of every channel, for the WARNING
        self.refused = False

    def publish(self, run: Callable[[Callable[[Any], T]], T], channel: str, message: str) -> None:
        """PUBLISH through ``run`` (the cache's way to run a command); a failure only makes
        the waiters wait longer, so it is never an outage."""
        if self.refused:
            return
        try:
            run(lambda redis: redis.client.publish(channel, message))
        except self._errors as exc:
            self._failed("PUBLISH", exc)

    def wait(
        self,
        connection: Any,
        channel: str,
        attempt: Callable[[], bool],
        *,
        lease_end: float,
        deadline: float,
        recheck: float,
    ) -> str:
        """Subscribe to ``channel`` through ``connection`` (a :class:`.Connection`), then
        :func:`wait_for_holder`; without pub/sub, poll."""
        listener = None
        if not self.refused and connection is not None:
            # TypeError, AttributeError: a client without the pub/sub we know.
            failures: tuple[type[BaseException], ...] = (
                TimeoutError,
                TypeError,
                AttributeError,
                *self._errors,
            )
            try:
                listener = listen(
                    connection.client,
                    channel,
                    cluster=connection.cluster,
                    errors=self._errors,
                    within=min(_SUBSCRIBE_WAIT, max(deadline - time.monotonic(), 0.001)),
                )
            except failures as exc:
                self._failed("SUBSCRIBE", exc)
        try:
            return wait_for_holder(
                listener,
                attempt,
                lease_end=lease_end,
                deadline=deadline,
                recheck=recheck,
                poll=POLL_INTERVAL,
            )
        finally:
            if listener is not None:
                listener.close()

    def _failed(self, command: str, exc: BaseException) -> None:
        if not is_refusal(exc):  # the connection failed: the cache's next command will tell
            logger.debug("Redis token cache: %s failed (%s)", command, type(exc).__name__)
            return
        self.refused = True
        self._warnings.warn(
            "pubsub",
            "Redis token cache: the server refused %s (%s: %s); workers waiting for "
            "another's token poll the lock instead of being told when it is stored. Allow "
            "this Redis user the channels %s* (ACL: &%s*) for an immediate hand-off.",
            command,
            type(exc).__name__,
            str(exc)[:200],
            self._channels,
            self._channels,
        )
