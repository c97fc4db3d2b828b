"""ShipEngine in the emulator: ``API-Key: <key>`` on every path.

- ``GET /shipengine/v1/carriers`` (and any other path, any method) with a live key →
  200 ``{"carriers": [...], "request_id": ...}``.
- A missing, unknown or revoked key → 401 ``{"request_id", "errors": [{"error_source":
  "shipengine", "error_type": "security", "error_code": "unauthorized", "message":
  "Access denied."}]}`` (the values observed from ShipEngine; the exact message is a guess).

The fixed key is ``TEST_emu-shipengine-key-0000-not-real`` (sandbox keys start with
``TEST_``); ``emu.issue_token("shipengine")`` makes more, and revoking works on all.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import begin_protected_request, json_response
from .page import Credentials, DemoPlan, Page, Rejection
from .state import EmulatorState
from .static import key_accepted

__all__ = ["PAGE", "handle"]

PROVIDER = "shipengine"
KNOWN = Credentials(
    "emu-shipengine-account",
    "emu-shipengine-unused-0000-not-real",  # ShipEngine has no client secret
    token="TEST_emu-shipengine-key-0000-not-real",  # noqa: S106 - public test value
)


def _rejected(message: str) -> Response:
    error = {
        "error_source": "shipengine",
        "error_type": "security",
        "error_code": "unauthorized",
        "message": message,
    }
    return json_response({"request_id": str(uuid.uuid4()), "errors": [error]}, 401)


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda r: None if key_accepted(state, PROVIDER, r.headers.get("API-Key")) else "denied",
        lambda reason: _rejected("Access denied."),
        fault_reason="denied",
    )
    if answered is not None:
        return answered
    carrier = {"carrier_id": "se-123456", "carrier_code": "stamps_com", "friendly_name": "USPS"}
    return json_response({"carriers": [carrier], "request_id": str(uuid.uuid4())})


def _says_unauthorized(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("error_code") == "unauthorized" for e in errors
    )


def _mint(client_id: str, lifetime: float, server_time: float) -> str:
    return f"TEST_emu-{secrets.token_urlsafe(24)}"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=None,
    resource_path="/v1/carriers",
    endpoint_paths={"api_url": ""},
    rejection=Rejection(401, '401 "unauthorized"', _says_unauthorized),
    served=lambda body: isinstance(body, dict) and isinstance(body.get("carriers"), list),
    mint=_mint,
    tokens_expire=False,  # API keys live until revoked
    demo=DemoPlan(
        token_option="api_key",  # noqa: S106 - the name of an argument
        first="static API-Key header, nothing to fetch",
        revoked="key revoked: 401 returned as is, a warning, no resend",
        renewable=False,
    ),
)
