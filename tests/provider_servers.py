"""Loopback servers that behave like the four providers' token endpoints and APIs.

Each server is a real HTTP/1.1 server on 127.0.0.1 that issues tokens the way its
provider does and rejects them the way its provider does (a GraphQL body with
UNAUTHENTICATED, a 401, a problem-details body, ...). Every request is recorded,
so tests count token requests and API requests on the server side.
"""

from __future__ import annotations

import base64
import collections
import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from loopback import Reply, Seen, _read_body

CLIENT_ID = "prov-client-7"
CLIENT_SECRET = "prov-s3cret-Xy91-never-log-me"


def client_of(seen: Seen) -> tuple[str | None, str | None]:
    """The client credentials of a token request (form or HTTP Basic)."""
    basic = seen.headers.get("Authorization", "")
    if basic.startswith("Basic "):
        client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        return client_id, secret
    return seen.form.get("client_id"), seen.form.get("client_secret")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProviderServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        from urllib.parse import parse_qsl

        body = _read_body(self)
        form: dict[str, str] = {}
        if "x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
            form = dict(parse_qsl(body.decode()))
        seen = Seen(self.command, self.path, dict(self.headers.items()), body, form)
        reply = self.server.answer(seen)
        payload, headers = reply.encoded()
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch


class ProviderServer(ThreadingHTTPServer):
    """The shared part: recording, scripted replies, token bookkeeping.

    Subclasses set ``token_paths`` and implement :meth:`issue` (a token request with
    good credentials) and :meth:`api` (an API request).
    """

    daemon_threads = True
    allow_reuse_address = True
    token_paths: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.token_requests: list[Seen] = []
        self.api_requests: list[Seen] = []
        self.valid: set[str] = set()
        self.counter = itertools.count(1)
        #: replies given instead of the normal behaviour, first in first out
        self.token_script: collections.deque[Reply] = collections.deque()
        self.api_script: collections.deque[Reply] = collections.deque()
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    # -- URLs -------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    # -- behaviour --------------------------------------------------------------------

    def answer(self, seen: Seen) -> Reply:
        path = urlsplit(seen.path).path
        if path in self.token_paths:
            with self.lock:
                self.token_requests.append(seen)
                scripted = self.token_script.popleft() if self.token_script else None
            return scripted or self.token(seen)
        with self.lock:
            self.api_requests.append(seen)
            scripted = self.api_script.popleft() if self.api_script else None
        return scripted or self.api(seen)

    def token(self, seen: Seen) -> Reply:
        if client_of(seen) != (CLIENT_ID, CLIENT_SECRET):
            return self.bad_client(seen)
        return self.issue(seen)

    def new_token(self, prefix: str) -> str:
        token = f"{prefix}-{next(self.counter)}-{time.monotonic_ns() % 10**6}"
        with self.lock:
            self.valid.add(token)
        return token

    def bearer_ok(self, seen: Seen, scheme: str = "Bearer") -> bool:
        header = seen.headers.get("Authorization", "")
        prefix = f"{scheme} "
        with self.lock:
            return header.startswith(prefix) and header[len(prefix) :] in self.valid

    def secrets_seen(self) -> set[str]:
        """The client secret and every credential that was sent to the API."""
        found = {CLIENT_SECRET}
        for seen in self.api_requests:
            header = seen.headers.get("Authorization", "")
            if " " in header:
                found.add(header.split(" ", 1)[1])
        return found

    def revoke_all(self) -> None:
        with self.lock:
            self.valid.clear()

    def bad_client(self, seen: Seen) -> Reply:
        return Reply(401, {"error": "invalid_client"})

    def issue(self, seen: Seen) -> Reply:
        raise NotImplementedError

    def api(self, seen: Seen) -> Reply:
        raise NotImplementedError

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


# -- Delivery Tracker ------------------------------------------------------------------


def graphql_errors(*codes: str) -> dict[str, Any]:
    """A GraphQL response with ``data: null`` and one error per code, in that order."""
    return {
        "data": None,
        "errors": [
            {
                "message": f"{code.lower()} error",
                "locations": [{"line": 1, "column": 3}],
                "path": ["track"],
                "extensions": {"code": code},
            }
            for code in codes
        ],
    }


#: The failure as the tests send it: UNAUTHENTICATED as the second of three errors.
UNAUTHENTICATED_SECOND = graphql_errors("BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND")


class TrackerServer(ProviderServer):
    """``POST /oauth2/token`` and ``POST /graphql``; an unknown credential gets a GraphQL
    body with UNAUTHENTICATED (second of three errors) at HTTP ``unauthenticated_status``."""

    token_paths = ("/oauth2/token",)

    def __init__(self) -> None:
        super().__init__()
        self.unauthenticated_status = 200
        self.api_key_valid = True

    @property
    def token_url(self) -> str:
        return self.url("/oauth2/token")

    @property
    def graphql_url(self) -> str:
        return self.url("/graphql")

    def issue(self, seen: Seen) -> Reply:
        token = self.new_token("trk")
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 3600})

    def api(self, seen: Seen) -> Reply:
        header = seen.headers.get("Authorization", "")
        ok = self.bearer_ok(seen) or (
            self.api_key_valid and header == f"TRACKQL-API-KEY {CLIENT_ID}:{CLIENT_SECRET}"
        )
        if not ok:
            return Reply(self.unauthenticated_status, UNAUTHENTICATED_SECOND)
        return Reply(200, {"data": {"carriers": {"edges": [{"node": {"id": "kr.cjlogistics"}}]}}})


