"""``delivery-auth demo``: every provider through every client against the emulator.

Starts an :class:`~delivery_auth.emulator.Emulator` (a local test double) and, for each
provider and each client (requests, httpx, httpx async), checks what delivery-auth
promises: the first call fetches a token, the next reuses it, a token past its
refresh time is refreshed in the background, a server-side revocation costs one
refresh and one resend (for Delivery Tracker: an ``UNAUTHENTICATED`` answer at HTTP
200), and 64 concurrent callers share one token request. Prints a table and returns
whether every check held.

Example::

    import sys
    from delivery_auth.emulator.demo import run_demo

    sys.exit(0 if run_demo(sys.stdout) else 1)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
import requests

from .server import Emulator

__all__ = ["CLIENTS", "PROVIDER_TITLES", "Row", "run_demo"]

CLIENTS: tuple[str, ...] = ("requests", "httpx", "httpx async")
PROVIDER_TITLES = {
    "tracker": "Delivery Tracker",
    "bringg": "Bringg",
    "dhl": "DHL eCommerce",
    "yandex": "Yandex Courier",
}
AUTH_TEST_QUERY = "query AuthTestQuery { carriers(first: 10) { edges { node { id name } } } }"
CONCURRENT_CALLERS = 64
#: How old a token may get in the proactive-refresh check (its ``max_token_age``).
REFRESH_AFTER = 0.3
_TIMEOUT = 10.0


@dataclass
class Row:
    """One line of the table."""

    provider: str
    client: str
    what: str
    token_requests: int | None
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class _Outcome:
    status: int
    body: Any
    history: tuple[tuple[int, Any], ...]  # (status, JSON body) of earlier responses


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


class _Calls:
    """Sends the provider's test request through one client, once or concurrently."""

    def __init__(self, emu: Emulator, provider: str, client: str) -> None:
        self.client = client
        self.url = emu.resource_url(provider)
        self.method = "POST" if provider == "tracker" else "GET"
        self.body: dict[str, str] | None = (
            {"query": AUTH_TEST_QUERY} if provider == "tracker" else None
        )

    def one(self, auth: Any) -> _Outcome:
        return self.many(auth, 1)[0]

    def many(self, auth: Any, count: int) -> list[_Outcome]:
        if self.client == "httpx async":
            return asyncio.run(self._async(auth, count))
        if self.client == "httpx":
            with httpx.Client(auth=auth, timeout=_TIMEOUT) as client:
                return self._threads(
                    count,
                    lambda: self._httpx(client.request(self.method, self.url, json=self.body)),
                )
        return self._threads(count, lambda: self._requests(auth))

    def _requests(self, auth: Any) -> _Outcome:
        response = requests.request(
            self.method, self.url, json=self.body, auth=auth, timeout=_TIMEOUT
        )
        return _Outcome(
            response.status_code,
            _json(response.content),
            tuple((old.status_code, _json(old.content)) for old in response.history),
        )

    @staticmethod
    def _httpx(response: httpx.Response) -> _Outcome:
        return _Outcome(
            response.status_code,
            _json(response.content),
            tuple(
                (old.status_code, _json(old.content) if old.is_stream_consumed else None)
                for old in response.history
            ),
        )

    @staticmethod
    def _threads(count: int, call: Callable[[], _Outcome]) -> list[_Outcome]:
        if count == 1:
            return [call()]
        barrier = threading.Barrier(count)
        results: list[_Outcome | BaseException] = [RuntimeError("no result")] * count

        def worker(index: int) -> None:
            try:
                barrier.wait()
                results[index] = call()
            except BaseException as exc:  # reported in the table, not lost in a thread
                results[index] = exc

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, _Outcome)]

    async def _async(self, auth: Any, count: int) -> list[_Outcome]:
        async with httpx.AsyncClient(auth=auth, timeout=_TIMEOUT) as client:
            responses = await asyncio.gather(
                *(client.request(self.method, self.url, json=self.body) for _ in range(count))
            )
        return [self._httpx(response) for response in responses]


def _served(provider: str, outcome: _Outcome) -> bool:
    """Did the API answer the request successfully (its own notion of success)?"""
    body = outcome.body if isinstance(outcome.body, dict) else {}
    if outcome.status != 200:
        return False
    if provider == "tracker":
        return "errors" not in body and isinstance(body.get("data"), dict)
    if provider == "bringg":
        return body.get("success") is True
    if provider == "dhl":
        return body.get("status") == "OK"
    return body.get("message") == "OK"


def _unauthenticated(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict)
        and isinstance(e.get("extensions"), dict)
        and e["extensions"].get("code") == "UNAUTHENTICATED"
        for e in errors
    )


