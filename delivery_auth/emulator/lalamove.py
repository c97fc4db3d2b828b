"""Lalamove API v3 in the emulator: every request's HMAC signature verified for real.

- Every path is the API (``POST /lalamove/v3/quotations``, ``GET /lalamove/v3/cities``,
  ...). ``Authorization: hmac {key}:{ts}:{signature}`` is checked the way Lalamove
  does: the emulator recomputes HMAC-SHA256 with the test secret over
  ``"{ts}\\r\\n{METHOD}\\r\\n{path}\\r\\n\\r\\n{body}"``, where ``path`` is the request
  target exactly as it arrived (here below ``/lalamove``) and ``body`` the raw bytes.
- A timestamp further than ``emu.lalamove_clock_tolerance`` seconds (default 300) from
  the emulator's clock (``clock_offset`` included) is stale. Lalamove does not
  document its tolerance: the setting lets tests try any.
- Rejections are HTTP 401 ``{"errors": [{"id": "ERR_UNAUTHORIZED", "message", "detail"}]}``
  (the shape is Lalamove's SDK's; the ``id`` value is the emulator's guess). A
  missing or unknown ``Market`` is 422 ``ERR_INVALID_MARKET``; a ``Request-ID`` that is
  not a UUID is 422 ``ERR_INVALID_REQUEST_ID`` (a missing one is accepted).

:data:`PAGE` describes it to the emulator and the demo.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import begin_protected_request, json_response
from .page import Credentials, DemoCheck, DemoPlan, Page, Rejection
from .settings import seconds
from .state import EmulatorState

__all__ = ["PAGE", "handle", "string_to_sign"]

PROVIDER = "lalamove"
KNOWN = Credentials(
    "pk_test_emu_lalamove_0000", "sk_test_emu-lalamove-secret-not-real", extra={"market": "HK"}
)
MARKETS = frozenset({"BR", "HK", "ID", "MY", "MX", "PH", "SG", "TH", "TW", "VN"})
UNAUTHORIZED = "ERR_UNAUTHORIZED"


def string_to_sign(timestamp: str, method: str, target: str, body: bytes) -> bytes:
    """Lalamove's string to sign, as bytes (the body is signed as sent)."""
    return f"{timestamp}\r\n{method}\r\n{target}\r\n\r\n".encode() + body


def _errors(status: int, error_id: str, message: str, detail: str = "") -> Response:
    return json_response(
        {"errors": [{"id": error_id, "message": message, "detail": detail}]}, status
    )


def _rejected(detail: str) -> Response:
    return _errors(401, UNAUTHORIZED, "Unauthorized", detail)


def _target(request: Request) -> str:
    """The request target as the client sent it (and signed it)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return str(raw) if raw else request.full_path.rstrip("?")


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme != "hmac":
        return "Authorization must be 'hmac {key}:{timestamp}:{signature}'"
    key, _, rest = credential.strip().partition(":")
    timestamp, _, signature = rest.partition(":")
    if key != KNOWN.client_id:
        return "unknown API key"
    if not timestamp.isascii() or not timestamp.isdigit():
        return "the timestamp must be Unix milliseconds"
    tolerance: float = state.settings.lalamove_clock_tolerance
    if abs(state.server_time() * 1000 - int(timestamp)) > tolerance * 1000:
        return "the timestamp is too far from the server's clock"
    expected = hmac.new(
        KNOWN.client_secret.encode(),
        string_to_sign(timestamp, request.method, _target(request), request.get_data(cache=True)),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the signature does not match"
    return None


def _request_id_ok(value: str | None) -> bool:
    if value is None:
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _rejected,
        fault_reason="the signature does not match",
    )
    if answered is not None:
        return answered
    market = request.headers.get("Market", "")
    if market not in MARKETS:
        return _errors(422, "ERR_INVALID_MARKET", "Invalid market", f"Market {market[:8]!r}")
    if not _request_id_ok(request.headers.get("Request-ID")):
        return _errors(422, "ERR_INVALID_REQUEST_ID", "Request-ID must be a UUID")
    return json_response({"data": {"path": path, "method": request.method, "market": market}})


def _says_unauthorized(body: Any) -> bool:
    errors = body.get("errors") if isinstance(body, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict) and e.get("id") == UNAUTHORIZED for e in errors
    )


def _served(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("data"), dict)


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=None,
    resource_path="/v3/quotations",
    resource_method="POST",
    resource_body={
        "data": {
            "serviceType": "MOTORCYCLE",
            "language": "en_HK",
            "stops": [
                {"coordinates": {"lat": "22.33547", "lng": "114.17651"}, "address": "Kowloon"},
                {"coordinates": {"lat": "22.29553", "lng": "114.16885"}, "address": "TST"},
            ],
        }
    },
    endpoint_paths={"api_url": ""},
    rejection=Rejection(401, f'401 "{UNAUTHORIZED}"', _says_unauthorized),
    served=_served,
    settings={"lalamove_clock_tolerance": seconds("lalamove_clock_tolerance", 300.0)},
    tokens_expire=False,
    demo=DemoPlan(
        revoked=f'signature rejected: 401 "{UNAUTHORIZED}" -> signed anew, 1 resend',
        first="first call signed (1 signing lease, no network)",
        revoke="fault",
        refresh_ahead=False,
        extra=(
            DemoCheck(
                "server clock 4 min ahead: within tolerance, served",
                token_requests=2,
                settings={"clock_offset": 240.0},
            ),
        ),
    ),
)
