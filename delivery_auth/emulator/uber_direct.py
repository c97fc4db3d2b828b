"""Uber Direct in the emulator: its OAuth token endpoint and the deliveries API.

- ``POST /uber_direct/oauth/v2/token`` — form-urlencoded or multipart (not JSON, as
  Uber documents): ``client_id``, ``client_secret`` (in the body), ``grant_type=
  client_credentials`` and ``scope`` (``eats.deliveries``, optionally with
  ``direct.organizations``). Answers ``{access_token, expires_in (int), token_type:
  "Bearer", scope}``; ``expires_in`` is the emulator's ``token_ttl`` (Uber: 2592000, 30
  days). Errors are OAuth errors (``invalid_client`` 401, ``invalid_scope`` 400, ...).
- The setting ``uber_direct_token_quota`` (0: off) plays Uber's limit of 100 token
  requests an hour: past that many token requests since the last reset, the endpoint
  answers 429 with ``Retry-After: 3600``.
- Every other path is a protected resource (``/v1/customers/<id>/deliveries``):
  ``Bearer <token>`` → 200; an expired, revoked or unknown token → 401 ``{"code":
  "unauthorized", "message", "kind": "error"}`` (the shape of Uber's SDK errors).
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
from .page import Credentials, DemoPlan, Page, Rejection
from .settings import count
from .state import EmulatorState

__all__ = ["PAGE", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/oauth/v2/token"
PROVIDER = "uber_direct"
KNOWN = Credentials("emu-uber-direct-client", "emu-uber-direct-secret-0000-not-real")
SCOPES = frozenset({"eats.deliveries", "direct.organizations"})


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    return resource(request, state, path)


def _oauth_error(error: str, description: str, status: int = 400, **headers: str) -> Response:
    return json_response(
        {"error": error, "error_description": description},
        status,
        Cache_Control="no-store",
        **headers,
    )


def _invalid_client() -> Response:
    return _oauth_error("invalid_client", "Client authentication failed.", 401)


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _invalid_client)
    if answered is not None:
        return answered
    quota = state.settings.uber_direct_token_quota
    if quota and state.stats.token_requests[PROVIDER] > quota:
        return _oauth_error(
            "rate_limit_exceeded",
            f"More than {quota} token requests this hour; reuse the token.",
            429,
            Retry_After="3600",
        )
    if auth.body_format not in ("form", "multipart"):
        return _oauth_error("invalid_request", "Send the parameters as a form, not JSON.")
    if auth.params.get("grant_type") != "client_credentials":
        return _oauth_error("unsupported_grant_type", "grant_type must be client_credentials.")
    if auth.method != "body" or not auth.matches(KNOWN.client_id, KNOWN.client_secret):
        return _invalid_client()
    scopes = set(auth.params.get("scope", "").split())
    if not scopes or not scopes <= SCOPES:
        return _oauth_error("invalid_scope", "scope must be eats.deliveries.")
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    return json_response(
        {
            "access_token": issued.value,
            "expires_in": max(1, int(state.settings.token_ttl)),
            "token_type": "Bearer",
            "scope": " ".join(sorted(scopes)),
        },
        Cache_Control="no-store",
    )


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    status = state.check_token(PROVIDER, bearer(request))
    return None if status == "ok" else "The access token is invalid or expired."


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        lambda message: json_response(
            {"code": "unauthorized", "message": message, "kind": "error"}, 401
        ),
        fault_reason="The access token is invalid or expired.",
    )
    if answered is not None:
        return answered
    if request.method not in ("GET", "POST", "DELETE"):
        return method_not_allowed("GET, POST, DELETE")
    return json_response({"object": "list", "data": [], "url": path})


def _says_unauthorized(body: Any) -> bool:
    return isinstance(body, dict) and body.get("code") == "unauthorized"


def _served(body: Any) -> bool:
    return isinstance(body, dict) and body.get("object") == "list"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path="/v1/customers/emu-customer/deliveries",
    rejection=Rejection(401, '401 "unauthorized"', _says_unauthorized),
    served=_served,
    settings={"uber_direct_token_quota": count("uber_direct_token_quota", 0)},
    demo=DemoPlan(revoked='revoked: 401 "unauthorized" -> 1 refresh, 1 resend'),
)
