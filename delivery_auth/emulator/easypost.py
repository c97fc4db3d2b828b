"""EasyPost in the emulator: HTTP Basic, the API key as the username, no password.

- ``GET /easypost/v2/addresses`` (and any other path, any method) with a live key →
  200 ``{"addresses": [...], "has_more": false}``.
- A missing, unknown or revoked key → 401 ``{"error": {"code": "APIKEY.INACTIVE" or
  "UNAUTHORIZED", "message", "errors": []}}`` (EasyPost's error shape; the codes are the
  emulator's guess, the inactive-key message is EasyPost's).

The fixed key is ``EZTKemu0000notreal``; ``emu.issue_token("easypost")`` makes more, and
revoking works on all.
"""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import begin_protected_request, json_response
from .page import Credentials, DemoPlan, Page, Rejection
from .state import EmulatorState
from .static import basic_pair, key_accepted

__all__ = ["PAGE", "handle"]

PROVIDER = "easypost"
KNOWN = Credentials(
    "emu-easypost-account",
    "emu-easypost-unused-0000-not-real",  # EasyPost has no client secret
    token="EZTKemu0000notreal",  # noqa: S106 - public test value
)
INACTIVE = (
    "This api key is no longer active. Please use a different api key or reactivate this key."
)
MISSING = "A valid API key is required; send it as the Basic username with an empty password."


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    pair = basic_pair(request)
    if pair is None:
        return MISSING
    key, password = pair
    if state.check_token(PROVIDER, key) == "revoked":
        return INACTIVE
    return None if key_accepted(state, PROVIDER, key) and password == "" else MISSING


def _rejected(message: str) -> Response:
    code = "APIKEY.INACTIVE" if message == INACTIVE else "UNAUTHORIZED"
    return json_response({"error": {"code": code, "message": message, "errors": []}}, 401)


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda r: _authenticate(r, state),
        _rejected,
        fault_reason=INACTIVE,
    )
    if answered is not None:
        return answered
    address = {"id": "adr_emu", "object": "Address", "city": "San Francisco", "mode": "test"}
    return json_response({"addresses": [address], "has_more": False})


def _says_rejected(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and isinstance(error.get("code"), str)


def _mint(client_id: str, lifetime: float, server_time: float) -> str:
    return f"EZTK{secrets.token_hex(16)}"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=None,
    resource_path="/v2/addresses",
    endpoint_paths={"api_url": "/v2"},
    rejection=Rejection(401, '401 {"error": {"code": ...}}', _says_rejected),
    served=lambda body: isinstance(body, dict) and isinstance(body.get("addresses"), list),
    mint=_mint,
    tokens_expire=False,  # API keys live until deactivated
    demo=DemoPlan(
        token_option="api_key",  # noqa: S106 - the name of an argument
        first="static Basic key, nothing to fetch",
        # get_token() is the Basic credential, not the key: the API rejects it once instead
        revoke="fault",
        revoked="key rejected: 401 returned as is, a warning, no resend",
        renewable=False,
    ),
)
