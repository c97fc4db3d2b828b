"""DoorDash Drive in the emulator: no token endpoint; every call's JWT is verified for real.

- Every path is a protected resource (``/drive/v2/deliveries/<id>``, ``/drive/v2/quotes``
  ...). ``Authorization: Bearer <JWT>`` is checked the way DoorDash documents it, with
  the standard library only (no JOSE library, so a mistake in the client's signing
  cannot hide behind the same mistake here): header ``alg: HS256``, ``typ: JWT``,
  ``dd-ver: DD-JWT-V1``; the HMAC-SHA256 signature with the base64url-decoded signing
  secret; ``aud: "doordash"``; ``iss`` and ``kid`` of the known access key; ``iat`` not
  in the future (beyond ``doordash_clock_tolerance`` seconds, on the emulator's clock,
  which ``clock_offset`` moves); ``exp`` at most 30 minutes after ``iat`` and not past.
- A valid JWT is accepted on first sight and remembered, so ``emu.revoke(jwt)`` (and
  ``revoke_all``) makes the next call with it fail, as a refused key would.
- A refused JWT: 401 ``{"code": "authentication_error", "message": ...}`` (DoorDash's
  error bodies always hold ``code`` and ``message``; the code's value is the
  emulator's guess).

``emu.issue_token("doordash")`` signs a valid JWT for the known key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import bearer, begin_protected_request, json_response, method_not_allowed
from .page import Credentials, DemoPlan, Page, Rejection
from .settings import seconds
from .state import EmulatorState

__all__ = ["PAGE", "check_jwt", "sign"]

PROVIDER = "doordash"
#: A base64url secret with '-' and '_': a plain base64 decode refuses it.
KNOWN = Credentials(
    "emu-doordash-developer",
    "ZW11LWRvb3JkYXNoLXNpZ25pbmcta2V5LW5vdC1yZWFs-_---g",
    extra={"key_id": "emu-doordash-key-0001"},
)
HEADER = {"alg": "HS256", "typ": "JWT", "dd-ver": "DD-JWT-V1"}
MAX_LIFETIME = 1800
REFUSED = "authentication_error"


def _b64url_decode(text: str) -> bytes:
    if not text or any(c in text for c in "+/="):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _secret() -> bytes:
    return _b64url_decode(KNOWN.client_secret)


def sign(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A JWT signed with the known key (``emu.issue_token`` and tests use it)."""
    parts = [
        _b64url(json.dumps(part, separators=(",", ":")).encode())
        for part in (header or HEADER, claims)
    ]
    signing_input = ".".join(parts).encode()
    signature = hmac.new(_secret(), signing_input, hashlib.sha256).digest()
    return f"{parts[0]}.{parts[1]}.{_b64url(signature)}"


def _mint(client_id: str, lifetime: float, server_time: float) -> str:
    issued = math.floor(server_time)
    return sign(
        {
            "aud": "doordash",
            "iss": client_id,
            "kid": KNOWN.extra["key_id"],
            "iat": issued,
            "exp": issued + max(1, min(int(lifetime), MAX_LIFETIME)),
            "jti": secrets.token_urlsafe(12),
        }
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def check_jwt(value: str, now: float, tolerance: float) -> tuple[str | None, float]:
    """Why DoorDash would refuse ``value`` at wall-clock ``now`` (``None``: it would
    not), and its ``exp``."""
    parts = value.split(".")
    if len(parts) != 3:
        return "The bearer token is not a JWT.", 0.0
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return "The JWT could not be decoded.", 0.0
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return "The JWT could not be decoded.", 0.0
    for name, wanted in HEADER.items():
        if header.get(name) != wanted:
            return f"The JWT header must have {name}={wanted!r}.", 0.0
    expected = hmac.new(_secret(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        return "The JWT signature is invalid.", 0.0
    if claims.get("aud") != "doordash":
        return "The JWT aud claim must be 'doordash'.", 0.0
    if claims.get("iss") != KNOWN.client_id or claims.get("kid") != KNOWN.extra["key_id"]:
        return "No access key with this developer id (iss) and key id (kid).", 0.0
    issued, expires = _number(claims.get("iat")), _number(claims.get("exp"))
    if issued is None or expires is None:
        return "The JWT must have numeric iat and exp claims.", 0.0
    if issued > now + tolerance:
        return "The JWT iat is in the future.", expires
    if expires > issued + MAX_LIFETIME:
        return "The JWT exp is more than 30 minutes after its iat.", expires
    if expires <= now:
        return "The JWT has expired.", expires
    return None, expires


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    value = bearer(request)
    if value is None:
        return "Authorization: Bearer <JWT> is missing."
    now = state.server_time()
    reason, expires = check_jwt(value, now, state.settings.doordash_clock_tolerance)
    if reason is not None:
        return reason
    status = state.check_token(PROVIDER, value)
    if status == "unknown":  # a valid JWT, seen first now: remember it (revoke works)
        state.accept(PROVIDER, value, ttl=expires - now)
        status = state.check_token(PROVIDER, value)  # the verdict, as for any token
    if status == "revoked":
        return "The JWT was revoked."
    return None if status == "ok" else "The JWT has expired."


def _rejected(message: str) -> Response:
    return json_response({"code": REFUSED, "message": message}, 401)


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _rejected,
        fault_reason="The JWT has expired.",
    )
    if answered is not None:
        return answered
    if request.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return method_not_allowed("GET, POST, PUT, PATCH, DELETE")
    delivery = path.rstrip("/").rpartition("/")[2] or "D-1001"
    return json_response(
        {"external_delivery_id": delivery, "delivery_status": "created", "path": path}
    )


def _says_refused(body: Any) -> bool:
    return isinstance(body, dict) and body.get("code") == REFUSED


def _served(body: Any) -> bool:
    return isinstance(body, dict) and body.get("delivery_status") == "created"


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=None,
    resource_path="/drive/v2/deliveries/D-1001",
    endpoint_paths={"api_url": ""},
    rejection=Rejection(401, f'401 "{REFUSED}"', _says_refused),
    served=_served,
    settings={"doordash_clock_tolerance": seconds("doordash_clock_tolerance", 60.0)},
    mint=_mint,
    demo=DemoPlan(
        first="first call minted a JWT",
        revoked=f'revoked: 401 "{REFUSED}" -> 1 re-mint, 1 resend',
    ),
)
