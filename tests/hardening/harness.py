"""The rig of the hardening suite: the real emulator, with scripted answers and records.

:class:`Rig` wraps each provider handler of a running :class:`Emulator`:

- a queue of scripted token answers and API answers per provider (anything the
  emulator's own fault knobs cannot say: an empty body, a JSON array, an odd
  ``expires_in``, a reset in the middle of the body, a redirect ...);
- a server-side record of every request (what path, which ``Authorization``, which
  body), so that tests count token requests and resends where they happen;
- the set of every token it ever handed out, for the leak scans.

Every call a test makes goes through :func:`bounded`: a hang fails the test after a
bounded wait instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest
import requests
from werkzeug.wrappers import Request, Response

from delivery_auth import BackoffPolicy, ClientCredentialsAuth
from delivery_auth.emulator import CREDENTIALS, Emulator
from delivery_auth.emulator.app import ConnectionResetFault
from delivery_auth.emulator.page import pages
from delivery_auth.providers.spec import registry

T = TypeVar("T")

PROVIDERS = tuple(registry())
PAGES = pages()
#: The providers with a token endpoint (static credentials have none).
TOKEN_ENDPOINTS = tuple(p for p in PROVIDERS if PAGES[p].token_path is not None)
#: The providers whose rejected credential is replaced (not static keys or passwords).
RENEWABLE = tuple(p for p in PROVIDERS if PAGES[p].demo.renewable)
#: The providers with a client-credentials token endpoint (Yandex only renews).
CLIENT_CREDENTIALS = tuple(
    spec.name
    for spec in registry().values()
    if issubclass(spec.auth_class, ClientCredentialsAuth) and spec.name in TOKEN_ENDPOINTS
)
CLIENTS = ("requests", "httpx", "httpx-async")
FAST_BACKOFF = BackoffPolicy(attempts=3, base_delay=0.001, max_delay=0.01)
#: The longest any single call of the suite may take before it counts as a hang.
HANG = 20.0
#: One default TLS context for every httpx client: building one loads the CA bundle
#: (~30 ms), which would dominate a suite of short calls. Verification stays on.
TLS = ssl.create_default_context()

#: Where each provider's protected resource is (POST with a JSON body everywhere);
#: by default its page's resource.
API_PATHS = {
    **{p: PAGES[p].resource_path for p in PROVIDERS},
    "tracker": "/graphql",
    "bringg": "/services/v2/orders",
    "dhl": "/shipping/v4/label",
    "yandex": "/api/v1/companies/42/orders",
}


def first_tokens(provider: str) -> int:
    """Token requests of a first call: none for credentials the user already holds."""
    page = PAGES[provider]  # none without a token endpoint (a key, a signer, a minted JWT)
    return 0 if page.demo.token_option is not None or page.token_path is None else 1


def api_path(provider: str) -> str:
    """Where the suite POSTs: :data:`API_PATHS`, else the page's protected resource."""
    return API_PATHS.get(provider) or PAGES[provider].resource_path


QUERY = {"query": "query AuthTest { carriers(first: 1) { edges { node { id } } } }"}
JSON = {"Content-Type": "application/json"}


