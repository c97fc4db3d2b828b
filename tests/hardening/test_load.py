"""Load: many threads share one auth object per provider against the emulator, with 1 s
token lifetimes and random server-side revocations.

Asserted: no call raises; every call that fails was failed by the test itself, i.e. the
token of its last attempt is one the test revoked (the emulator, asked after the run,
says "revoked" — not "expired", not anything else); token requests stay within the bound
below; no delivery-auth thread is left after close().

Size: ``HARDENING_LOAD_THREADS`` x ``HARDENING_LOAD_CALLS`` (default 64 x 40: about 4 s
of load plus 1 s to start the emulator process, on 2 cores). The issue's full 64 x 2000
runs with ``HARDENING_LOAD_CALLS=2000`` (measured: 180 s at 713 calls/s, too long for
the default test command). The emulator runs in a child process so that it does not
share the interpreter lock with the 64 client threads.

The token-request bound, per provider, for a run of D seconds with R revocations:
a cold start (1); refreshes ahead of expiry, at most one per half lifetime (each new token
is refreshed once refresh_ratio=0.5 of its 1 s lifetime has passed: 2 per second, +1 for
the partial period); and one per revocation (compare-and-refresh: every caller rejected
with the same dead token shares one new token). Yandex tokens do not age: 1 + R.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests

from delivery_auth import BackoffPolicy

from .harness import API_PATHS, JSON, PROVIDERS, body_for
from .remote import RemoteEmulator

THREADS = int(os.environ.get("HARDENING_LOAD_THREADS", "64"))
CALLS = int(os.environ.get("HARDENING_LOAD_CALLS", "40"))
TTL = 1.0


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    ok: int = 0
    #: (provider, access token of the last attempt, summary) of every failed call
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    raised: list[str] = field(default_factory=list)


class Revoker:
    """Revokes every token of every provider at random moments; counts the revocations."""

    def __init__(self, emu: RemoteEmulator, stop: threading.Event) -> None:
        self.emu = emu
        self.stop = stop
        self.revocations = 0
        self.thread = threading.Thread(target=self.run, name="hardening-revoker", daemon=True)

    def run(self) -> None:
        rng = random.Random(7)
        while not self.stop.wait(rng.uniform(0.2, 0.6)):
            self.emu.revoke_all()
            self.revocations += 1


def _worker(
    index: int, emu: RemoteEmulator, auths: dict[str, Any], tally: Tally, start: threading.Barrier
) -> None:
    provider = PROVIDERS[index % len(PROVIDERS)]
    url = emu.url(provider, API_PATHS[provider])
    body = body_for(provider)
    auth = auths[provider]
    use_httpx = index % 2 == 1
    client: Any = httpx.Client(auth=auth, timeout=30) if use_httpx else requests.Session()
    if not use_httpx:
        client.auth = auth
    start.wait(30)
    try:
        for _ in range(CALLS):
            try:
                if use_httpx:
                    r = client.post(url, content=body, headers=JSON)
                else:
                    r = client.post(url, data=body, headers=JSON, timeout=30)
                status, text = r.status_code, r.text
                sent = r.request.headers.get("Authorization") or ""
            except Exception as exc:
                with tally.lock:
                    tally.calls += 1
                    tally.raised.append(f"{provider}: {type(exc).__name__}: {exc}")
                continue
            ok = status == 200 and '"errors"' not in text
            with tally.lock:
                tally.calls += 1
                if ok:
                    tally.ok += 1
                else:
                    token = sent.partition(" ")[2]
                    tally.failed.append((provider, token, f"HTTP {status} {text[:100]}"))
    finally:
        client.close()


def _ours(threads: list[threading.Thread]) -> list[str]:
    return [t.name for t in threads if t.name.startswith("delivery-auth") and t.is_alive()]


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


@pytest.mark.timeout(900)
def test_load_with_short_lived_tokens_and_random_revocations(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    before = set(threading.enumerate())
    backoff = BackoffPolicy(attempts=3, base_delay=0.001, max_delay=0.01)
    tally = Tally()
    stop = threading.Event()
    emu = RemoteEmulator(token_ttl=TTL)
    try:
        auths = {
            p: emu.auth(p, backoff=backoff, **({"method": "oauth2"} if p == "tracker" else {}))
            for p in PROVIDERS
        }
        revoker = Revoker(emu, stop)
        start = threading.Barrier(THREADS + 1)
        workers = [
            threading.Thread(
                target=_worker, args=(i, emu, auths, tally, start), name=f"hardening-load-{i}"
            )
            for i in range(THREADS)
        ]
        for worker in workers:
            worker.start()
        start.wait(30)
        began = time.monotonic()
        revoker.thread.start()
        finished = threading.Event()
        joiner = threading.Thread(target=lambda: (_join(workers), finished.set()), daemon=True)
        joiner.start()
        assert finished.wait(840), "hang: load workers did not finish"
        duration = time.monotonic() - began
        stop.set()
        revoker.thread.join(10)
        revocations = revoker.revocations
        stats = emu.stats()
        verdicts = emu.classify([(p, token) for p, token, _ in tally.failed])
        for auth in auths.values():
            auth.close()
    finally:
        stop.set()
        emu.close()
    left = _ours([t for t in threading.enumerate() if t not in before])
    assert left == [], f"threads left running after close(): {left}"

    token_requests = stats["token_requests"]
    why = collections.Counter(verdicts)
    unexplained = [
        f"{p}: {summary} (token {verdict})"
        for (p, _, summary), verdict in zip(tally.failed, verdicts, strict=True)
        if verdict != "revoked"
    ]
    ageing = 2 + 2 * duration / TTL
    bound = {p: int(ageing + revocations) + 1 for p in PROVIDERS if p != "yandex"}
    bound["yandex"] = 1 + revocations
    print(
        f"\nload: {THREADS} threads x {CALLS} calls in {duration:.1f} s "
        f"({tally.calls / duration:.0f} calls/s), {revocations} revocations; "
        f"failed calls by the verdict on their last token: {dict(why)}; "
        f"token requests {token_requests} (bounds {bound}); "
        f"API requests {stats['resource_requests']}"
    )
    assert tally.raised == [], tally.raised[:5]
    assert tally.calls == THREADS * CALLS
    assert unexplained == [], unexplained[:5]
    # Revocations are answered by one retry: only calls caught between two of them fail.
    assert why["revoked"] <= tally.calls // 10, why
    for provider in PROVIDERS:
        assert token_requests[provider] <= bound[provider], (provider, token_requests, bound)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