class _Check:
    """Collects one row: the expectation text, the observed count and any failure."""

    def __init__(self, rows: list[Row], provider: str, client: str) -> None:
        self.rows = rows
        self.provider = provider
        self.client = client

    def run(self, what: str, step: Callable[[], tuple[int | None, list[str]]]) -> None:
        try:
            count, problems = step()
        except Exception as exc:  # a failed step is a FAIL row, the demo goes on
            count, problems = None, [f"{type(exc).__name__}: {exc}"]
        self.rows.append(
            Row(self.provider, self.client, what, count, not problems, "; ".join(problems))
        )


def _expect(problems: list[str], condition: bool, message: str) -> None:
    if not condition:
        problems.append(message)


def _client_credentials_rows(emu: Emulator, provider: str, client: str, rows: list[Row]) -> None:
    calls = _Calls(emu, provider, client)
    check = _Check(rows, provider, client)
    options: dict[str, Any] = {"method": "oauth2"} if provider == "tracker" else {}
    auth = emu.auth(provider, **options)

    def first() -> tuple[int | None, list[str]]:
        outcome, problems = calls.one(auth), list[str]()
        _expect(problems, _served(provider, outcome), f"HTTP {outcome.status}")
        _expect(problems, auth.token_requests == 1, "expected 1 token request")
        return auth.token_requests, problems

    def cached() -> tuple[int | None, list[str]]:
        outcome, problems = calls.one(auth), list[str]()
        _expect(problems, _served(provider, outcome), f"HTTP {outcome.status}")
        _expect(problems, auth.token_requests == 1, "the token was fetched again")
        return auth.token_requests, problems

    def revoked() -> tuple[int | None, list[str]]:
        emu.revoke(auth.get_token().access_token)
        outcome, problems = calls.one(auth), list[str]()
        _expect(problems, _served(provider, outcome), f"final answer HTTP {outcome.status}")
        _expect(problems, len(outcome.history) == 1, f"{len(outcome.history)} resends, not 1")
        if provider == "tracker" and outcome.history:
            status, body = outcome.history[0]
            _expect(problems, status == 200, f"first answer was HTTP {status}, not 200")
            _expect(problems, body is None or _unauthenticated(body), "no UNAUTHENTICATED")
        elif outcome.history:
            status = outcome.history[0][0]
            _expect(problems, status == 401, f"first answer was HTTP {status}, not 401")
        _expect(problems, auth.token_requests == 2, "expected exactly one more token request")
        return auth.token_requests, problems

    def refreshed_ahead() -> tuple[int | None, list[str]]:
        with emu.auth(provider, max_token_age=REFRESH_AFTER, **options) as young:
            problems: list[str] = []
            old = young.get_token()
            # Sleep exactly until the token reaches its refresh time (no longer).
            time.sleep(max(0.0, old.obtained_at + REFRESH_AFTER - time.monotonic()))
            outcome = calls.one(young)
            _expect(problems, _served(provider, outcome), f"HTTP {outcome.status}")
            _expect(problems, not outcome.history, "the call was rejected and resent")
            deadline = time.monotonic() + _TIMEOUT
            while young.get_token() == old and time.monotonic() < deadline:
                time.sleep(0.01)  # the background refresh runs on delivery-auth's thread
            _expect(problems, young.get_token() != old, "no background refresh happened")
            outcome = calls.one(young)
            _expect(problems, _served(provider, outcome), f"HTTP {outcome.status}")
            _expect(problems, young.token_requests == 2, f"{young.token_requests} requests")
            return young.token_requests, problems

    def concurrent() -> tuple[int | None, list[str]]:
        with emu.auth(provider, **options) as cold:
            outcomes = calls.many(cold, CONCURRENT_CALLERS)
            problems: list[str] = []
            served = sum(_served(provider, outcome) for outcome in outcomes)
            _expect(problems, served == CONCURRENT_CALLERS, f"{served} calls served")
            _expect(problems, cold.token_requests == 1, "more than one token request")
            return cold.token_requests, problems

    with auth:
        check.run("first call fetched a token", first)
        check.run("second call reused the cached token", cached)
        if provider == "tracker":
            text = "revoked: UNAUTHENTICATED at HTTP 200 -> 1 refresh, 1 resend"
        elif provider == "dhl":
            text = 'revoked: 401 "Access token expired" -> 1 refresh, 1 resend'
        else:
            text = "revoked on the server: 401 -> 1 refresh, 1 resend"
        check.run(text, revoked)
    check.run("past refresh time: served at once, refreshed in background", refreshed_ahead)
    check.run(f"{CONCURRENT_CALLERS} concurrent callers, cold start -> 1 token request", concurrent)
    if provider == "tracker":

        def api_key() -> tuple[int | None, list[str]]:
            with emu.auth("tracker", method="api_key") as keyed:
                outcome, problems = calls.one(keyed), list[str]()
                _expect(problems, _served(provider, outcome), f"HTTP {outcome.status}")
                _expect(problems, keyed.token_requests == 0, "a token was requested")
                return keyed.token_requests, problems

        check.run("API-key mode (TRACKQL-API-KEY): no token request", api_key)


