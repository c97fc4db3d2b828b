"""A minimal threaded OAuth2 token endpoint and protected API for the benchmark.

It runs in a child process (``python -m benchmarks.server``) so that the server does
not compete with the client under test for the GIL. Endpoints:

- ``POST /token``: client credentials (form or HTTP Basic); issues ``tok-N`` tokens that
  the API accepts for ``expires_in`` seconds; an optional delay models a real endpoint.
- ``GET /api``: 200 for a valid bearer token (and always for the floor's static token),
  else 401.
- ``GET /_stats``, ``POST /_reset``, ``POST /_revoke``, ``POST /_config?k=v``: control.

Token issue and expiry use ``time.monotonic()`` (CLOCK_MONOTONIC, shared by every
process on the machine), so the client can compare token-request intervals with its
own timings.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-not-a-real-one"
STATIC_TOKEN = "floor-static-token"


class State:
    """Everything the server knows; guarded by one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expires_in = 3600
        self.token_delay = 0.0
        self.issued = 0
        self.valid: dict[str, float] = {}  # token -> monotonic expiry
        self.reset()

    def reset(self) -> None:
        """Zero the counters (issued tokens stay valid)."""
        self.token_requests = 0
        self.token_intervals: list[tuple[float, float]] = []
        self.api_ok = 0
        self.api_401 = 0

    def stats(self) -> dict[str, Any]:
        return {
            "token_requests": self.token_requests,
            "token_intervals": self.token_intervals,
            "api_ok": self.api_ok,
            "api_401": self.api_401,
        }


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and
    # the client's delayed ACK would add ~40 ms to every response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", "Bearer")
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        path = self.path
        if path.startswith("/api"):
            self._api()
        elif path == "/_stats":
            with STATE.lock:
                body = json.dumps(STATE.stats()).encode()
            self._reply(200, body)
        else:
            self._reply(404, b"{}")

    def do_POST(self) -> None:
        body = self._body()
        parts = urlsplit(self.path)
        if parts.path == "/token":
            self._token(body)
        elif parts.path == "/_reset":
            with STATE.lock:
                STATE.reset()
            self._reply(200, b"{}")
        elif parts.path == "/_revoke":
            with STATE.lock:
                STATE.valid.clear()
            self._reply(200, b"{}")
        elif parts.path == "/_config":
            with STATE.lock:
                for key, value in parse_qsl(parts.query):
                    if key == "expires_in":
                        STATE.expires_in = int(value)
                    elif key == "token_delay":
                        STATE.token_delay = float(value)
            self._reply(200, b"{}")
        else:
            self._reply(404, b"{}")

    def _api(self) -> None:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        now = time.monotonic()
        with STATE.lock:
            ok = token == STATIC_TOKEN or STATE.valid.get(token, 0.0) > now
            if ok:
                STATE.api_ok += 1
            else:
                STATE.api_401 += 1
        if ok:
            self._reply(200, b'{"ok":true}')
        else:
            self._reply(401, b'{"error":"invalid_token"}')

    def _token(self, body: bytes) -> None:
        started = time.monotonic()
        form = dict(parse_qsl(body.decode()))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        with STATE.lock:
            STATE.token_requests += 1
            delay = STATE.token_delay
        if delay:
            time.sleep(delay)  # models a real token endpoint's latency
        if (client_id, secret) != (CLIENT_ID, CLIENT_SECRET):
            self._reply(401, b'{"error":"invalid_client"}')
            return
        with STATE.lock:
            STATE.issued += 1
            token = f"tok-{STATE.issued}"
            expires_in = STATE.expires_in
            now = time.monotonic()
            STATE.valid[token] = now + expires_in
            STATE.token_intervals.append((started, now))
        payload = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
        self._reply(200, json.dumps(payload).encode())


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 2048  # a 1000-coroutine stampede must not overflow the backlog


def main() -> None:
    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    # Stop when the parent closes our stdin (or dies).
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever(poll_interval=0.2)
    server.server_close()


class ServerProcess:
    """The server in a child process, and a small control client for it."""

    def __init__(self) -> None:
        env = dict(os.environ)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            env=env,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"the benchmark server did not start (printed {line!r})")
        self.port = int(line)
        self.base = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.base}/token"
        self.api_url = f"{self.base}/api/orders"

    def _post(self, path: str) -> None:
        url = self.base + path  # always http://127.0.0.1:<port>/...
        request = urllib.request.Request(url, data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def configure(self, *, expires_in: int = 3600, token_delay: float = 0.0) -> None:
        self._post(f"/_config?expires_in={expires_in}&token_delay={token_delay}")

    def reset(self) -> None:
        self._post("/_reset")

    def revoke(self) -> None:
        self._post("/_revoke")

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + "/_stats", timeout=10) as response:  # noqa: S310
            data: dict[str, Any] = json.loads(response.read())
        return data

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    main()