# -- Bringg ----------------------------------------------------------------------------


class BringgServer(ProviderServer):
    """``POST /oauth/token`` (``ttl`` honoured, ``created_at`` from a skewable clock) and
    an API that answers 401 to unknown tokens."""

    token_paths = ("/oauth/token",)

    def __init__(self) -> None:
        super().__init__()
        self.clock_offset = 0.0

    @property
    def token_url(self) -> str:
        return self.url("/oauth/token")

    def issue(self, seen: Seen) -> Reply:
        token = self.new_token("eyJ.bringg")
        ttl = int(seen.form.get("ttl") or 1800)
        return Reply(
            200,
            {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": ttl,
                "created_at": int(time.time() + self.clock_offset),
            },
        )

    def api(self, seen: Seen) -> Reply:
        if not self.bearer_ok(seen):
            return Reply(401, {"success": False, "message": "Unauthorized"})
        return Reply(200, {"success": True, "orders": []})


# -- DHL eCommerce ---------------------------------------------------------------------


def dhl_problem(status_code: str, title: str) -> dict[str, str]:
    return {"type": f"https://api-sandbox.dhlecs.com/docs/errors/{status_code}", "title": title}


class DHLServer(ProviderServer):
    """``POST /auth/v4/accesstoken`` with problem-details errors, and an API that answers
    401 "Access token expired" to unknown tokens."""

    token_paths = ("/auth/v4/accesstoken",)

    def __init__(self) -> None:
        super().__init__()
        self.bad_client_status = 400

    @property
    def token_url(self) -> str:
        return self.url("/auth/v4/accesstoken")

    def bad_client(self, seen: Seen) -> Reply:
        code = f"{self.bad_client_status}.0000005"
        return Reply(
            self.bad_client_status,
            dhl_problem(code, "Invalid credentials"),
            {"Content-Type": "application/problem+json"},
        )

    def issue(self, seen: Seen) -> Reply:
        token = self.new_token("dhl")
        return Reply(
            200,
            {
                "access_token": token,
                "client_id": CLIENT_ID,
                "token_type": "Bearer",
                "expires_in": 3600,
            },
        )

    def api(self, seen: Seen) -> Reply:
        if not self.bearer_ok(seen):
            return Reply(
                401,
                dhl_problem("401.0000001", "Access token expired"),
                {"Content-Type": "application/problem+json"},
            )
        return Reply(200, {"labels": []})


# -- Yandex Courier and Yandex ID ------------------------------------------------------

YANDEX_TOKEN = "y0_initial-courier-token"
YANDEX_REFRESH = "1:refresh-initial"


class YandexServer(ProviderServer):
    """Yandex Courier's API (``OAuth <token>``, ``GET /api/v1/test``) and Yandex ID's
    ``POST /token`` (refresh_token and device_code grants) and ``POST /device/code``.

    ``device_outcomes`` scripts the answers to device-code polls; ``"ok"`` issues a token.
    """

    token_paths = ("/token", "/device/code")

    def __init__(self) -> None:
        super().__init__()
        self.valid.add(YANDEX_TOKEN)
        self.refresh_tokens = {YANDEX_REFRESH}
        self.device_outcomes: collections.deque[str] = collections.deque()
        self.device_interval = 5
        self.device_expires_in = 300

    def issue(self, seen: Seen) -> Reply:
        path = urlsplit(seen.path).path
        if path == "/device/code":
            return Reply(
                200,
                {
                    "device_code": "dev-code-1",
                    "user_code": "XKCD-4213",
                    "verification_url": "https://ya.ru/device",
                    "interval": self.device_interval,
                    "expires_in": self.device_expires_in,
                },
            )
        grant = seen.form.get("grant_type")
        if grant == "refresh_token":
            with self.lock:
                known = seen.form.get("refresh_token") in self.refresh_tokens
                if known:
                    self.refresh_tokens.discard(seen.form["refresh_token"])
            if not known:
                return Reply(400, {"error": "invalid_grant", "error_description": "expired"})
            return self._tokens()
        if grant == "device_code":
            if seen.form.get("code") != "dev-code-1":
                return Reply(400, {"error": "bad_verification_code"})
            with self.lock:
                outcome = self.device_outcomes.popleft() if self.device_outcomes else "ok"
            if outcome != "ok":
                return Reply(400, {"error": outcome, "error_description": outcome})
            return self._tokens()
        return Reply(400, {"error": "unsupported_grant_type"})

    def token(self, seen: Seen) -> Reply:
        if urlsplit(seen.path).path == "/device/code":
            if seen.form.get("client_id") != CLIENT_ID:
                return Reply(400, {"error": "invalid_client"})
            return self.issue(seen)
        return super().token(seen)

    def secrets_seen(self) -> set[str]:
        found = super().secrets_seen()
        found.update(
            seen.form["refresh_token"]
            for seen in self.token_requests
            if "refresh_token" in seen.form
        )
        return found

    def _tokens(self) -> Reply:
        refresh = f"1:refresh-{next(self.counter)}"
        with self.lock:
            self.refresh_tokens.add(refresh)
        access = self.new_token("y0_renewed")
        return Reply(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "token_type": "bearer",
                "expires_in": 31536000,
            },
        )

    def api(self, seen: Seen) -> Reply:
        if not self.bearer_ok(seen, "OAuth"):
            return Reply(401, {"error": "Unauthorized", "message": "OAuth token is invalid"})
        if urlsplit(seen.path).path == "/api/v1/test":
            return Reply(200, {"message": "OK"})
        return Reply(200, {"orders": []})
