"""FedEx in the emulator: its OAuth token endpoint (form fields, child grants) and an API.

- ``POST /fedex/oauth/token`` — form-urlencoded ``grant_type``, ``client_id`` and
  ``client_secret`` (HTTP Basic is not FedEx's way: refused). ``client_credentials``
  needs the known API key and secret key; ``csp_credentials`` and
  ``client_pc_credentials`` also the known child key and secret, in the fields named by
  the setting ``fedex_child_fields`` (default ``("child_Key", "child_secret")``, FedEx's
  spec; tests change it to show that ``FedExAuth(child_fields=...)`` adapts). Answers
  ``{access_token, token_type: "bearer", expires_in (int), scope: "CXS"}``.
- Every other path is a protected resource: ``Bearer <token>`` → 200 ``{"transactionId",
  "output": {...}}``.
- Bad credentials at the token URL and an expired, revoked or unknown token on the API
  get the same answer: 401 ``{"transactionId", "errors": [{"code":
  "NOT.AUTHORIZED.ERROR", "message"}]}`` (FedEx's; the messages are the emulator's).
"""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import (
    bearer,
    begin_protected_request,
    begin_token_request,
    json_response,
    method_not_allowed,
)
from .page import Credentials, DemoCheck, DemoPlan, Page, Rejection, Setting
from .state import EmulatorState

__all__ = ["PAGE", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/oauth/token"
PROVIDER = "fedex"
KNOWN = Credentials(
    "emu-fedex-api-key",
    "emu-fedex-secret-key-0000-not-real",
    extra={"child_key": "emu-fedex-child-key", "child_secret": "emu-fedex-child-secret-not-real"},
)
NOT_AUTHORIZED = "NOT.AUTHORIZED.ERROR"
CHILD_GRANTS = ("csp_credentials", "client_pc_credentials")


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    return resource(request, state, path)


def errors(status: int, code: str, message: str) -> Response:
    """FedEx's error body: ``{"transactionId", "errors": [{"code", "message"}]}``."""
    body = {"transactionId": str(uuid.uuid4()), "errors": [{"code": code, "message": message}]}
    return json_response(body, status)


def _not_authorized() -> Response:
    return errors(
        401,
        NOT_AUTHORIZED,
        "The given client credentials were not valid. Please modify your request and try again.",
    )


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _not_authorized)
    if answered is not None:
        return answered
    if auth.body_format != "form":
        return errors(
            415, "UNSUPPORTED.MEDIA.TYPE", "Send the fields as application/x-www-form-urlencoded."
        )
    grant = auth.params.get("grant_type")
    if grant not in ("client_credentials", *CHILD_GRANTS):
        return errors(
            400, "INVALID.INPUT.EXCEPTION", "Invalid field value in the input: grant_type"
        )
    if auth.method != "body" or not auth.matches(KNOWN.client_id, KNOWN.client_secret):
        return _not_authorized()
    if grant in CHILD_GRANTS:
        key_field, secret_field = state.settings.fedex_child_fields
        child = (auth.params.get(key_field), auth.params.get(secret_field))
        if child != (KNOWN.extra["child_key"], KNOWN.extra["child_secret"]):
            return _not_authorized()
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    return json_response(
        {
            "access_token": issued.value,
            "token_type": "bearer",
            "expires_in": max(1, int(state.settings.token_ttl)),
            "scope": "CXS",
        },
        Cache_Control="no-store",
    )


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    status = state.check_token(PROVIDER, bearer(request))
    if status in ("expired", "revoked"):
        return "Access token expired. Please modify your request and try again."
    return None if status == "ok" else "Invalid access token. Please modify your request."


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        lambda message: errors(401, NOT_AUTHORIZED, message),
        fault_reason="Access token expired. Please modify your request and try again.",
    )
    if answered is not None:
        return answered
    if request.method not in ("GET", "POST", "PUT", "DELETE"):
        return method_not_allowed("GET, POST, PUT, DELETE")
    return json_response(
        {"transactionId": str(uuid.uuid4()), "output": {"path": path, "alerts": []}}
    )


def _child_fields(value: Any) -> tuple[str, str]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(name, str) and name for name in value)
    ):
        raise ValueError(f"fedex_child_fields must be two form field names, got {value!r}")
    return (value[0], value[1])


def _says_not_authorized(body: Any) -> bool:
    found = body.get("errors") if isinstance(body, dict) else None
    return isinstance(found, list) and any(
        isinstance(error, dict) and error.get("code") == NOT_AUTHORIZED for error in found
    )


def _served(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("output"), dict)


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path="/rate/v1/rates/quotes",
    resource_method="POST",
    resource_body={"accountNumber": {"value": "740561073"}, "requestedShipment": {}},
    endpoint_paths={"token_url": TOKEN_PATH},
    rejection=Rejection(401, f'401 "{NOT_AUTHORIZED}"', _says_not_authorized),
    served=_served,
    settings={"fedex_child_fields": Setting(("child_Key", "child_secret"), _child_fields)},
    demo=DemoPlan(
        revoked=f'revoked: 401 "{NOT_AUTHORIZED}" -> 1 refresh, 1 resend',
        extra=(
            DemoCheck(
                "csp_credentials with child_Key/child_secret -> 1 token request",
                token_requests=1,
                options={
                    "grant_type": "csp_credentials",
                    "child_key": KNOWN.extra["child_key"],
                    "child_secret": KNOWN.extra["child_secret"],
                },
            ),
        ),
    ),
)
