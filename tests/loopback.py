"""A scriptable OAuth2 token endpoint and protected API on 127.0.0.1, for the core tests.

Real sockets, real HTTP/1.1 keep-alive, chunked request bodies: the bugs that mocks
hide (connection reuse on retry, body rewind, redirects) show up here.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

CLIENT_ID = "client-123"
CLIENT_SECRET = "s3cr3t-Zq8Kd0-never-log-me"


@dataclass
class Reply:
    """A scripted answer: status, headers, body (bytes, str or JSON-able)."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False  # announce a body, send part of it, then cut the connection

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, bytes):
            return body, headers
        if isinstance(body, str):
            headers.setdefault("Content-Type", "text/html")
            return body.encode(), headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(body).encode(), headers


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.token_requests: list[Seen] = []
        self.api_requests: list[Seen] = []
        self.valid: set[str] = set()
        self.issued = 0
        self.expires_in: Any = 3600
        self.extra_token_fields: dict[str, Any] = {}
        self.token_script: collections.deque[Reply] = collections.deque()
        self.api_script: collections.deque[Reply] = collections.deque()
        self.token_gate: threading.Event | None = None
        self.token_arrived = threading.Event()
        self.token_issued = threading.Event()

    def revoke_all(self) -> None:
        with self.lock:
            self.valid.clear()


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _seen(self) -> Seen:
        body = _read_body(self)
        form: dict[str, str] = {}
        ctype = self.headers.get("Content-Type", "")
        if "x-www-form-urlencoded" in ctype:
            form = dict(parse_qsl(body.decode()))
        return Seen(self.command, self.path, dict(self.headers.items()), body, form)

    def _send(self, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)  # server-side latency, not synchronisation
        body, headers = reply.encoded()
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        if reply.reset:
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _token(self, seen: Seen) -> None:
        state = self.server.state
        with state.lock:
            state.token_requests.append(seen)
        state.token_arrived.set()
        if state.token_gate is not None:
            state.token_gate.wait(30)
        with state.lock:
            scripted = state.token_script.popleft() if state.token_script else None
        if scripted is not None:
            self._send(scripted)
            return
        client_id, secret = seen.form.get("client_id"), seen.form.get("client_secret")
        basic = seen.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            self._send(Reply(401, {"error": "invalid_client", "error_description": "bad client"}))
            return
        with state.lock:
            state.issued += 1
            token = (
                f"tok-{state.issued}-{hashlib.sha256(str(state.issued).encode()).hexdigest()[:8]}"
            )
            state.valid.add(token)
            payload: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
            if state.expires_in is not None:
                payload["expires_in"] = state.expires_in
            payload.update(state.extra_token_fields)
        self._send(Reply(200, payload))
        state.token_issued.set()

    def _api(self, seen: Seen) -> None:
        state = self.server.state
        with state.lock:
            state.api_requests.append(seen)
            scripted = state.api_script.popleft() if state.api_script else None
        if scripted is not None:
            self._send(scripted)
            return
        query = parse_qs(urlsplit(self.path).query)
        if self.path.startswith("/redirect"):
            code = int(query.get("code", ["302"])[0])
            self._send(Reply(code, b"", {"Location": query["to"][0]}))
            return
        auth = seen.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        with state.lock:
            ok = token in state.valid
        if not ok:
            self._send(Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": "Bearer"}))
            return
        digest = hashlib.sha256(seen.body).hexdigest()
        self._send(Reply(200, {"ok": True, "path": self.path, "body_sha256": digest}))

    def _dispatch(self) -> None:
        seen = self._seen()
        if urlsplit(self.path).path == "/token":
            self._token(seen)
        else:
            self._api(seen)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # hundreds of concurrent clients connect at once

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = State()
        self.thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (reset tests, timeouts) are expected here: stay quiet.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.base}/token"

    def url(self, path: str = "/api/orders") -> str:
        return f"{self.base}{path}"

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
