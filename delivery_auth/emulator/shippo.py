"""Shippo in the emulator: ``Authorization: ShippoToken <token>`` on every path.

- ``GET /shippo/carrier_accounts`` (and any other path, any method) with a live token
  → 200 ``{"next": null, "previous": null, "results": [...]}``.
- No token → 401 ``{"detail": "Authentication credentials were not provided."}``; an
  unknown or revoked one → 401 ``{"detail": "Token does not exist"}`` (both from
  Shippo's documentation).

The fixed token is ``shippo_test_emu-0000-not-real``; ``emu.issue_token("shippo")``
makes more (``shippo_test_...``), and revoking works on all.
"""

from __future__ import annotations

import secrets

from werkzeug.wrappers import Request, Response

from .app import bearer, begin_protected_request, json_response
from .page import Credentials, DemoPlan, Page, Rejection
from .state import EmulatorState
from .static import key_accepted

__all__ = ["PAGE", "handle"]

PROVIDER = "shippo"
KNOWN = Credentials(
    "emu-shippo-account",
    "emu-shippo-unused-0000-not-real",  # Shippo has no client secret
    token="shippo_test_emu-0000-not-real",  # noqa: S106 - public test value
)
NOT_PROVIDED = "Authentication credentials were not provided."
NO_SUCH_TOKEN = "Token does not exist"


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    token = bearer(request, "ShippoToken")
    if token is None:
        return NOT_PROVIDED
    return None if key_accepted(state, PROVIDER, token) else NO_SUCH_TOKEN


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda r: _authenticate(r, state),
        lambda detail: json_response({"detail": detail}, 401),
        fault_reason=NO_SUCH_TOKEN,
    )
    if answered is not None:
        return answered
    account = {"object_id": "emu-1", "carrier": "usps", "active": True, "test": True}
    return json_response({"next": None, "previous": None, "results": [account]})


def _mint(client_id: str, lifetime: float, server_time: float) -> str:
    return f"shippo_test_{secrets.token_hex(20)}"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=None,
    resource_path="/carrier_accounts",
    endpoint_paths={"api_url": ""},
    rejection=Rejection(
        401,
        f'401 "{NO_SUCH_TOKEN}"',
        lambda body: isinstance(body, dict) and body.get("detail") in (NO_SUCH_TOKEN, NOT_PROVIDED),
    ),
    served=lambda body: isinstance(body, dict) and isinstance(body.get("results"), list),
    mint=_mint,
    tokens_expire=False,  # API tokens live until revoked
    demo=DemoPlan(
        token_option="token",  # noqa: S106 - the name of an argument
        first="static ShippoToken header, nothing to fetch",
        revoked="token revoked: 401 returned as is, a warning, no resend",
        renewable=False,
    ),
)
