"""Bringg (Delivery Hub) in the emulator: a Doorkeeper-style token endpoint and an API.

- ``POST /bringg/oauth/token`` — client credentials as form-urlencoded, multipart
  (the seed's ``curl -F``) or JSON; optional ``ttl`` seconds; client auth in the body
  or HTTP Basic. Answers ``{access_token (a JWT), token_type, expires_in, created_at}``;
  ``created_at`` is the emulator's clock, which ``emu.clock_offset`` shifts.
- Every other path is a protected resource: ``Bearer <token>`` → 200
  ``{"success": true}``; a missing, unknown, expired or revoked token → 401. A path
  ending in ``/business-error`` answers 200 ``{"success": false}`` (a business error,
  not an auth failure).

:data:`PAGE` describes all of it to the emulator and the demo.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import (
    bearer,
    begin_protected_request,
    begin_token_request,
    json_response,
    method_not_allowed,
)
from .page import Credentials, DemoPlan, Page, Rejection
from .state import EmulatorState

__all__ = ["PAGE", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/oauth/token"
PROVIDER = "bringg"
KNOWN = Credentials("emu-bringg-client", "emu-bringg-secret-0000-not-real")


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    return resource(request, state, path)


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response(
        {"error": error, "error_description": description}, status, Cache_Control="no-store"
    )


def _invalid_client() -> Response:
    return _oauth_error(
        "invalid_client",
        "Client authentication failed due to unknown client, no client authentication "
        "included, or unsupported authentication method.",
        401,
    )


def _ttl(raw: str | None) -> float | str | None:
    """The requested lifetime, ``None`` for the default, or an error message."""
    if raw is None or raw == "":
        return None
    try:
        ttl = float(raw)
    except ValueError:
        return "ttl must be a number of seconds"
    if not math.isfinite(ttl) or ttl <= 0:
        return "ttl must be a positive number of seconds"
    return ttl


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _invalid_client)
    if answered is not None:
        return answered
    if auth.method == "both":
        return _oauth_error("invalid_request", "Use one client authentication method, not two.")
    grant_type = auth.params.get("grant_type")
    if grant_type is None:
        return _oauth_error("invalid_request", "The request is missing a required parameter.")
    if grant_type != "client_credentials":
        return _oauth_error(
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )
    known = KNOWN
    if not auth.matches(known.client_id, known.client_secret):
        return _invalid_client()
    ttl = _ttl(auth.params.get("ttl"))
    if isinstance(ttl, str):
        return _oauth_error("invalid_request", ttl)
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id, ttl)
    lifetime = state.settings.token_ttl if ttl is None else ttl
    return json_response(
        {
            "access_token": issued.value,
            "token_type": "Bearer",
            "expires_in": int(lifetime) if lifetime == int(lifetime) else lifetime,
            "created_at": int(state.server_time()),
        },
        Cache_Control="no-store",
    )


def _unauthorized(message: str) -> Response:
    response = json_response({"success": False, "rc": 401, "message": message}, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="bringg", error="invalid_token"'
    return response


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    access_token = bearer(request)
    if access_token is None:
        return "Missing Authorization: Bearer <token>"
    status = state.check_token(PROVIDER, access_token)
    if status == "ok":
        return None
    return "Token expired" if status == "expired" else "Invalid or revoked token"


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _unauthorized,
        fault_reason="Unauthorized",
    )
    if answered is not None:
        return answered
    if path.rstrip("/").endswith("/business-error"):
        return json_response(
            {"success": False, "rc": 4, "message": "Order not found (emulated business error)"}
        )
    if request.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return method_not_allowed("GET, POST, PUT, PATCH, DELETE")
    return json_response({"success": True, "path": path, "method": request.method})


def _jwt(claims: Mapping[str, object]) -> str:
    """A JWT-shaped string (unsigned: the emulator never verifies signatures)."""

    def part(data: Mapping[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(16)}"


def _mint(client_id: str, lifetime: float, server_time: float) -> str:
    """Bringg hands out JWTs (``iat`` from the emulator's clock)."""
    now = int(server_time)
    return _jwt({"sub": client_id, "iat": now, "exp": now + int(lifetime)})


def _served(body: Any) -> bool:
    return isinstance(body, dict) and body.get("success") is True


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path="/services/v2/orders",
    endpoint_paths={"token_url": TOKEN_PATH, "api_url": "/services/v2/orders"},
    rejection=Rejection(401, "401"),
    served=_served,
    mint=_mint,
    demo=DemoPlan(revoked="revoked on the server: 401 -> 1 refresh, 1 resend"),
)
