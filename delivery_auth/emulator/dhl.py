"""DHL eCommerce Americas in the emulator: token endpoint and API, RFC 7807 errors.

- ``POST /dhl/auth/v4/accesstoken`` — client credentials, form-urlencoded (client auth
  in the body or HTTP Basic); answers ``{access_token, client_id, token_type,
  expires_in}``. Errors are problem details, e.g. 400
  ``{"type": "https://api.dhlecs.com/docs/errors/400.0000005", "title": "Invalid
  credentials"}`` (``application/problem+json``).
- Every other path is a protected resource: ``Bearer <token>`` → 200; an expired or
  revoked token → 401 problem ``"Access token expired"``; a missing or unknown one → 401
  ``"Invalid access token"``.

Only ``400.0000005`` comes from DHL's page; the other problem codes are the emulator's.
"""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from .app import (
    bearer,
    begin_token_request,
    fault_response,
    json_response,
    method_not_allowed,
)
from .state import CREDENTIALS, EmulatorState

__all__ = ["ERRORS_BASE", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/auth/v4/accesstoken"
PROVIDER = "dhl"
ERRORS_BASE = "https://api.dhlecs.com/docs/errors"


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    return resource(request, state, path)


def problem(status: int, code: str, title: str, **extra: object) -> Response:
    """An RFC 7807 problem-details response with DHL's ``type`` URL scheme."""
    body: dict[str, object] = {"type": f"{ERRORS_BASE}/{status}.{code}", "title": title}
    body.update(extra)
    return json_response(body, status, content_type="application/problem+json")


def _invalid_credentials() -> Response:
    return problem(400, "0000005", "Invalid credentials")


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _invalid_credentials)
    if answered is not None:
        return answered
    if auth.body_format not in ("form", "empty"):
        return problem(
            415,
            "0000001",
            "Unsupported media type",
            detail="Send client_id, client_secret and grant_type as form parameters.",
        )
    missing = [
        name
        for name, value in (
            ("grant_type", auth.params.get("grant_type")),
            ("client_id", auth.client_id),
            ("client_secret", auth.client_secret),
        )
        if not value
    ]
    if missing:
        return problem(
            400,
            "0000002",
            "Missing required parameters",
            invalidParams=[{"name": name, "reason": "is required"} for name in missing],
        )
    if auth.params["grant_type"] != "client_credentials":
        return problem(
            400,
            "0000003",
            "Invalid grant type",
            invalidParams=[{"name": "grant_type", "reason": "must be client_credentials"}],
        )
    known = CREDENTIALS[PROVIDER]
    if auth.method == "both" or not auth.matches(known.client_id, known.client_secret):
        return _invalid_credentials()
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    ttl = state.token_ttl
    return json_response(
        {
            "access_token": issued.value,
            "client_id": auth.client_id,
            "token_type": "Bearer",
            "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        },
        Cache_Control="no-store",
    )


def _rejected(state: EmulatorState, title: str, code: str) -> Response:
    state.stats.count(state.stats.auth_failures, PROVIDER)
    response = problem(401, code, title)
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    state.stats.count(state.stats.resource_requests, PROVIDER)
    fault = state.next_fault(PROVIDER, "resource")
    if fault is not None:
        faulted = fault_response(
            state, fault, lambda: _rejected(state, "Access token expired", "0000002")
        )
        if faulted is not None:
            return faulted
    status = state.check_token(PROVIDER, bearer(request))
    if status in ("expired", "revoked"):
        return _rejected(state, "Access token expired", "0000002")
    if status != "ok":
        return _rejected(state, "Invalid access token", "0000001")
    if request.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return method_not_allowed("GET, POST, PUT, PATCH, DELETE")
    return json_response({"status": "OK", "path": path, "method": request.method})