def bounded(fn: Callable[..., T], *args: Any, timeout: float = HANG) -> T:
    """Run ``fn(*args)`` in a daemon thread; fail the test if it does not finish in time."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="hardening-call", daemon=True).start()
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"hang: {getattr(fn, '__name__', fn)} did not return within {timeout} s")


@dataclass
class Canned:
    """A scripted answer. ``body``: bytes, str (sent as is) or a JSON-able object."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    reset_mid_body: bool = False  # announce the full length, send half, then RST
    delay: float = 0.0  # server-side latency before answering

    def response(self) -> Response:
        body = self.body
        content_type = self.content_type
        if isinstance(body, str):
            data = body.encode()
            content_type = content_type or "text/html"
        elif isinstance(body, bytes):
            data = body
            content_type = content_type or "application/json"
        else:
            data = json.dumps(body).encode()
            content_type = content_type or "application/json"
        if self.reset_mid_body:

            def half() -> Iterator[bytes]:
                yield data[: len(data) // 2]
                raise ConnectionResetFault("scripted reset in the middle of the body")

            response = Response(half(), status=self.status, content_type=content_type)
            response.headers["Content-Length"] = str(len(data))
        else:
            response = Response(data, status=self.status, content_type=content_type)
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


@dataclass(frozen=True)
class Seen:
    provider: str
    kind: str  # "token" or "api"
    path: str
    method: str
    authorization: str | None
    body_sha: str
    body_length: int


class Rig:
    """A running emulator with scripted answers, request records and a token ledger."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self.stopping = threading.Event()
        self.token_script: dict[str, collections.deque[Canned | Callable[[], Canned]]] = {
            p: collections.deque() for p in PROVIDERS
        }
        self.api_script: dict[str, collections.deque[Canned]] = {
            p: collections.deque() for p in PROVIDERS
        }
        self.seen: list[Seen] = []
        self.secrets: set[str] = set()
        for provider, handler in list(emu.app.handlers.items()):
            emu.app.handlers[provider] = self._wrap(provider, handler)
        self.reset()

    # -- set-up ------------------------------------------------------------------------

    def reset(self) -> None:
        self.emu.reset()
        with self._lock:
            for queue in (*self.token_script.values(), *self.api_script.values()):
                queue.clear()
            self.seen.clear()
        for known in CREDENTIALS.values():
            secret_extras = [v for k, v in known.extra.items() if "password" in k or "secret" in k]
            for value in (known.client_secret, known.token, known.refresh_token, *secret_extras):
                if value:
                    self.secrets.add(value)

    def script_token(self, provider: str, *answers: Canned | Callable[[], Canned]) -> None:
        with self._lock:
            self.token_script[provider].extend(answers)

    def script_api(self, provider: str, *answers: Canned) -> None:
        with self._lock:
            self.api_script[provider].extend(answers)

    def valid_token(self, provider: str) -> str:
        """A token the emulator's API accepts, minted without a token request."""
        value = self.emu.issue_token(provider)
        self.secrets.add(value)
        return value

    def accept(self, provider: str, value: str) -> str:
        """Make the emulator's API accept ``value`` as a token of ``provider``."""
        self.emu.accept_token(provider, value)
        self.secrets.add(value)
        return value

    # -- addresses and auth objects ------------------------------------------------------

    def api_url(self, provider: str) -> str:
        return self.emu.url(provider, api_path(provider))

    def redirect_url(self, provider: str, to: str, code: int = 307) -> str:
        return self.emu.url(provider, f"/redirect?code={code}&to={to}")

    def token_url(self, provider: str) -> str:
        return self.emu.token_url(provider)

    # -- records -------------------------------------------------------------------------

    def count(self, provider: str, kind: str, path: str | None = None) -> int:
        with self._lock:
            return self._count(provider, kind, path)

    def count_at_least(self, provider: str, kind: str, expected: int) -> int:
        """:meth:`count`, once it reaches ``expected`` (or after a hang-sized wait).

        A client that gave up on a slow answer may return before the server thread got
        to its request: count what the server saw only once it has seen it.
        """
        with self._recorded:
            self._recorded.wait_for(lambda: self._count(provider, kind) >= expected, HANG)
            return self._count(provider, kind)

    def _count(self, provider: str, kind: str, path: str | None = None) -> int:
        return sum(
            1
            for s in self.seen
            if s.provider == provider and s.kind == kind and (path is None or s.path == path)
        )

    def requests_of(self, provider: str, kind: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.provider == provider and s.kind == kind]

    # -- the wrapped handlers ------------------------------------------------------------

    def _wrap(self, provider: str, handler: Callable[..., Response]) -> Callable[..., Response]:
        token_path = PAGES[provider].token_path  # None: every request is an API request

        def handle(request: Request, state: Any, path: str) -> Response:
            body = request.get_data(cache=True)
            kind = "token" if path == token_path else "api"
            if path == "/redirect":
                kind = "redirect"
            with self._lock:
                self.seen.append(
                    Seen(
                        provider,
                        kind,
                        path,
                        request.method,
                        request.headers.get("Authorization"),
                        hashlib.sha256(body).hexdigest(),
                        len(body),
                    )
                )
                self._recorded.notify_all()
                queue = (
                    self.token_script[provider] if kind == "token" else self.api_script[provider]
                )
                scripted = queue.popleft() if queue and kind != "redirect" else None
            if kind == "redirect":
                query = parse_qs(request.query_string.decode())
                code = int(query.get("code", ["307"])[0])
                return Response(b"", status=code, headers={"Location": query["to"][0]})
            if scripted is not None:
                canned = scripted() if callable(scripted) else scripted
                if canned.delay:
                    self.stopping.wait(canned.delay)
                response = canned.response()
            else:
                response = handler(request, state, path)
            if kind == "token" and not response.is_streamed:
                self._remember(response.get_data())
            return response

        return handle

    def _remember(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            return
        if isinstance(payload, dict):
            for name in ("access_token", "refresh_token"):
                value = payload.get(name)
                if isinstance(value, str) and len(value) >= 8:
                    self.secrets.add(value)


# -- calls ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    history: list[int]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def graphql_codes(self) -> list[str]:
        try:
            payload = self.json()
        except ValueError:
            return []
        errors = payload.get("errors") if isinstance(payload, dict) else None
        return [
            str((e.get("extensions") or {}).get("code"))
            for e in errors or []
            if isinstance(e, dict)
        ]

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.graphql_codes()


def body_for(provider: str) -> bytes:
    payload: Any = QUERY if provider == "tracker" else {"order": {"id": 42, "items": [1, 2]}}
    return json.dumps(payload).encode()


def send(
    client: str,
    auth: Any,
    url: str,
    body: Any = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Outcome:
    """One call through ``client``; ``body`` may be bytes, a file or a (async) generator."""
    headers = headers if headers is not None else dict(JSON)
    if client == "requests":
        r = requests.request(method, url, data=body, headers=headers, auth=auth, timeout=timeout)
        return Outcome(r.status_code, [h.status_code for h in r.history], r.content)
    if client == "httpx":
        with httpx.Client(auth=auth, follow_redirects=True, timeout=timeout, verify=TLS) as c:
            r2 = c.request(method, url, content=body, headers=headers)
            return Outcome(r2.status_code, [h.status_code for h in r2.history], r2.content)
    if client == "httpx-async":

        async def go() -> Outcome:
            async with httpx.AsyncClient(
                auth=auth, follow_redirects=True, timeout=timeout, verify=TLS
            ) as c:
                r3 = await c.request(method, url, content=body, headers=headers)
                return Outcome(r3.status_code, [h.status_code for h in r3.history], r3.content)

        return asyncio.run(go())
    raise AssertionError(client)


def call_api(client: str, auth: Any, rig: Rig, provider: str, body: Any = None) -> Outcome:
    """POST the provider's protected resource through ``client``, with a hang bound."""
    payload = body_for(provider) if body is None else body
    return bounded(send, client, auth, rig.api_url(provider), payload)
