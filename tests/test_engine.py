"""The token engine under concurrency: single flight, refresh-ahead, compare-and-refresh,
clock jumps, event loops, fork and close. Real threads, real loops, a real token endpoint."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import trio
import trio.lowlevel
from conftest import CLIENTS, call
from loopback import LoopbackServer, Reply

from delivery_auth import ClientCredentialsAuth, DeliveryAuthError, MemoryTokenCache, Token
from delivery_auth.cache import cache_key

MakeAuth = Callable[..., ClientCredentialsAuth]
#: httpx's async pool slows down with hundreds of queued waiters; a few connections suffice.
FEW = httpx.Limits(max_connections=20)
#: For hundreds of requests through those few connections: the last one waits for a
#: connection while all the others are served, which takes as long as the machine is slow.
#: No limit on that wait (a hang still ends at pytest's timeout).
QUEUED = httpx.Timeout(30, pool=None)
#: Waits that only a hang reaches: what they wait for takes milliseconds on an idle machine.
HANG = 60.0


class Arrivals:
    """Opens ``gate`` once ``expected`` callers have asked the engine for a token."""

    def __init__(self, expected: int, gate: threading.Event) -> None:
        self.expected = expected
        self.gate = gate
        self.count = 0
        self.lock = threading.Lock()

    def arrive(self) -> None:
        with self.lock:
            self.count += 1
            if self.count == self.expected:
                self.gate.set()

    def watch(self, auth: ClientCredentialsAuth) -> None:
        engine = auth._engine
        current, acurrent = engine.current, engine.acurrent

        def counted() -> Any:
            self.arrive()
            return current()

        async def acounted() -> Any:
            self.arrive()
            return await acurrent()

        engine.current = counted  # type: ignore[method-assign]
        engine.acurrent = acounted  # type: ignore[method-assign]


def hold_token_endpoint(server: LoopbackServer, auth: ClientCredentialsAuth, callers: int) -> None:
    gate = threading.Event()
    server.state.token_gate = gate
    Arrivals(callers, gate).watch(auth)


def seed(
    auth: ClientCredentialsAuth, server: LoopbackServer, cache: MemoryTokenCache, **token: Any
) -> Token:
    """Put a token the server accepts into ``cache``, as if obtained ``age`` seconds ago."""
    age = token.pop("age")
    seeded = Token("seeded-token", obtained_at=time.monotonic() - age, **token)
    server.state.valid.add(seeded.access_token)
    fetcher = auth._fetcher
    key = cache_key(fetcher.token_url, fetcher.client_id, fetcher._client_secret, None, {})
    cache.set(key, seeded)
    return seeded


class TestSingleFlight:
    @pytest.mark.parametrize("client", ["requests", "httpx"])
    def test_64_threads_cold_start_one_token_request(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        auth = make_auth(timeout=HANG)  # its token request is held at the gate
        hold_token_endpoint(server, auth, 64)
        results: list[int] = []
        session = requests.Session()
        hclient = httpx.Client(auth=auth)

        def worker() -> None:
            if client == "requests":
                results.append(session.get(server.url(), auth=auth).status_code)
            else:
                results.append(hclient.get(server.url()).status_code)

        threads = [threading.Thread(target=worker) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG)
        hclient.close()
        assert results == [200] * 64
        assert len(server.state.token_requests) == 1
        assert auth.token_requests == 1

    def test_500_coroutines_asyncio_one_token_request(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(timeout=HANG)  # its token request is held at the gate
        hold_token_endpoint(server, auth, 500)

        async def main() -> list[int]:
            async with httpx.AsyncClient(auth=auth, timeout=QUEUED, limits=FEW) as client:
                responses = await asyncio.gather(*(client.get(server.url()) for _ in range(500)))
            return [r.status_code for r in responses]

        assert asyncio.run(main()) == [200] * 500
        assert len(server.state.token_requests) == 1

    def test_500_coroutines_trio_one_token_request(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(timeout=HANG)  # its token request is held at the gate
        hold_token_endpoint(server, auth, 500)
        statuses: list[int] = []

        async def main() -> None:
            async with httpx.AsyncClient(auth=auth, timeout=QUEUED, limits=FEW) as client:

                async def one() -> None:
                    statuses.append((await client.get(server.url())).status_code)

                async with trio.open_nursery() as nursery:
                    for _ in range(500):
                        nursery.start_soon(one)

        trio.run(main)
        assert statuses == [200] * 500
        assert len(server.state.token_requests) == 1

    def test_threads_asyncio_and_trio_mixed(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(timeout=HANG)  # its token request is held at the gate
        hold_token_endpoint(server, auth, 16 + 50 + 50)
        statuses: list[int] = []

        def thread_worker() -> None:
            statuses.append(requests.get(server.url(), auth=auth).status_code)

        async def many() -> None:
            async with httpx.AsyncClient(auth=auth, timeout=30) as client:
                for r in await asyncio.gather(*(client.get(server.url()) for _ in range(50))):
                    statuses.append(r.status_code)

        async def many_trio() -> None:
            async with httpx.AsyncClient(auth=auth, timeout=30) as client, trio.open_nursery() as n:
                for _ in range(50):

                    async def one() -> None:
                        statuses.append((await client.get(server.url())).status_code)

                    n.start_soon(one)

        threads = [threading.Thread(target=thread_worker) for _ in range(16)]
        threads.append(threading.Thread(target=asyncio.run, args=(many(),)))
        threads.append(threading.Thread(target=trio.run, args=(many_trio,)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG)
        assert statuses == [200] * 116
        assert len(server.state.token_requests) == 1

    def test_waiters_share_the_leaders_error(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(timeout=HANG)  # its token request is held at the gate
        hold_token_endpoint(server, auth, 8)
        server.state.token_script.append(Reply(401, {"error": "invalid_client"}))
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                auth.get_token()
            except DeliveryAuthError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG)
        assert len(errors) == 8
        assert all(type(e).__name__ == "InvalidClientError" for e in errors)
        assert len(server.state.token_requests) == 1


class TestCompareAndRefresh:
    @pytest.mark.parametrize("client", ["requests", "httpx", "httpx-async", "httpx2"])
    def test_revoked_token_one_extra_token_request(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        auth = make_auth()
        assert call(client, auth, "GET", server.url()).status == 200
        server.state.revoke_all()
        result = call(client, auth, "GET", server.url())
        assert (result.status, result.history) == (200, [401])
        assert len(server.state.token_requests) == 2
        assert len(server.state.api_requests) == 3

    def test_16_threads_hit_by_one_revocation_refresh_once(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        assert call("requests", auth, "GET", server.url()).status == 200
        server.state.revoke_all()
        # Every thread sends the revoked token before anyone refreshes.
        barrier = threading.Barrier(16)
        server.state.api_script.clear()
        original = auth._engine.invalidate

        def invalidate_after_all_failed(token: Token) -> bool:
            barrier.wait(HANG)
            return original(token)

        auth._engine.invalidate = invalidate_after_all_failed  # type: ignore[method-assign]
        statuses: list[int] = []
        session = requests.Session()

        def worker() -> None:
            statuses.append(session.get(server.url(), auth=auth).status_code)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG)
        assert statuses == [200] * 16
        assert len(server.state.token_requests) == 2

    def test_a_stale_failure_does_not_discard_the_fresh_token(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()
        old = auth.get_token()
        server.state.revoke_all()
        assert auth._engine.invalidate(old)
        fresh = auth.get_token()
        assert fresh != old
        # A late caller reports the old token as rejected: the fresh one stays.
        assert auth._engine.invalidate(old)
        assert auth.get_token() == fresh
        assert len(server.state.token_requests) == 2


class TestExpiryPolicy:
    @pytest.mark.parametrize("client", CLIENTS)
    def test_refresh_ahead_nobody_waits(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        cache = MemoryTokenCache()
        auth = make_auth(cache=cache, timeout=HANG)  # its token request is held at the gate
        seeded = seed(auth, server, cache, lifetime=3600, age=2000)  # past half-life
        gate = threading.Event()
        server.state.token_gate = gate
        # The token endpoint is held: every call must still succeed with the seeded token.
        for _ in range(5):
            assert call(client, auth, "GET", server.url()).status == 200
        assert server.state.token_arrived.wait(HANG)
        flight = auth._engine._flight
        assert flight is not None
        sent = {s.headers["Authorization"] for s in server.state.api_requests}
        assert sent == {f"Bearer {seeded.access_token}"}
        assert len(server.state.token_requests) == 1
        gate.set()
        flight.result(HANG)
        assert auth.get_token() != seeded
        assert call("httpx", auth, "GET", server.url()).status == 200
        assert (
            server.state.api_requests[-1].headers["Authorization"]
            != f"Bearer {seeded.access_token}"
        )
        assert len(server.state.token_requests) == 1

    @pytest.mark.parametrize("client", CLIENTS)
    def test_token_within_margin_is_never_sent(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        cache = MemoryTokenCache()
        auth = make_auth(cache=cache, refresh_margin=60)
        seeded = seed(auth, server, cache, lifetime=3600, age=3600 - 30)
        assert call(client, auth, "GET", server.url()).status == 200
        assert (
            server.state.api_requests[0].headers["Authorization"] != f"Bearer {seeded.access_token}"
        )
        assert len(server.state.token_requests) == 1

    @pytest.mark.parametrize("client", CLIENTS)
    def test_zero_margin_sends_until_expiry(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        cache = MemoryTokenCache()
        auth = make_auth(cache=cache, refresh_margin=0, refresh_ratio=1)
        seeded = seed(auth, server, cache, lifetime=3600, age=3600 - 30)
        assert call(client, auth, "GET", server.url()).status == 200
        assert (
            server.state.api_requests[0].headers["Authorization"] == f"Bearer {seeded.access_token}"
        )
        assert server.state.token_requests == []

    @pytest.mark.parametrize("client", CLIENTS)
    def test_token_without_lifetime_is_kept_until_rejected(
        self, server: LoopbackServer, make_auth: MakeAuth, client: str
    ) -> None:
        server.state.expires_in = None
        auth = make_auth()
        for _ in range(3):
            assert call(client, auth, "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 1
        assert auth.get_token().lifetime is None
        server.state.revoke_all()
        assert call(client, auth, "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 2

    @pytest.mark.parametrize("jump", [+86400 * 365, -86400 * 365])
    def test_wall_clock_jumps_change_nothing(
        self,
        server: LoopbackServer,
        make_auth: MakeAuth,
        monkeypatch: pytest.MonkeyPatch,
        jump: int,
    ) -> None:
        auth = make_auth()
        assert call("requests", auth, "GET", server.url()).status == 200
        real = time.time
        monkeypatch.setattr(time, "time", lambda: real() + jump)
        for _ in range(3):
            assert call("requests", auth, "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 1

    def test_failed_background_refresh_keeps_the_token(
        self, server: LoopbackServer, make_auth: MakeAuth, caplog: pytest.LogCaptureFixture
    ) -> None:
        cache = MemoryTokenCache()
        auth = make_auth(cache=cache)
        seeded = seed(auth, server, cache, lifetime=3600, age=2000)
        server.state.token_script.extend([Reply(503, b"")] * 3)
        assert auth.get_token() == seeded  # adopts the seeded token
        assert auth.get_token() == seeded  # starts the background refresh
        flight = auth._engine._flight
        assert flight is not None
        with pytest.raises(DeliveryAuthError):
            flight.result(HANG)
        assert auth.get_token() == seeded
        assert call("requests", auth, "GET", server.url()).status == 200
        assert len(server.state.token_requests) == 3  # one flight, three attempts, then a pause
        assert any("ahead of expiry failed" in r.getMessage() for r in caplog.records)


class TestEventLoops:
    def test_async_never_blocks_the_loop(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        auth = make_auth(timeout=HANG)  # its token request is held at the gate
        gate = threading.Event()
        server.state.token_gate = gate

        async def main() -> bool:
            async with httpx.AsyncClient(auth=auth) as client:
                request = asyncio.create_task(client.get(server.url()))
                await asyncio.to_thread(server.state.token_arrived.wait, HANG)
                ticks = 0
                for _ in range(100):  # the loop runs while the token request is held
                    await asyncio.sleep(0)
                    ticks += 1
                held_while_ticking = not gate.is_set()
                gate.set()
                response = await request
                return held_while_ticking and ticks == 100 and response.status_code == 200

        assert asyncio.run(main())

    def test_trio_never_blocks_the_loop(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        auth = make_auth(timeout=HANG)  # its token request is held at the gate
        gate = threading.Event()
        server.state.token_gate = gate
        outcome: dict[str, Any] = {}

        async def main() -> None:
            async with httpx.AsyncClient(auth=auth) as client, trio.open_nursery() as nursery:

                async def get() -> None:
                    outcome["status"] = (await client.get(server.url())).status_code

                nursery.start_soon(get)
                await trio.to_thread.run_sync(server.state.token_arrived.wait, HANG)
                for _ in range(100):
                    await trio.lowlevel.checkpoint()
                outcome["held"] = not gate.is_set()
                gate.set()

        trio.run(main)
        assert outcome == {"status": 200, "held": True}

    def test_one_object_across_several_loops(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth()

        async def get() -> int:
            async with httpx.AsyncClient(auth=auth) as client:
                return (await client.get(server.url())).status_code

        assert asyncio.run(get()) == 200
        server.state.revoke_all()
        assert asyncio.run(get()) == 200  # a retry on a second loop
        server.state.revoke_all()
        assert trio.run(get) == 200
        assert len(server.state.token_requests) == 3


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_gets_fresh_locks(server: LoopbackServer, make_auth: MakeAuth) -> None:
    auth = make_auth()
    assert call("requests", auth, "GET", server.url()).status == 200
    server.state.revoke_all()
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with auth._engine._guard:
            held.set()
            release.wait(HANG)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert held.wait(HANG)
    pid = os.fork()
    if pid == 0:  # child: the parent's lock holder does not exist here
        signal.alarm(int(HANG))
        try:
            ok = requests.get(server.url(), auth=auth, timeout=HANG / 2).status_code == 200
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    release.set()
    holder.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(server.state.token_requests) == 2  # the child's refresh


def test_close_leaves_no_work_behind_and_spares_the_shared_pool(
    server: LoopbackServer, make_auth: MakeAuth
) -> None:
    """The background refresh runs on the pool shared by every auth object: close()
    leaves none of this object's work queued or running, and the pool serves others on."""
    cache = MemoryTokenCache()
    auth = make_auth(cache=cache)
    seed(auth, server, cache, lifetime=3600, age=2000)
    auth.get_token()
    auth.get_token()  # starts the background refresh
    flight = auth._engine._flight
    assert flight is not None
    flight.result(HANG)
    auth.close()
    assert not auth._engine._jobs  # nothing of this object queued or running
    with pytest.raises(DeliveryAuthError, match="closed"):
        requests.get(server.url(), auth=auth)
    other = make_auth()
    assert asyncio.run(other.aget_token()).access_token  # its token request runs on the pool


def test_context_managers(server: LoopbackServer) -> None:
    from loopback import CLIENT_ID, CLIENT_SECRET

    with ClientCredentialsAuth(server.token_url, CLIENT_ID, CLIENT_SECRET) as auth:
        assert requests.get(server.url(), auth=auth).status_code == 200
    with pytest.raises(DeliveryAuthError, match="closed"):
        auth.get_token()

    async def main() -> None:
        async with ClientCredentialsAuth(server.token_url, CLIENT_ID, CLIENT_SECRET) as a:
            assert (await a.aget_token()).access_token
        with pytest.raises(DeliveryAuthError, match="closed"):
            await a.aget_token()

    asyncio.run(main())
