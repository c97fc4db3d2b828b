"""Acme, a throwaway provider that exists only in the tests: OAuth2 client credentials,
and a rejected token is HTTP 403 ``{"code": "TOKEN_EXPIRED"}``.

This one module is all a new provider is: its auth class and ``SPEC`` (what a provider
module holds) and its emulator page (``PAGE``). The tests register it with
``register(SPEC)`` in-process, or name it in ``$DELIVERY_AUTH_PROVIDERS``
(``acme_provider:SPEC``) for the processes they start; nothing in delivery_auth changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.wrappers import Request, Response

from delivery_auth import ClientCredentialsAuth
from delivery_auth.emulator.app import (
    bearer,
    begin_protected_request,
    begin_token_request,
    json_response,
)
from delivery_auth.emulator.page import Credentials, DemoPlan, Page, Rejection
from delivery_auth.emulator.state import EmulatorState
from delivery_auth.providers.base import read_env
from delivery_auth.providers.spec import EnvVar, ProviderSpec

KNOWN = Credentials("acme-test-client", "acme-test-secret-not-real")


class TokenExpired:
    """Acme's failure signal: HTTP 403 with ``{"code": "TOKEN_EXPIRED"}``."""

    def needs_body(self, status_code: int, content_type: str) -> bool:
        return status_code == 403

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool:
        try:
            payload = json.loads(body or b"")
        except ValueError:
            return False
        return (
            status_code == 403
            and isinstance(payload, dict)
            and payload.get("code") == ("TOKEN_EXPIRED")
        )


class AcmeAuth(ClientCredentialsAuth):
    def __init__(self, client_id: str, client_secret: str, *, token_url: str, **options: Any):
        options.setdefault("failure_detector", TokenExpired())
        super().__init__(token_url, client_id, client_secret, **options)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AcmeAuth:
        names = ("ACME_CLIENT_ID", "ACME_CLIENT_SECRET")
        values = read_env(cls.__name__, names, (), environ)
        return cls(values["ACME_CLIENT_ID"], values["ACME_CLIENT_SECRET"], **overrides)


def _token(request: Request, state: EmulatorState) -> Response:
    def refused() -> Response:
        return json_response({"error": "invalid_client"}, 401)

    auth, answered = begin_token_request(request, state, "acme", refused)
    if answered is not None:
        return answered
    if not auth.matches(KNOWN.client_id, KNOWN.client_secret):
        return refused()
    issued = state.issue("acme", KNOWN.client_id)
    return json_response({"access_token": issued.value, "expires_in": 3600})


def _authenticate(request: Request, state: EmulatorState) -> str | None:
    return None if state.check_token("acme", bearer(request)) == "ok" else "TOKEN_EXPIRED"


def handle(request: Request, state: EmulatorState, path: str) -> Response:
    if path == "/oauth/token":
        return _token(request, state)
    answered = begin_protected_request(
        request,
        state,
        "acme",
        lambda request: _authenticate(request, state),
        lambda code: json_response({"code": code}, 403),
        fault_reason="TOKEN_EXPIRED",
    )
    return answered or json_response({"ok": True})


PAGE = Page(
    name="acme",
    handle=handle,
    credentials=KNOWN,
    token_path="/oauth/token",
    resource_path="/v1/things",
    rejection=Rejection(
        403, "403 TOKEN_EXPIRED", lambda body: isinstance(body, dict) and "code" in body
    ),
    served=lambda body: isinstance(body, dict) and body.get("ok") is True,
    demo=DemoPlan(revoked="revoked: 403 TOKEN_EXPIRED -> 1 refresh, 1 resend"),
)

SPEC = ProviderSpec(
    name="acme",
    title="Acme",
    auth_class=AcmeAuth,
    env=(
        EnvVar("ACME_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar("ACME_CLIENT_SECRET", "client_secret", required=True, field="client_secret"),
    ),
    default_hosts=("*.acme.example",),
    failure_signal='HTTP 403 {"code": "TOKEN_EXPIRED"}',
    emulator_page=__name__,  # PAGE is in this module
)
