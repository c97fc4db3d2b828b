"""DHL eCommerce Americas in the emulator: token endpoint and API, RFC 7807 errors.

- ``POST /dhl/auth/v4/accesstoken`` — client credentials, form-urlencoded (client auth
  in the body or HTTP Basic); answers ``{access_token, client_id, token_type,
  expires_in}``. Errors are problem details, e.g. 400 (401 with
  ``emu.dhl_invalid_credentials_status = 401``: DHL answers either)
  ``{"type": "https://api.dhlecs.com/docs/errors/400.0000005", "title": "Invalid
  credentials"}`` (``application/problem+json``).
- Every other path is a protected resource: ``Bearer <token>`` → 200; an expired or
  revoked token → 401 problem ``"Access token expired"``; a missing or unknown one → 401
  ``"Invalid access token"``.

Only ``400.0000005`` comes from DHL's page; the other problem codes are the emulator's.
:data:`PAGE` describes all of it to the emulator and the demo.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .app import (
    bearer,
    begin_protected_request,
    begin_token_request,
    json_response,
    method_not_allowed,
)
from .page import Credentials, DemoPlan, Page, Rejection, Setting
from .state import EmulatorState

__all__ = ["ERRORS_BASE", "PAGE", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/auth/v4/accesstoken"
PROVIDER = "dhl"
KNOWN = Credentials("emu-dhl-client", "emu-dhl-secret-0000-not-real")
EXPIRED = "Access token expired"
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


def token(request: Request, state: EmulatorState) -> Response:
    def _invalid_credentials() -> Response:
        return problem(
            state.settings.dhl_invalid_credentials_status, "0000005", "Invalid credentials"
        )

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
    known = KNOWN
    if auth.method == "both" or not auth.matches(known.client_id, known.client_secret):
        return _invalid_credentials()
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    ttl = state.settings.token_ttl
    return json_response(
        {
            "access_token": issued.value,
            "client_id": auth.client_id,
            "token_type": "Bearer",
            "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        },
        Cache_Control="no-store",
    )


def _rejected(title: str) -> Response:
    response = problem(401, "0000002" if title == EXPIRED else "0000001", title)
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    status = state.check_token(PROVIDER, bearer(request))
    if status in ("expired", "revoked"):
        return EXPIRED
    return None if status == "ok" else "Invalid access token"


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _rejected,
        fault_reason=EXPIRED,
    )
    if answered is not None:
        return answered
    if request.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return method_not_allowed("GET, POST, PUT, PATCH, DELETE")
    return json_response({"status": "OK", "path": path, "method": request.method})


def _invalid_credentials_status(value: Any) -> int:
    if value not in (400, 401):
        raise ValueError(f"DHL answers invalid credentials with HTTP 400 or 401, not {value!r}")
    return int(value)


def _says_expired(body: Any) -> bool:
    return isinstance(body, dict) and body.get("title") == EXPIRED


def _served(body: Any) -> bool:
    return isinstance(body, dict) and body.get("status") == "OK"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path="/shipping/v4/label",
    endpoint_paths={"token_url": TOKEN_PATH, "api_url": "/shipping/v4/label"},
    rejection=Rejection(401, f'401 "{EXPIRED}"', _says_expired),
    served=_served,
    settings={"dhl_invalid_credentials_status": Setting(400, _invalid_credentials_status)},
    demo=DemoPlan(revoked=f'revoked: 401 "{EXPIRED}" -> 1 refresh, 1 resend'),
)
