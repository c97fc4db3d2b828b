"""Sendcloud in the emulator: HTTP Basic with the public and secret key, or an OAuth2
Bearer token from its token endpoint.

- ``POST /sendcloud/oauth2/token`` — client credentials; the client must authenticate
  with HTTP Basic (a secret in the body is refused, as Sendcloud documents Basic only),
  ``grant_type=client_credentials`` and ``scope=api`` → ``{access_token, token_type:
  "Bearer", expires_in, scope: "api"}``; bad client → 401 ``{"error": "invalid_client"}``.
- ``GET /sendcloud/api/v2/user`` (and any other path, any method) with ``Basic
  public:secret`` or a live ``Bearer`` token → 200 ``{"user": {...}}``; anything else →
  401 ``{"error": {"code": 401, "request": ..., "message": ...}}`` (Sendcloud v2's
  error shape; the exact message is a guess).

The fixed keys are ``emu-sendcloud-public-key`` and ``emu-sendcloud-secret-key-0000-
not-real``; ``emu.issue_token("sendcloud")`` makes more secret keys (for the same
public key) as well as Bearer tokens, and revoking works on all.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .app import bearer, begin_protected_request, begin_token_request, json_response
from .page import Credentials, DemoCheck, DemoPlan, Page, Rejection
from .state import EmulatorState
from .static import basic_pair, key_accepted

__all__ = ["PAGE", "TOKEN_PATH", "handle"]

PROVIDER = "sendcloud"
SECRET = "emu-sendcloud-secret-key-0000-not-real"
# The secret key is also held as a token (``token``): Basic checks it like an issued one.
KNOWN = Credentials("emu-sendcloud-public-key", SECRET, token=SECRET)
TOKEN_PATH = "/oauth2/token"
INVALID = "Invalid username/password."


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


def token(request: Request, state: EmulatorState) -> Response:
    def refused() -> Response:
        return _oauth_error("invalid_client", "Client authentication failed", 401)

    auth, answered = begin_token_request(request, state, PROVIDER, refused)
    if answered is not None:
        return answered
    if auth.method != "basic":
        return refused()
    if auth.client_id != KNOWN.client_id or not key_accepted(state, PROVIDER, auth.client_secret):
        return refused()
    if auth.params.get("grant_type") != "client_credentials":
        return _oauth_error("unsupported_grant_type", "Use grant_type=client_credentials.")
    if auth.params.get("scope") != "api":
        return _oauth_error("invalid_scope", "The scope must be 'api'.")
    issued = state.issue(PROVIDER, KNOWN.client_id)
    ttl = state.settings.token_ttl
    return json_response(
        {
            "access_token": issued.value,
            "token_type": "Bearer",
            "expires_in": int(ttl) if ttl == int(ttl) else ttl,
            "scope": "api",
        },
        Cache_Control="no-store",
    )


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    access_token = bearer(request)
    if access_token is not None:
        return None if key_accepted(state, PROVIDER, access_token) else "Invalid access token."
    pair = basic_pair(request)
    if pair is None:
        return "Authentication credentials were not provided."
    public, secret = pair
    return None if public == KNOWN.client_id and key_accepted(state, PROVIDER, secret) else INVALID


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda r: _authenticate(r, state),
        lambda message: json_response(
            {"error": {"code": 401, "request": path.lstrip("/"), "message": message}}, 401
        ),
        fault_reason=INVALID,
    )
    if answered is not None:
        return answered
    return json_response({"user": {"username": "emu-sendcloud", "company_name": "Emulated"}})


def _says_unauthorized(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == 401


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=None,  # Basic by default; the OAuth2 endpoint is the token_url option's
    resource_path="/api/v2/user",
    endpoint_paths={"token_url": TOKEN_PATH, "api_url": "/api/v2"},
    rejection=Rejection(401, '401 {"error": {"code": 401}}', _says_unauthorized),
    served=lambda body: isinstance(body, dict) and isinstance(body.get("user"), dict),
    demo=DemoPlan(
        token_option="secret_key",  # noqa: S106 - the name of an argument
        first="static Basic public:secret, nothing to fetch",
        # get_token() is the Basic credential, not the secret key: the API rejects it once
        revoke="fault",
        revoked="credentials rejected: 401 returned as is, a warning, no resend",
        renewable=False,
        extra=(
            DemoCheck(
                "oauth=True: Basic client auth, scope=api, 1 token request",
                token_requests=1,
                options={"oauth": True},
            ),
        ),
    ),
)
