"""Bringg (Delivery Hub) in the emulator: a Doorkeeper-style token endpoint and an API.

- ``POST /bringg/oauth/token`` — client credentials as form-urlencoded, multipart
  (the seed's ``curl -F``) or JSON; optional ``ttl`` seconds; client auth in the body
  or HTTP Basic. Answers ``{access_token (a JWT), token_type, expires_in, created_at}``;
  ``created_at`` is the emulator's clock, which ``emu.clock_offset`` shifts.
- Every other path is a protected resource: ``Bearer <token>`` → 200
  ``{"success": true}``; a missing, unknown, expired or revoked token → 401. A path
  ending in ``/business-error`` answers 200 ``{"success": false}`` (a business error,
  not an auth failure).
"""

from __future__ import annotations

import math

from werkzeug.wrappers import Request, Response

from .app import (
    bearer,
    begin_token_request,
    fault_response,
    json_response,
    method_not_allowed,
)
from .state import CREDENTIALS, EmulatorState

__all__ = ["TOKEN_PATH", "handle"]

TOKEN_PATH = "/oauth/token"
PROVIDER = "bringg"


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
    known = CREDENTIALS[PROVIDER]
    if not auth.matches(known.client_id, known.client_secret):
        return _invalid_client()
    ttl = _ttl(auth.params.get("ttl"))
    if isinstance(ttl, str):
        return _oauth_error("invalid_request", ttl)
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id, ttl)
    lifetime = state.token_ttl if ttl is None else ttl
    return json_response(
        {
            "access_token": issued.value,
            "token_type": "Bearer",
            "expires_in": int(lifetime) if lifetime == int(lifetime) else lifetime,
            "created_at": int(state.server_time()),
        },
        Cache_Control="no-store",
    )


def _unauthorized(state: EmulatorState, message: str) -> Response:
    state.stats.count(state.stats.auth_failures, PROVIDER)
    response = json_response({"success": False, "rc": 401, "message": message}, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="bringg", error="invalid_token"'
    return response


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    state.stats.count(state.stats.resource_requests, PROVIDER)
    fault = state.next_fault(PROVIDER, "resource")
    if fault is not None:
        faulted = fault_response(state, fault, lambda: _unauthorized(state, "Unauthorized"))
        if faulted is not None:
            return faulted
    access_token = bearer(request)
    if access_token is None:
        return _unauthorized(state, "Missing Authorization: Bearer <token>")
    status = state.check_token(PROVIDER, access_token)
    if status != "ok":
        return _unauthorized(
            state, "Token expired" if status == "expired" else "Invalid or revoked token"
        )
    if path.rstrip("/").endswith("/business-error"):
        return json_response(
            {"success": False, "rc": 4, "message": "Order not found (emulated business error)"}
        )
    if request.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return method_not_allowed("GET, POST, PUT, PATCH, DELETE")
    return json_response({"success": True, "path": path, "method": request.method})
