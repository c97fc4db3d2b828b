"""DHL Express (MyDHL API) in the emulator: HTTP Basic on every call, ``x-version`` required.

- ``GET /mydhl/address-validate`` (and any other path, any method) with the test
  username and a live password, and an ``x-version`` header → 200 ``{"warnings": [],
  "address": [...]}``.
- Bad credentials → 401 ``{"instance", "detail", "title": "Unauthorized", "message",
  "status": "401"}`` (MyDHL's error fields; the exact 401 body is a guess).
- Good credentials without ``x-version`` → 400 of the same shape, ``detail`` naming it.

The fixed username and password are ``emu-mydhl-user`` and
``emu-mydhl-password-0000-not-real``; ``emu.issue_token("mydhl")`` makes more passwords
(for the same username), and revoking works on all.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from .app import begin_protected_request, json_response
from .page import Credentials, DemoPlan, Page, Rejection
from .state import EmulatorState
from .static import basic_pair, key_accepted

__all__ = ["PAGE", "handle"]

PROVIDER = "mydhl"
KNOWN = Credentials(
    "emu-mydhl-user",
    "emu-mydhl-unused-0000-not-real",  # MyDHL has no client secret: the password is below
    token="emu-mydhl-password-0000-not-real",  # noqa: S106 - public test value
)
INVALID = "Invalid Credentials"


def _problem(path: str, status: int, title: str, detail: str) -> Response:
    body = {
        "instance": f"/expressapi{path}",
        "detail": detail,
        "title": title,
        "message": title,
        "status": str(status),
    }
    return json_response(body, status)


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    pair = basic_pair(request)
    if pair is None:
        return "Missing Authorization header: use HTTP Basic with the API username and password"
    username, password = pair
    ok = username == KNOWN.client_id and key_accepted(state, PROVIDER, password)
    return None if ok else INVALID


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda r: _authenticate(r, state),
        lambda detail: _problem(path, 401, "Unauthorized", detail),
        fault_reason=INVALID,
    )
    if answered is not None:
        return answered
    if not request.headers.get("x-version", "").strip():
        return _problem(path, 400, "Bad Request", "Missing required header: x-version")
    address = {"countryCode": "DE", "postalCode": "53113", "cityName": "Bonn"}
    return json_response({"warnings": [], "address": [address]})


def _says_unauthorized(body: Any) -> bool:
    return isinstance(body, dict) and body.get("title") == "Unauthorized"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=None,
    resource_path="/address-validate",
    endpoint_paths={"api_url": ""},
    rejection=Rejection(401, '401 "Unauthorized"', _says_unauthorized),
    served=lambda body: isinstance(body, dict) and isinstance(body.get("address"), list),
    tokens_expire=False,  # passwords live until changed
    demo=DemoPlan(
        token_option="password",  # noqa: S106 - the name of an argument
        first="static Basic credentials + x-version, nothing to fetch",
        # get_token() is the Basic credential, not the password: the API rejects it once
        revoke="fault",
        revoked="credentials rejected: 401 returned as is, a warning, no resend",
        renewable=False,
    ),
)
