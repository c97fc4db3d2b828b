"""Yandex ID and the Yandex Courier (Track & Trace) API in the emulator.

Yandex ID:

- ``POST /yandex/device/code`` (``client_id``) → ``{device_code, user_code,
  verification_url, interval, expires_in}``.
- ``POST /yandex/token`` — ``grant_type=device_code`` with ``code=<device_code>``
  answers ``authorization_pending`` for ``emu.device_pending_polls`` polls, then
  success, ``access_denied`` or ``expired_token`` (``emu.device_outcome``);
  ``grant_type=refresh_token`` exchanges the refresh token for a new access token.
  Client auth in the body or HTTP Basic.
- ``GET /yandex/device`` — the page a user would open; here it only explains that
  the emulator approves codes by itself.

Courier API:

- ``GET /yandex/api/v1/test`` with ``Authorization: OAuth <token>`` → ``{"message":
  "OK"}``; a missing, unknown or revoked token → 401; a banned company
  (``emu.yandex_company_banned = True``) → 403 ``"Company apikey is unknown or banned"``.
  Other ``/yandex/api/v1/...`` paths behave the same.

Access tokens never expire here (like Yandex's), they are only revoked.
"""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from .app import (
    ClientAuth,
    bearer,
    begin_token_request,
    fault_response,
    json_response,
    method_not_allowed,
    not_found,
    parse_token_request,
)
from .state import CREDENTIALS, EmulatorState

__all__ = ["DEVICE_CODE_PATH", "TOKEN_LIFETIME", "TOKEN_PATH", "VERIFY_PATH", "handle"]

PROVIDER = "yandex"
TOKEN_PATH = "/token"
DEVICE_CODE_PATH = "/device/code"
DEVICE_PAGE_PATH = "/device"
VERIFY_PATH = "/api/v1/test"
#: ``expires_in`` announced for access tokens (a year, as Yandex ID does).
TOKEN_LIFETIME = 31_536_000

_DEVICE_PAGE = """<!DOCTYPE html>
<html><head><title>delivery-auth emulator: device login</title></head>
<body><h1>Test double</h1><p>This is the delivery-auth emulator, not Yandex. It approves
device codes by itself; nothing to do here.</p></body></html>"""


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    if path == DEVICE_CODE_PATH:
        return device_code(request, state)
    if path == DEVICE_PAGE_PATH:
        return Response(_DEVICE_PAGE, content_type="text/html")
    if path.startswith("/api/v1/"):
        return api(request, state, path)
    return not_found(PROVIDER, path, (TOKEN_PATH, DEVICE_CODE_PATH, VERIFY_PATH))


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def _invalid_client() -> Response:
    return _oauth_error("invalid_client", "Client not found", 401)


def _client_ok(auth: ClientAuth, *, secret_required: bool = True) -> bool:
    known = CREDENTIALS[PROVIDER]
    if auth.client_id != known.client_id or auth.method == "both":
        return False
    return auth.client_secret == known.client_secret or (
        not secret_required and auth.client_secret is None
    )


def device_code(request: Request, state: EmulatorState) -> Response:
    if request.method != "POST":
        return method_not_allowed("POST")
    auth = parse_token_request(request)
    if not _client_ok(auth, secret_required=False):
        return _invalid_client()
    assert auth.client_id is not None
    code = state.new_device_code(auth.client_id)
    return json_response(
        {
            "device_code": code.device_code,
            "user_code": code.user_code,
            "verification_url": request.host_url.rstrip("/") + "/yandex" + DEVICE_PAGE_PATH,
            "interval": state.knobs.device_interval,
            "expires_in": state.knobs.device_expires_in,
        }
    )


def _token_response(state: EmulatorState, client_id: str, refresh_token: str) -> Response:
    issued = state.issue(PROVIDER, client_id)
    return json_response(
        {
            "access_token": issued.value,
            "refresh_token": refresh_token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME,
        }
    )


_DEVICE_ERRORS = {
    "pending": ("authorization_pending", "User has not yet authorized your application"),
    "deny": ("access_denied", "The user refused to grant access"),
    "expire": ("expired_token", "The device code has expired; request a new one"),
    "unknown": ("invalid_grant", "Invalid or used device code"),
}


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _invalid_client)
    if answered is not None:
        return answered
    if auth.body_format not in ("form", "empty"):
        return _oauth_error("invalid_request", "Send the request as form parameters.")
    grant_type = auth.params.get("grant_type")
    if grant_type not in ("refresh_token", "device_code"):
        return _oauth_error(
            "unsupported_grant_type",
            "The emulator supports grant_type=refresh_token and grant_type=device_code.",
        )
    if not _client_ok(auth):
        return _invalid_client()
    assert auth.client_id is not None
    if grant_type == "refresh_token":
        refresh_token = auth.params.get("refresh_token", "")
        if state.refresh_token_owner(refresh_token) != auth.client_id:
            return _oauth_error("invalid_grant", "Invalid or revoked refresh token")
        return _token_response(state, auth.client_id, refresh_token)
    code = auth.params.get("code") or auth.params.get("device_code") or ""
    outcome = state.poll_device_code(code, auth.client_id)
    if outcome == "approve":
        return _token_response(state, auth.client_id, state.new_refresh_token(auth.client_id))
    error, description = _DEVICE_ERRORS[outcome]
    return _oauth_error(error, description)


def _unauthorized(state: EmulatorState, message: str) -> Response:
    state.stats.count(state.stats.auth_failures, PROVIDER)
    return json_response({"message": message}, 401)


def api(request: Request, state: EmulatorState, path: str) -> Response:
    state.stats.count(state.stats.resource_requests, PROVIDER)
    fault = state.next_fault(PROVIDER, "resource")
    if fault is not None:
        faulted = fault_response(
            state, fault, lambda: _unauthorized(state, "OAuth token is invalid or revoked")
        )
        if faulted is not None:
            return faulted
    oauth_token = bearer(request, "OAuth")
    if oauth_token is None:
        return _unauthorized(
            state, "Missing credentials: send the header 'Authorization: OAuth <token>'"
        )
    if state.check_token(PROVIDER, oauth_token) != "ok":
        return _unauthorized(state, "OAuth token is invalid or revoked")
    if state.knobs.yandex_company_banned:
        return json_response({"message": "Company apikey is unknown or banned"}, 403)
    if path == VERIFY_PATH and request.method != "GET":
        return method_not_allowed("GET")
    return json_response({"message": "OK"})
