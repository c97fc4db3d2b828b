"""DHL Parcel DE in the emulator: a password-grant token endpoint and the shipping API.

- ``POST /dhl_parcel_de/parcel/de/account/auth/ropc/v1/token`` — one form with
  ``grant_type=password``, ``username``, ``password``, ``client_id`` (the API key) and
  ``client_secret``. The login it accepts is the sandbox login DHL documents
  (``user-valid`` / ``SandboxPasswort2023!``), with the emulator's own API key and secret.
  Answers ``{access_token (opaque), token_type: "Bearer", expires_in}``. A wrong API key
  or secret is 401 problem details; a wrong username or password is 400
  ``{"error": "invalid_grant"}`` (DHL does not document these bodies: the emulator's
  reading).
- Every other path is a protected resource (``/parcel/de/shipping/v2/...``):
  ``Bearer <token>`` → 200; a missing, unknown, expired or revoked token → 401
  ``application/problem+json`` ``{"title": "Unauthorized", "statusCode": 401,
  "detail": ...}``.

:data:`PAGE` describes it to the emulator and the demo.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .app import bearer, begin_protected_request, begin_token_request, json_response
from .page import Credentials, DemoPlan, Page, Rejection
from .state import EmulatorState

__all__ = ["PAGE", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/parcel/de/account/auth/ropc/v1/token"
RESOURCE_PATH = "/parcel/de/shipping/v2/"
PROVIDER = "dhl_parcel_de"
KNOWN = Credentials(
    "emu-dhl-parcel-de-api-key",
    "emu-dhl-parcel-de-api-secret-not-real",
    extra={"username": "user-valid", "password": "SandboxPasswort2023!"},
)


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    return resource(request, state, path)


def problem(status: int, title: str, detail: str) -> Response:
    """DHL's problem details: ``{title, statusCode, detail}``."""
    return json_response(
        {"title": title, "statusCode": status, "detail": detail},
        status,
        content_type="application/problem+json",
    )


def _invalid_client() -> Response:
    return problem(401, "Unauthorized", "Invalid client credentials.")


def _oauth_error(error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, 400)


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _invalid_client)
    if answered is not None:
        return answered
    if auth.body_format != "form":
        return problem(415, "Unsupported Media Type", "Send the fields as a form.")
    if auth.method != "body":
        return _oauth_error("invalid_request", "Send client_id and client_secret in the form.")
    if auth.params.get("grant_type") != "password":
        return _oauth_error("unsupported_grant_type", "Only grant_type=password is supported.")
    if not auth.matches(KNOWN.client_id, KNOWN.client_secret):
        return _invalid_client()
    login = (auth.params.get("username"), auth.params.get("password"))
    if login != (KNOWN.value("username"), KNOWN.value("password")):
        return _oauth_error("invalid_grant", "Invalid user credentials.")
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    ttl = state.settings.token_ttl
    return json_response(
        {
            "access_token": issued.value,
            "token_type": "Bearer",
            "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        },
        Cache_Control="no-store",
    )


def _rejected(detail: str) -> Response:
    response = problem(401, "Unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    status = state.check_token(PROVIDER, bearer(request))
    if status == "ok":
        return None
    if status in ("expired", "revoked"):
        return "The access token has expired."
    return "Unauthorized for given resource."


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _rejected,
        fault_reason="The access token has expired.",
    )
    if answered is not None:
        return answered
    return json_response(
        {
            "api": {"name": "parcel-de-shipping-v2", "version": "2.1.0", "env": "emulator"},
            "path": path,
            "method": request.method,
        }
    )


def _says_unauthorized(body: Any) -> bool:
    return isinstance(body, dict) and body.get("statusCode") == 401


def _served(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("api"), dict)


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path=RESOURCE_PATH,
    endpoint_paths={"token_url": TOKEN_PATH},
    rejection=Rejection(401, "401 problem+json Unauthorized", _says_unauthorized),
    served=_served,
    demo=DemoPlan(
        revoked="revoked: 401 problem+json -> 1 password grant, 1 resend",
        first="first call: password grant (GKP login) -> a token",
    ),
)
