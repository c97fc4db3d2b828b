"""``delivery-auth demo``: every provider through every client against the emulator.

Starts an :class:`~delivery_auth.emulator.Emulator` (a local test double) and, for each
registered provider and each client (requests, httpx, httpx async), checks what
delivery-auth promises: the first call fetches a token, the next reuses it, a token past
its refresh time is refreshed in the background, a server-side revocation costs one
refresh and one resend (answered the provider's way, e.g. Delivery Tracker's
``UNAUTHENTICATED`` at HTTP 200), and 64 concurrent callers share one token request.
What differs between providers (the request to send, what success and a rejection look
like, the provider's own rows) comes from its emulator page (``PAGE.demo``); the demo is
a client of the emulator and names no provider. Prints a table and returns whether
every check held.

Example::

    import sys
    from delivery_auth.demo import run_demo

    sys.exit(0 if run_demo(sys.stdout) else 1)
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
import requests

from .emulator import Emulator
from .emulator.page import DemoCheck, Page, page_of
from .providers.spec import registry

__all__ = ["CLIENTS", "OPTIONAL_CLIENTS", "Row", "run_demo"]

CLIENTS: tuple[str, ...] = ("requests", "httpx", "httpx async")
#: Clients the demo drives only when asked (``--client aiohttp``): optional dependencies.
OPTIONAL_CLIENTS: tuple[str, ...] = ("aiohttp",)
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

    def __init__(self, emu: Emulator, page: Page, client: str) -> None:
        self.client = client
        self.url = emu.resource_url(page.name)
        self.method = page.resource_method
        self.body: Any = page.resource_body
        #: whether the client records a resend in the response's history (aiohttp
        #: keeps no record of a resend made by a middleware)
        self.keeps_history = client != "aiohttp"

    def one(self, auth: Any) -> _Outcome:
        return self.many(auth, 1)[0]

    def many(self, auth: Any, count: int) -> list[_Outcome]:
        if self.client == "httpx async":
            return asyncio.run(self._async(auth, count))
        if self.client == "aiohttp":
            return asyncio.run(self._aiohttp(auth, count))
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

    async def _aiohttp(self, auth: Any, count: int) -> list[_Outcome]:
        import aiohttp

        from .aiohttp import AuthMiddleware

        async def one(session: aiohttp.ClientSession) -> _Outcome:
            async with session.request(self.method, self.url, json=self.body) as response:
                # aiohttp keeps no history of a resend made by a middleware: a resend
                # is seen in the emulator's counters and the auth object's.
                return _Outcome(response.status, _json(await response.read()), ())

        timeout = aiohttp.ClientTimeout(total=_TIMEOUT)
        middleware = AuthMiddleware(auth)
        async with aiohttp.ClientSession(middlewares=(middleware,), timeout=timeout) as session:
            return list(await asyncio.gather(*(one(session) for _ in range(count))))


def _served(page: Page, outcome: _Outcome) -> bool:
    """Did the API answer the request successfully (its own notion of success)?"""
    return outcome.status == 200 and page.served(outcome.body)


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


class _Provider:
    """The rows of one provider through one client: what its page's demo plan asks."""

    def __init__(self, emu: Emulator, provider: str, client: str, rows: list[Row]) -> None:
        self.emu = emu
        self.page = page_of(provider)
        self.plan = self.page.demo
        self.calls = _Calls(emu, self.page, client)
        self.check = _Check(rows, provider, client)

    def auth(self, **options: Any) -> Any:
        return self.emu.auth(self.page.name, **{**self.plan.options, **options})

    def served(self, outcome: _Outcome) -> bool:
        return _served(self.page, outcome)

    def run(self) -> None:
        given = self.plan.token_option
        if given is None:
            auth = self.auth()
        else:  # a token users already have; fresh, so revoking it spares the others
            auth = self.auth(**{given: self.emu.issue_token(self.page.name)})
        start = 0 if given is not None else 1
        renewed = start + 1 if self.plan.renewable else start
        with auth:
            self.check.run(self.plan.first, lambda: self.first(auth, start))
            if given is None:
                self.check.run("second call reused the cached token", lambda: self.cached(auth))
            self.check.run(self.plan.revoked, lambda: self.revoked(auth, renewed))
            for row in self.plan.extra:
                if row.options is None:
                    self.check.run(row.what, functools.partial(self.page_row, auth, row))
        if given is None:
            if self.plan.refresh_ahead:
                self.check.run(
                    "past refresh time: served at once, refreshed in background",
                    self.refreshed_ahead,
                )
            self.check.run(
                f"{CONCURRENT_CALLERS} concurrent callers, cold start -> 1 token request",
                lambda: self.concurrent(self.auth()),
            )
        elif not self.plan.renewable:
            self.check.run(
                f"{CONCURRENT_CALLERS} concurrent callers -> no token request",
                lambda: self.concurrent(
                    self.auth(**{given: self.emu.issue_token(self.page.name)}), expected=0
                ),
            )
        else:
            stale = self.emu.issue_token(self.page.name)
            self.emu.revoke(stale)
            self.check.run(
                f"revoked, {CONCURRENT_CALLERS} concurrent callers -> 1 renewal",
                lambda: self.concurrent(self.auth(**{given: stale})),
            )
        for row in self.plan.extra:
            if row.options is not None:
                self.check.run(row.what, functools.partial(self.page_row, None, row))

    def first(self, auth: Any, expected: int) -> tuple[int | None, list[str]]:
        outcome, problems = self.calls.one(auth), list[str]()
        _expect(problems, self.served(outcome), f"HTTP {outcome.status}")
        wrong = "a token was requested" if expected == 0 else "expected 1 token request"
        _expect(problems, auth.token_requests == expected, wrong)
        return auth.token_requests, problems

    def cached(self, auth: Any) -> tuple[int | None, list[str]]:
        outcome, problems = self.calls.one(auth), list[str]()
        _expect(problems, self.served(outcome), f"HTTP {outcome.status}")
        _expect(problems, auth.token_requests == 1, "the token was fetched again")
        return auth.token_requests, problems

    def revoked(self, auth: Any, expected: int) -> tuple[int | None, list[str]]:
        if self.plan.revoke == "fault":
            self.emu.inject_fault(self.page.name, "auth_failure", endpoint="resource")
        else:
            self.emu.revoke(auth.get_token().access_token)
        stats, name = self.emu.stats, self.page.name
        rejected_before, sent_before = stats.auth_failures[name], stats.resource_requests[name]
        outcome, problems = self.calls.one(auth), list[str]()
        rejected = stats.auth_failures[name] - rejected_before
        sends = stats.resource_requests[name] - sent_before
        rejection = self.page.rejection
        if not self.plan.renewable:  # nothing to renew: the rejection comes back as it is
            _expect(
                problems,
                rejection.matches(outcome.status, outcome.body),
                f"answer HTTP {outcome.status}, not {rejection.text}",
            )
            _expect(problems, sends == 1 and not outcome.history, "the rejected call was resent")
        else:
            _expect(problems, self.served(outcome), f"final answer HTTP {outcome.status}")
            # What the emulator saw: one rejection, then the resend it served.
            _expect(problems, (rejected, sends) == (1, 2), f"{sends - 1} resends, not 1")
            if outcome.history:  # the client's own record (requests, httpx) agrees
                _expect(
                    problems, len(outcome.history) == 1, f"{len(outcome.history)} resends, not 1"
                )
                status, body = outcome.history[0]
                _expect(
                    problems,
                    status == rejection.status,
                    f"first answer was HTTP {status}, not {rejection.status}",
                )
                _expect(
                    problems, rejection.matches(rejection.status, body), f"not {rejection.text}"
                )
            elif self.calls.keeps_history:
                problems.append("the resend is missing from the response's history")
        more = "exactly one more token request" if self.plan.renewable else "no token request"
        _expect(problems, auth.token_requests == expected, f"expected {more}")
        return auth.token_requests, problems

    def refreshed_ahead(self) -> tuple[int | None, list[str]]:
        with self.auth(max_token_age=REFRESH_AFTER) as young:
            problems: list[str] = []
            old = young.get_token()
            # Sleep exactly until the token reaches its refresh time (no longer).
            time.sleep(max(0.0, old.obtained_at + REFRESH_AFTER - time.monotonic()))
            outcome = self.calls.one(young)
            _expect(problems, self.served(outcome), f"HTTP {outcome.status}")
            _expect(problems, not outcome.history, "the call was rejected and resent")
            deadline = time.monotonic() + _TIMEOUT
            while young.get_token() == old and time.monotonic() < deadline:
                time.sleep(0.01)  # the background refresh runs on delivery-auth's thread
            _expect(problems, young.get_token() != old, "no background refresh happened")
            outcome = self.calls.one(young)
            _expect(problems, self.served(outcome), f"HTTP {outcome.status}")
            _expect(problems, young.token_requests == 2, f"{young.token_requests} requests")
            return young.token_requests, problems

    def concurrent(self, cold: Any, expected: int = 1) -> tuple[int | None, list[str]]:
        with cold:
            outcomes = self.calls.many(cold, CONCURRENT_CALLERS)
            problems: list[str] = []
            served = sum(self.served(outcome) for outcome in outcomes)
            _expect(problems, served == CONCURRENT_CALLERS, f"{served} calls served")
            _expect(
                problems, cold.token_requests == expected, f"{cold.token_requests} token requests"
            )
            return cold.token_requests, problems

    def page_row(self, auth: Any, check: DemoCheck) -> tuple[int | None, list[str]]:
        """A row the page adds: one call (its settings set meanwhile), then its counts."""
        own = auth is None
        if own:
            auth = self.auth(**dict(check.options or {}))
        try:
            before = {name: getattr(self.emu, name) for name in check.settings}
            for name, value in check.settings.items():
                setattr(self.emu, name, value)
            calls = self.calls
            if check.path is not None:
                calls = _Calls(self.emu, self.page, self.calls.client)
                calls.url = self.emu.url(self.page.name, check.path)
            try:
                outcome, problems = calls.one(auth), list[str]()
            finally:
                for name, value in before.items():
                    setattr(self.emu, name, value)
            if check.status is None:
                _expect(problems, self.served(outcome), f"HTTP {outcome.status}")
            else:
                status = outcome.status
                _expect(problems, status == check.status, f"HTTP {status}, not {check.status}")
                _expect(problems, not outcome.history, f"a {check.status} was retried")
            _expect(
                problems,
                auth.token_requests == check.token_requests,
                f"{auth.token_requests} token requests, not {check.token_requests}",
            )
            return auth.token_requests, problems
        finally:
            if own:
                auth.close()


def collect_rows(emu: Emulator, providers: Sequence[str], clients: Sequence[str]) -> list[Row]:
    """Run every check against a running emulator; one :class:`Row` per check."""
    rows: list[Row] = []
    for provider in providers:
        for client in clients:
            _Provider(emu, provider, client, rows).run()
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table (provider and client shown when they change)."""
    header = ("PROVIDER", "CLIENT", "WHAT HAPPENED", "TOKEN REQUESTS", "RESULT")
    lines: list[tuple[str, ...]] = []
    previous: tuple[str, str] = ("", "")
    for row in rows:
        spec = registry().get(row.provider)
        provider = spec.title if spec is not None else row.provider
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
    providers: Sequence[str] | None = None,
    clients: Sequence[str] = CLIENTS,
) -> bool:
    """Run the demo, print the table to ``out``; ``True`` when every check held.

    ``providers``: short names (``None``: every registered provider)."""
    providers = tuple(registry()) if providers is None else providers
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
