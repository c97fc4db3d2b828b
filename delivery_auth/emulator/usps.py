"""USPS APIs v3 in the emulator: a JSON token endpoint and an API with USPS's 401 shape.

- ``POST /usps/oauth2/v3/token`` — client credentials as JSON
  ``{"client_id", "client_secret", "grant_type": "client_credentials"}`` (a form works
  too, as on the real platform). Answers Apigee's fields: ``access_token``,
  ``token_type``, ``issued_at`` (epoch **milliseconds**), ``expires_in``, ``status``,
  ``scope``, ``issuer``, ``client_id``, ``application_name``, ``api_products``,
  ``public_key``; numbers, as live responses have them, or every field a string as in
  USPS's README (``emu.usps_fields = "strings"``). Token errors are OAuth
  ``error``/``error_description`` bodies (their exact text is the emulator's).
- Every other path is a protected resource (an address lookup): ``Bearer <token>`` →
  200; a missing, expired or revoked token → 401 ``{"apiVersion": "v3", "error":
  {"code": "401", "message": "Missing or malformed access token.", "errors":
  [{"title": "invalid_token", ...}]}}``.

:data:`PAGE` describes all of it to the emulator and the demo.
"""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from .app import bearer, begin_protected_request, begin_token_request, json_response, read_json
from .page import Credentials, DemoCheck, DemoPlan, Page, Rejection
from .settings import one_of, seconds
from .state import EmulatorState

__all__ = ["PAGE", "REJECTED", "TOKEN_PATH", "handle"]

TOKEN_PATH = "/oauth2/v3/token"
RESOURCE_PATH = "/addresses/v3/address"
PROVIDER = "usps"
KNOWN = Credentials("emu-usps-consumer-key", "emu-usps-consumer-secret-not-real")
REJECTED = "Missing or malformed access token."


PAYMENT_PATH = "/payments/v3/payment-authorization"
LABEL_PATH = "/labels/v3/label"
PAYMENT_PREFIX = "emu-usps-payment-"
_ROLE_NAMES = ("PAYER", "LABEL_OWNER")
PAYMENT_REJECTED = "Invalid or expired payment authorization token."
#: Role objects the emulator's payment authorization accepts (test values).
PAYMENT_ROLES = (
    {
        "roleName": "PAYER",
        "CRID": "56982563",
        "MID": "904128936",
        "manifestMID": "904128937",
        "accountType": "EPS",
        "accountNumber": "1000405525",
    },
    {
        "roleName": "LABEL_OWNER",
        "CRID": "56982563",
        "MID": "904128936",
        "manifestMID": "904128937",
    },
)


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    if path == PAYMENT_PATH:
        return payment_authorization(request, state)
    return resource(request, state, path)


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response(
        {"error": error, "error_description": description}, status, Cache_Control="no-store"
    )


def _invalid_client() -> Response:
    return _oauth_error("invalid_client", "Client credentials are invalid.", 401)


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _invalid_client)
    if answered is not None:
        return answered
    if auth.body_format not in ("json", "form"):
        return _oauth_error(
            "invalid_request",
            "Send client_id, client_secret and grant_type as a JSON object.",
        )
    if auth.method == "both":
        return _oauth_error("invalid_request", "Use one client authentication method, not two.")
    grant_type = auth.params.get("grant_type")
    if not grant_type:
        return _oauth_error("invalid_request", "grant_type is required.")
    if grant_type != "client_credentials":
        return _oauth_error("unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    if not auth.matches(KNOWN.client_id, KNOWN.client_secret):
        return _invalid_client()
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    ttl = state.settings.token_ttl
    fields: dict[str, Any] = {
        "access_token": issued.value,
        "token_type": "Bearer",
        "issued_at": int(state.server_time() * 1000),
        "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        "status": "approved",
        "scope": auth.params.get("scope") or "addresses prices tracking labels payments",
        "issuer": "api.usps.com",
        "client_id": auth.client_id,
        "application_name": "delivery-auth emulator",
        "api_products": "[Public Access]",
        "public_key": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0=",
    }
    if state.settings.usps_fields == "strings":
        fields = {name: str(value) for name, value in fields.items()}
    return json_response(fields, Cache_Control="no-store")


def _rejected(detail: str) -> Response:
    return json_response(
        {
            "apiVersion": "v3",
            "error": {
                "code": "401",
                "message": REJECTED,
                "errors": [
                    {
                        "title": "invalid_token",
                        "detail": detail,
                        "source": {"parameter": "Authorization"},
                    }
                ],
            },
        },
        401,
    )


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    value = bearer(request)
    if value is not None and value.startswith(PAYMENT_PREFIX):
        return "A payment authorization token is not an access token."
    status = state.check_token(PROVIDER, value)
    if status == "ok":
        return None
    if status in ("expired", "revoked"):
        return "The access token has expired or was revoked."
    return "No valid access token was found in the Authorization header."


def resource(request: Request, state: EmulatorState, path: str) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _rejected,
        fault_reason="The access token has expired or was revoked.",
    )
    if answered is not None:
        return answered
    if path.startswith("/labels/"):
        refused = _payment_refused(request, state)
        if refused is not None:
            return refused
        return json_response(
            {"labelMetadata": {"trackingNumber": "9205500000000000000000"}, "path": path}
        )
    return json_response(
        {
            "address": {
                "streetAddress": "475 L ENFANT PLZ SW",
                "city": "WASHINGTON",
                "state": "DC",
                "ZIPCode": "20260",
            },
            "path": path,
            "method": request.method,
        }
    )


