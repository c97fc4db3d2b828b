"""UPS in the emulator: a token endpoint that answers every field as a string, and an API
with UPS's error shape.

- ``POST /ups/security/v1/oauth/token`` — form ``grant_type=client_credentials``, the
  client id and secret in HTTP Basic (credentials in the body are refused, as the UPS spec
  has them only in the header), optional ``x-merchant-id``. Answers ``token_type``,
  ``issued_at`` (epoch **milliseconds**), ``client_id``, ``access_token``, ``scope``,
  ``expires_in``, ``refresh_count`` and ``status``, **all strings**. A missing or
  malformed Authorization header is 401 code ``10400``, an unknown client 401 ``10401``,
  in UPS's shape ``{"response": {"errors": [{"code", "message"}]}}``.
- Every other path is a protected resource (tracking): ``Bearer <token>`` → 200; a
  missing, unknown, expired or revoked token → 401 ``{"response": {"errors": [{"code":
  "250002", "message": "Invalid Authentication Information."}]}}``.

The codes and messages come from UPS's documentation and SDK; the request it accepts as
"malformed" is the emulator's reading. :data:`PAGE` describes it to the emulator and the
demo.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .app import bearer, begin_protected_request, begin_token_request, json_response
from .page import Credentials, DemoCheck, DemoPlan, Page, Rejection
from .state import EmulatorState

__all__ = ["INVALID_AUTHENTICATION", "PAGE", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/security/v1/oauth/token"
RESOURCE_PATH = "/api/track/v1/details/1Z999AA10123456784"
PROVIDER = "ups"
KNOWN = Credentials(
    "emu-ups-client-id", "emu-ups-client-secret-not-real", extra={"merchant_id": "A1B2C3"}
)
INVALID_AUTHENTICATION = "250002"


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    return resource(request, state, path)


def errors(status: int, code: str, message: str) -> Response:
    """UPS's error body: ``{"response": {"errors": [{"code", "message"}]}}``."""
    return json_response({"response": {"errors": [{"code": code, "message": message}]}}, status)


def _missing_header() -> Response:
    return errors(401, "10400", "Invalid/Missing Authorization Header")


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _missing_header)
    if answered is not None:
        return answered
    if auth.method != "basic":
        return _missing_header()
    if auth.body_format != "form":
        return errors(400, "10001", "The request body must be application/x-www-form-urlencoded")
    if auth.params.get("grant_type") != "client_credentials":
        return errors(400, "10002", "Invalid or missing grant_type")
    if request.headers.get("x-merchant-id", "unset").strip() == "":
        return errors(400, "10003", "x-merchant-id is empty")
    if not auth.matches(KNOWN.client_id, KNOWN.client_secret):
        return errors(401, "10401", "ClientId is Invalid")
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    ttl = state.settings.token_ttl
    return json_response(
        {
            "token_type": "Bearer",
            "issued_at": str(int(state.server_time() * 1000)),
            "client_id": auth.client_id,
            "access_token": issued.value,
            "scope": auth.params.get("scope", ""),
            "expires_in": str(int(ttl) if ttl == int(ttl) else ttl),
            "refresh_count": "0",
            "status": "approved",
        },
        Cache_Control="no-store",
    )


def _rejected(reason: str) -> Response:
    return errors(401, INVALID_AUTHENTICATION, reason)


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    if state.check_token(PROVIDER, bearer(request)) == "ok":
        return None
    return "Invalid Authentication Information."


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _rejected,
        fault_reason="Invalid Authentication Information.",
    )
    if answered is not None:
        return answered
    return json_response(
        {
            "trackResponse": {
                "shipment": [{"package": [{"trackingNumber": path.rsplit("/", 1)[-1]}]}]
            },
            "path": path,
            "method": request.method,
        }
    )


def _says_invalid_authentication(body: Any) -> bool:
    response = body.get("response") if isinstance(body, dict) else None
    found = response.get("errors") if isinstance(response, dict) else None
    return isinstance(found, list) and any(
        isinstance(error, dict) and error.get("code") == INVALID_AUTHENTICATION for error in found
    )


def _served(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("trackResponse"), dict)


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path=RESOURCE_PATH,
    endpoint_paths={"token_url": TOKEN_PATH},
    rejection=Rejection(401, f"401 code {INVALID_AUTHENTICATION}", _says_invalid_authentication),
    served=_served,
    demo=DemoPlan(
        revoked=f"revoked: 401 code {INVALID_AUTHENTICATION} -> 1 refresh, 1 resend",
        first="first call fetched a token (Basic, every answer field a string)",
        extra=(
            DemoCheck(
                "without merchant_id: no x-merchant-id, still a token",
                token_requests=1,
                options={"merchant_id": None},
            ),
        ),
    ),
)