def _yandex_rows(emu: Emulator, client: str, rows: list[Row]) -> None:
    calls = _Calls(emu, "yandex", client)
    check = _Check(rows, "yandex", client)
    auth = emu.auth("yandex", token=emu.issue_token("yandex"))

    def static() -> tuple[int | None, list[str]]:
        outcome, problems = calls.one(auth), list[str]()
        _expect(problems, _served("yandex", outcome), f"HTTP {outcome.status}")
        _expect(problems, auth.token_requests == 0, "a token was requested")
        return auth.token_requests, problems

    def revoked() -> tuple[int | None, list[str]]:
        emu.revoke(auth.get_token().access_token)
        outcome, problems = calls.one(auth), list[str]()
        _expect(problems, _served("yandex", outcome), f"final answer HTTP {outcome.status}")
        _expect(problems, [h[0] for h in outcome.history] == [401], "not exactly one 401")
        _expect(problems, auth.token_requests == 1, "expected one renewal")
        return auth.token_requests, problems

    def banned() -> tuple[int | None, list[str]]:
        emu.yandex_company_banned = True
        try:
            outcome, problems = calls.one(auth), list[str]()
        finally:
            emu.yandex_company_banned = False
        _expect(problems, outcome.status == 403, f"HTTP {outcome.status}, not 403")
        _expect(problems, not outcome.history, "a 403 was retried")
        _expect(problems, auth.token_requests == 1, "a 403 caused a renewal")
        return auth.token_requests, problems

    def concurrent() -> tuple[int | None, list[str]]:
        stale = emu.issue_token("yandex")
        emu.revoke(stale)
        with emu.auth("yandex", token=stale) as shared:
            outcomes = calls.many(shared, CONCURRENT_CALLERS)
            problems: list[str] = []
            served = sum(_served("yandex", outcome) for outcome in outcomes)
            _expect(problems, served == CONCURRENT_CALLERS, f"{served} calls served")
            _expect(problems, shared.token_requests == 1, "more than one renewal")
            return shared.token_requests, problems

    with auth:
        check.run("static OAuth token used as is, nothing to fetch", static)
        check.run("revoked: 401 -> renewed with the refresh token, 1 resend", revoked)
        check.run("company banned: 403 returned as is, no renewal", banned)
    check.run(f"revoked, {CONCURRENT_CALLERS} concurrent callers -> 1 renewal", concurrent)


def collect_rows(emu: Emulator, providers: Sequence[str], clients: Sequence[str]) -> list[Row]:
    """Run every check against a running emulator; one :class:`Row` per check."""
    rows: list[Row] = []
    for provider in providers:
        for client in clients:
            if provider == "yandex":
                _yandex_rows(emu, client, rows)
            else:
                _client_credentials_rows(emu, provider, client, rows)
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table (provider and client shown when they change)."""
    header = ("PROVIDER", "CLIENT", "WHAT HAPPENED", "TOKEN REQUESTS", "RESULT")
    lines: list[tuple[str, ...]] = []
    previous: tuple[str, str] = ("", "")
    for row in rows:
        provider = PROVIDER_TITLES.get(row.provider, row.provider)
        shown = (
            provider if row.provider != previous[0] else "",
            row.client if (row.provider, row.client) != previous else "",
        )
        previous = (row.provider, row.client)
        count = "-" if row.token_requests is None else str(row.token_requests)
        result = "ok" if row.ok else f"FAIL ({row.detail})"
        lines.append((*shown, row.what, count, result))
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
    out = []
    for index, line in enumerate([header, *lines]):
        if index > 1 and line[0]:
            out.append("")
        cells = [line[i].ljust(widths[i]) if i != 3 else line[i].rjust(widths[i]) for i in range(4)]
        out.append("  ".join([*cells, line[4]]).rstrip())
    return "\n".join(out)


def run_demo(
    out: TextIO,
    *,
    providers: Sequence[str] = tuple(PROVIDER_TITLES),
    clients: Sequence[str] = CLIENTS,
) -> bool:
    """Run the demo, print the table to ``out``; ``True`` when every check held."""
    started = time.monotonic()
    with Emulator(token_ttl=3600) as emu:
        print(
            f"delivery-auth demo: {len(providers)} provider(s) x {len(clients)} client(s) "
            f"against the built-in emulator,\na local test double at {emu.base_url} "
            "(nothing leaves this machine).\n",
            file=out,
            flush=True,
        )
        rows = collect_rows(emu, providers, clients)
    print(format_table(rows), file=out)
    failed = [row for row in rows if not row.ok]
    elapsed = time.monotonic() - started
    if failed:
        print(f"\n{len(failed)} of {len(rows)} checks FAILED ({elapsed:.1f} s).", file=out)
    else:
        print(f"\nAll {len(rows)} checks held ({elapsed:.1f} s).", file=out)
    return not failed
