"""Yandex ID and the Yandex Courier (Track & Trace) API in the emulator.

Yandex ID:

- ``POST /yandex/device/code`` (``client_id``) → ``{device_code, user_code,
  verification_url, interval, expires_in}``.
- ``POST /yandex/token`` — ``grant_type=device_code`` with ``code=<device_code>``
  answers ``authorization_pending`` for ``emu.device_pending_polls`` polls, then
  success, ``access_denied`` or ``expired_token`` (``emu.device_outcome``; both set
  with ``emu.configure_device_flow``);
  ``grant_type=refresh_token`` exchanges the refresh token for a new access token (and,
  with ``emu.yandex_rotate_refresh_tokens = True``, a new refresh token that replaces
  the used one). Faults injected on ``"token"`` apply to ``/device/code`` too.
  Client auth in the body or HTTP Basic.
- ``GET /yandex/device`` — the page a user would open; here it only explains that
  the emulator approves codes by itself.

Courier API:

- ``GET /yandex/api/v1/test`` with ``Authorization: OAuth <token>`` → ``{"message":
  "OK"}``; a missing, unknown or revoked token → 401; a banned company
  (``emu.yandex_company_banned = True``) → 403 ``"Company apikey is unknown or banned"``.
  Other ``/yandex/api/v1/...`` paths behave the same.

Access tokens never expire here (like Yandex's), they are only revoked.
:data:`PAGE` describes all of it to the emulator and the demo.
"""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import (
    ClientAuth,
    bearer,
    begin_protected_request,
    begin_token_request,
    fault_response,
    json_response,
    method_not_allowed,
    not_found,
    parse_token_request,
)
from .page import Credentials, DemoCheck, DemoPlan, Page, Rejection, Setting
from .state import EmulatorState

__all__ = ["DEVICE_CODE_PATH", "PAGE", "TOKEN_LIFETIME", "TOKEN_PATH", "VERIFY_PATH", "handle"]

PROVIDER = "yandex"
KNOWN = Credentials(
    "emu-yandex-client",
    "emu-yandex-secret-0000-not-real",
    token="emu-yandex-oauth-token-0000-not-real",  # noqa: S106 - public test value
    refresh_token="emu-yandex-refresh-token-0000-not-real",  # noqa: S106
)
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
    known = KNOWN
    if auth.client_id != known.client_id or auth.method == "both":
        return False
    return auth.client_secret == known.client_secret or (
        not secret_required and auth.client_secret is None
    )


def device_code(request: Request, state: EmulatorState) -> Response:
    fault = state.next_fault(PROVIDER, "token")  # Yandex ID's endpoints share the faults
    if fault is not None:
        faulted = fault_response(state, fault, _invalid_client)
        if faulted is not None:
            return faulted
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
            "interval": state.settings.device_interval,
            "expires_in": state.settings.device_expires_in,
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
        if state.refresh_token_owner(PROVIDER, refresh_token) != auth.client_id:
            return _oauth_error("invalid_grant", "Invalid or revoked refresh token")
        if state.settings.yandex_rotate_refresh_tokens:  # a new one replaces the used one
            state.forget_refresh_token(refresh_token)
            refresh_token = state.new_refresh_token(PROVIDER, auth.client_id)
        return _token_response(state, auth.client_id, refresh_token)
    code = auth.params.get("code") or auth.params.get("device_code") or ""
    outcome = state.poll_device_code(code, auth.client_id)
    if outcome == "approve":
        refresh_token = state.new_refresh_token(PROVIDER, auth.client_id)
        return _token_response(state, auth.client_id, refresh_token)
    error, description = _DEVICE_ERRORS[outcome]
    return _oauth_error(error, description)


def _unauthorized(message: str) -> Response:
    return json_response({"message": message}, 401)


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    oauth_token = bearer(request, "OAuth")
    if oauth_token is None:
        return "Missing credentials: send the header 'Authorization: OAuth <token>'"
    if state.check_token(PROVIDER, oauth_token) != "ok":
        return "OAuth token is invalid or revoked"
    return None


def api(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _unauthorized,
        fault_reason="OAuth token is invalid or revoked",
    )
    if answered is not None:
        return answered
    if state.settings.yandex_company_banned:
        return json_response({"message": "Company apikey is unknown or banned"}, 403)
    if path == VERIFY_PATH and request.method != "GET":
        return method_not_allowed("GET")
    return json_response({"message": "OK"})


def _served(body: Any) -> bool:
    return isinstance(body, dict) and body.get("message") == "OK"


def _mint(client_id: str, lifetime: float, server_time: float) -> str:
    return f"emu-yandex-{secrets.token_urlsafe(24)}"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path=VERIFY_PATH,
    endpoint_paths={"token_url": TOKEN_PATH, "api_url": ""},
    rejection=Rejection(401, "401"),
    served=_served,
    mint=_mint,
    tokens_expire=False,  # Yandex OAuth tokens live until revoked
    settings={
        "yandex_company_banned": Setting(False, bool),
        "yandex_rotate_refresh_tokens": Setting(False, bool),
    },
    demo=DemoPlan(
        token_option="token",  # noqa: S106 - the name of an argument
        first="static OAuth token used as is, nothing to fetch",
        revoked="revoked: 401 -> renewed with the refresh token, 1 resend",
        extra=(
            DemoCheck(
                "company banned: 403 returned as is, no renewal",
                token_requests=1,
                settings={"yandex_company_banned": True},
                status=403,
            ),
        ),
    ),
)