def _payment_refused(request: Request, state: EmulatorState) -> Response | None:
    """The label endpoints' check of ``X-Payment-Authorization-Token``: missing is a 400;
    unknown, expired or revoked a 401 (USPS's shape; that it is a 401 is the guess
    CARRIERS.md records)."""
    value = request.headers.get("X-Payment-Authorization-Token")
    if not value:
        return json_response(
            {
                "apiVersion": "v3",
                "error": {
                    "code": "400",
                    "message": "X-Payment-Authorization-Token is required for labels.",
                },
            },
            400,
        )
    if value.startswith(PAYMENT_PREFIX) and state.check_token(PROVIDER, value) == "ok":
        return None
    state.stats.count(state.stats.auth_failures, PROVIDER)
    return _rejected(PAYMENT_REJECTED)


def payment_authorization(request: Request, state: EmulatorState) -> Response:
    """``POST /payments/v3/payment-authorization``: Bearer auth, JSON ``{"roles": [...]}``
    -> ``{"paymentAuthorizationToken", "roles"}``; the token lives
    ``emu.usps_payment_ttl`` seconds."""
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        _rejected,
        fault_reason="The access token has expired or was revoked.",
        methods=("POST",),
    )
    if answered is not None:
        return answered
    payload = read_json(request)
    roles = payload.get("roles") if isinstance(payload, dict) else None
    if (
        not isinstance(roles, list)
        or not roles
        or not all(
            isinstance(r, dict) and r.get("roleName") in ("PAYER", "LABEL_OWNER") for r in roles
        )
    ):
        return json_response(
            {
                "apiVersion": "v3",
                "error": {
                    "code": "400",
                    "message": "roles must be a list of role objects with roleName PAYER or "
                    "LABEL_OWNER.",
                },
            },
            400,
        )
    value = PAYMENT_PREFIX + secrets.token_urlsafe(24)
    state.accept(PROVIDER, value, ttl=state.settings.usps_payment_ttl)
    return json_response({"paymentAuthorizationToken": value, "roles": roles})


def _says_rejected(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == "401"


def _served(body: Any) -> bool:
    # an address (the page's resource) or a label (the label endpoint)
    return isinstance(body, dict) and any(
        isinstance(body.get(what), dict) for what in ("address", "labelMetadata")
    )


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path=RESOURCE_PATH,
    endpoint_paths={"token_url": TOKEN_PATH},
    rejection=Rejection(401, f'401 "{REJECTED}"', _says_rejected),
    served=_served,
    settings={
        "usps_fields": one_of("usps_fields", ("numbers", "strings"), "numbers"),
        "usps_payment_ttl": seconds("usps_payment_ttl", 28800.0, positive=True),
    },
    demo=DemoPlan(
        revoked=f'revoked: 401 "{REJECTED}" -> 1 refresh, 1 resend',
        first="first call fetched a token (JSON token request)",
        extra=(
            DemoCheck(
                "README-style answer (every field a string, issued_at in ms)",
                token_requests=1,
                options={},
                settings={"usps_fields": "strings"},
            ),
            DemoCheck(
                "label: + X-Payment-Authorization-Token, fetched with the bearer token",
                token_requests=1,
                options={"payment_roles": list(PAYMENT_ROLES)},
                path=LABEL_PATH,
            ),
        ),
    ),
)
