"""Delivery Tracker in the emulator: OAuth2 token endpoint and the GraphQL API.

- ``POST /tracker/oauth2/token`` — client credentials, form-urlencoded, client auth in
  the body or HTTP Basic; answers ``{access_token, token_type, expires_in}``.
- ``POST /tracker/graphql`` — ``Authorization: Bearer <token>`` or
  ``Authorization: TRACKQL-API-KEY <client_id>:<client_secret>``. A missing, unknown,
  expired or revoked credential is answered the vendor's way: a GraphQL error with
  ``extensions.code == "UNAUTHENTICATED"`` at HTTP 200 (the status is a setting:
  ``emu.tracker_unauthenticated_status``). The seed's ``AuthTestQuery`` gets a small
  list of carriers; a ``track(...)`` query gets a delivered parcel. A batch (a JSON array
  of operations) gets a JSON array of answers, Apollo Server style.

:data:`PAGE` describes all of it to the emulator and the demo.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.wrappers import Request, Response

from ..providers.tracker import AUTH_TEST_QUERY, graphql_error_codes
from .app import (
    bearer,
    begin_protected_request,
    begin_token_request,
    json_response,
    not_found,
    read_json,
)
from .page import Credentials, DemoCheck, DemoPlan, Page, Rejection, Setting
from .state import EmulatorState

__all__ = ["GRAPHQL_PATH", "PAGE", "TOKEN_PATH", "TRACKER_LEGACY", "handle"]

TOKEN_PATH = "/oauth2/token"
GRAPHQL_PATH = "/graphql"
PROVIDER = "tracker"
KNOWN = Credentials("emu-tracker-client", "emu-tracker-secret-0000-not-real")
#: A Delivery Tracker client id registered "before 2024-05-13": accepted by the OAuth2
#: token endpoint but refused as an API key, like the real service does.
TRACKER_LEGACY = Credentials("emu-tracker-legacy-client", "emu-tracker-legacy-secret-not-real")

CARRIERS = (
    ("kr.cjlogistics", "CJ Logistics"),
    ("kr.epost", "Korea Post"),
    ("de.dhl", "DHL"),
    ("us.fedex", "FedEx"),
    ("us.ups", "UPS"),
    ("jp.yamato", "Yamato Transport"),
)
_FIRST = re.compile(r"carriers\s*\(\s*first\s*:\s*(\d+)")


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == TOKEN_PATH:
        return token(request, state)
    if path == GRAPHQL_PATH:
        return graphql(request, state)
    return not_found(PROVIDER, path, (TOKEN_PATH, GRAPHQL_PATH))


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response(
        {"error": error, "error_description": description}, status, Cache_Control="no-store"
    )


def _invalid_client() -> Response:
    response = _oauth_error("invalid_client", "Client authentication failed.", 401)
    response.headers["WWW-Authenticate"] = 'Basic realm="tracker.delivery"'
    return response


def token(request: Request, state: EmulatorState) -> Response:
    auth, answered = begin_token_request(request, state, PROVIDER, _invalid_client)
    if answered is not None:
        return answered
    if auth.body_format not in ("form", "empty"):
        return _oauth_error(
            "invalid_request", "Send the token request as application/x-www-form-urlencoded."
        )
    if auth.method == "both":
        return _oauth_error("invalid_request", "Use one client authentication method, not two.")
    grant_type = auth.params.get("grant_type")
    if grant_type is None:
        return _oauth_error("invalid_request", "Missing grant_type.")
    if grant_type != "client_credentials":
        return _oauth_error("unsupported_grant_type", f"Grant {grant_type!r} is not supported.")
    known = KNOWN
    if not (
        auth.matches(known.client_id, known.client_secret)
        or auth.matches(TRACKER_LEGACY.client_id, TRACKER_LEGACY.client_secret)
    ):
        return _invalid_client()
    assert auth.client_id is not None
    issued = state.issue(PROVIDER, auth.client_id)
    ttl = state.settings.token_ttl
    return json_response(
        {
            "access_token": issued.value,
            "token_type": "Bearer",
            "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        },
        Cache_Control="no-store",
    )


def _error(code: str, message: str) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]}


def _errors(status: int, code: str, message: str) -> Response:
    return json_response(_error(code, message), status)


def _operations(request: Request) -> int | None:
    """How many operations a batch (a JSON array) holds; ``None``: not a batch."""
    body = read_json(request)
    return len(body) if isinstance(body, list) else None


def _unauthenticated(request: Request, state: EmulatorState, message: str) -> Response:
    status = state.settings.tracker_unauthenticated_status
    answer = _error("UNAUTHENTICATED", message)
    batch = _operations(request)
    return json_response(answer if batch is None else [answer] * batch, status)


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    """``None`` when the request may go on, else why it is UNAUTHENTICATED."""
    api_key = bearer(request, "TRACKQL-API-KEY")
    if api_key is not None:
        client_id, _, secret = api_key.partition(":")
        known = KNOWN
        if (client_id, secret) == (known.client_id, known.client_secret):
            return None
        if client_id == TRACKER_LEGACY.client_id:
            return (
                "This client ID was registered before 2024-05-13 and cannot be used as an "
                "API key; use the OAuth2 method."
            )
        return "Invalid API key."
    access_token = bearer(request)
    if access_token is None:
        return "Authentication required: send a Bearer token or a TRACKQL-API-KEY."
    status = state.check_token(PROVIDER, access_token)
    if status == "ok":
        return None
    return "Access token expired." if status == "expired" else "Invalid access token."


def graphql(request: Request, state: EmulatorState) -> Response:
    answered = begin_protected_request(
        request,
        state,
        PROVIDER,
        lambda request: _authenticate(request, state),
        lambda reason: _unauthenticated(request, state, reason),
        fault_reason="Access token expired.",
        methods=("POST",),
    )
    if answered is not None:
        return answered
    body = read_json(request)
    if isinstance(body, list):  # a batch gets one answer per operation (Apollo style)
        answers = [_answer(operation) for operation in body]
        return json_response([a for _, a in answers], max((s for s, _ in answers), default=200))
    status, answer = _answer(body)
    return json_response(answer, status)


def _answer(operation: Any) -> tuple[int, Any]:
    """The status and answer of one GraphQL operation."""
    query = operation.get("query") if isinstance(operation, dict) else None
    if not isinstance(query, str) or not query.strip():
        return 400, _error("BAD_REQUEST", 'Send a JSON body such as {"query": "..."}.')
    if "carriers" in query:
        match = _FIRST.search(query)
        first = min(int(match.group(1)), len(CARRIERS)) if match else len(CARRIERS)
        edges = [{"node": {"id": cid, "name": name}} for cid, name in CARRIERS[:first]]
        return 200, {"data": {"carriers": {"edges": edges}}}
    if re.search(r"\btrack\s*\(", query):
        event = {"time": "2024-06-01T09:30:00+09:00", "status": {"code": "DELIVERED"}}
        return 200, {"data": {"track": {"lastEvent": event}}}
    message = "The emulator answers only carriers(...) and track(...) queries."
    return 200, _error("BAD_REQUEST", message)


def _http_status(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 200 <= value <= 599:
        raise ValueError(f"an HTTP status from 200 to 599 is needed, got {value!r}")
    return value


def _served(body: Any) -> bool:
    return isinstance(body, dict) and "errors" not in body and isinstance(body.get("data"), dict)


PAGE = Page(
    name=PROVIDER,
    handle=handle,
    credentials=KNOWN,
    token_path=TOKEN_PATH,
    resource_path=GRAPHQL_PATH,
    resource_method="POST",
    resource_body={"query": AUTH_TEST_QUERY},
    endpoint_paths={"token_url": TOKEN_PATH, "api_url": GRAPHQL_PATH},
    rejection=Rejection(
        200,
        "UNAUTHENTICATED at HTTP 200",
        lambda body: "UNAUTHENTICATED" in graphql_error_codes(body),
    ),
    served=_served,
    settings={"tracker_unauthenticated_status": Setting(200, _http_status)},
    demo=DemoPlan(
        revoked="revoked: UNAUTHENTICATED at HTTP 200 -> 1 refresh, 1 resend",
        options={"method": "oauth2"},
        extra=(
            DemoCheck(
                "API-key mode (TRACKQL-API-KEY): no token request",
                token_requests=0,
                options={"method": "api_key"},
            ),
        ),
    ),
    exports={"TRACKER_LEGACY": TRACKER_LEGACY},
)
