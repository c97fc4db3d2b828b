"""The emulator's WSGI application: routing, request parsing and fault injection.

One application serves every registered provider under a path prefix of its name
(``/dhl/...``); the provider pages (one module each, named by the provider's spec)
say what each endpoint answers. This module holds what they share: request parsing,
fault injection, and the first steps of a token request (:func:`begin_token_request`)
and of a protected request (:func:`begin_protected_request`).

Example::

    app = EmulatorApp(EmulatorState())
    # any WSGI server can serve it; :class:`~delivery_auth.emulator.Emulator` runs one
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from .state import EmulatorState, Fault, TokenRequestRecord

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "ClientAuth",
    "ConnectionResetFault",
    "EmulatorApp",
    "begin_protected_request",
    "begin_token_request",
    "json_response",
]

logger = logging.getLogger("delivery_auth")

#: Fields never copied into :class:`TokenRequestRecord` (they are secrets).
_SECRET_FIELDS = frozenset(
    {"client_secret", "refresh_token", "code", "device_code", "password", "child_secret"}
)


class ConnectionResetFault(ConnectionResetError):
    """Raised by the app to make the server reset the connection (the ``reset`` fault)."""


def json_response(
    payload: object, status: int = 200, *, content_type: str = "application/json", **headers: str
) -> Response:
    """A JSON response with extra headers (``Retry_After="2"`` becomes ``Retry-After: 2``)."""
    response = Response(json.dumps(payload), status=status, content_type=content_type)
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


@dataclass(frozen=True)
class ClientAuth:
    """The client credentials and fields of a token request, however they were sent."""

    client_id: str | None
    client_secret: str | None
    method: str  # "body", "basic", "none" or "both"
    body_format: str  # "form", "multipart", "json", "empty" or "other"
    params: Mapping[str, str]

    def matches(self, client_id: str, client_secret: str) -> bool:
        return self.client_id == client_id and self.client_secret == client_secret


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(user.replace("+", " ")), unquote(password.replace("+", " "))


def parse_token_request(request: Request) -> ClientAuth:
    """Read a token request's fields (form, multipart or JSON) and its client auth."""
    content_type = request.mimetype
    params: dict[str, str] = {}
    if content_type == "application/x-www-form-urlencoded":
        body_format = "form"
        params = {k: v for k, v in request.form.items()}
    elif content_type == "multipart/form-data":
        body_format = "multipart"
        params = {k: v for k, v in request.form.items()}
    elif content_type == "application/json" or content_type.endswith("+json"):
        body_format = "json"
        payload = request.get_json(silent=True)
        if isinstance(payload, dict):
            params = {str(k): str(v) for k, v in payload.items() if v is not None}
    elif not request.get_data(cache=True):
        body_format = "empty"
    else:
        body_format = "other"
    basic = _basic(request.headers.get("Authorization", ""))
    in_body = "client_id" in params or "client_secret" in params
    client_id = params.pop("client_id", None)
    client_secret = params.pop("client_secret", None)
    if basic is not None and client_secret is not None:
        method = "both"
    elif basic is not None:
        method = "basic"
        client_id, client_secret = basic
    elif in_body:
        method = "body"
    else:
        method = "none"
    return ClientAuth(client_id, client_secret, method, body_format, params)


def record_token_request(state: EmulatorState, provider: str, auth: ClientAuth) -> None:
    safe = {k: v for k, v in auth.params.items() if k not in _SECRET_FIELDS}
    state.stats.record_token_request(
        TokenRequestRecord(
            provider=provider,
            grant_type=auth.params.get("grant_type"),
            client_auth=auth.method,
            body_format=auth.body_format,
            params=safe,
        )
    )


def bearer(request: Request, scheme: str = "Bearer") -> str | None:
    """The credential after ``scheme`` in the Authorization header (case-insensitive)."""
    given, _, value = request.headers.get("Authorization", "").partition(" ")
    if given.lower() != scheme.lower() or not value.strip():
        return None
    return value.strip()


_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>Bad Gateway</h1><p>The upstream server did not answer.</p></body></html>"
)


def fault_response(
    state: EmulatorState,
    fault: Fault,
    auth_failure: Callable[[], Response],
) -> Response | None:
    """The response for an injected fault, or ``None`` to go on normally (``delay``)."""
    kind = fault.kind
    if kind == "delay":
        state.stopping.wait(fault.delay)  # server-side latency, interrupted by stop()
        return None
    if kind == "reset":
        raise ConnectionResetFault("injected connection reset")
    if kind == "server_error":
        status = fault.status or 503
        return json_response(
            {"error": "server_error", "error_description": "injected by the emulator"}, status
        )
    if kind == "rate_limit":
        return json_response(
            {"error": "rate_limited", "error_description": "too many requests (emulated)"},
            429,
            Retry_After=f"{fault.retry_after:g}",
        )
    if kind == "garbage":
        return Response(
            b"\x00\x9f<<not json>>", status=fault.status or 200, content_type="application/json"
        )
    if kind == "html":
        return Response(_HTML_PAGE, status=fault.status or 502, content_type="text/html")
    if kind == "reply":
        response = Response(fault.body, status=fault.status or 200)
        response.headers.remove("Content-Type")
        for name, value in fault.headers:
            response.headers[name] = value
        return response
    return auth_failure()  # "auth_failure"


def begin_token_request(
    request: Request,
    state: EmulatorState,
    provider: str,
    auth_failure: Callable[[], Response],
) -> tuple[ClientAuth, Response | None]:
    """What every token endpoint does first: parse and count the request, play an
    injected fault, accept POST only. Returns the parsed client auth and, when the
    request is already answered, that answer."""
    auth = parse_token_request(request)
    record_token_request(state, provider, auth)
    fault = state.next_fault(provider, "token")
    if fault is not None:
        faulted = fault_response(state, fault, auth_failure)
        if faulted is not None:
            return auth, faulted
    if request.method != "POST":
        return auth, method_not_allowed("POST")
    return auth, None


def begin_protected_request(
    request: Request,
    state: EmulatorState,
    provider: str,
    authenticate: Callable[[Request], str | None],
    reject: Callable[[str], Response],
    *,
    fault_reason: str,
    methods: tuple[str, ...] | None = None,
) -> Response | None:
    """What every protected resource does first: count the request, play an injected
    fault, accept only ``methods`` (``None``: any), check the credential. Returns the
    answer when the request is already answered, else ``None``.

    ``authenticate(request)`` returns ``None`` for a good credential, else why it is
    refused; ``reject(reason)`` is the provider's rejection (counted as an auth failure;
    an ``auth_failure`` fault gives ``fault_reason``).
    """

    def rejected(reason: str) -> Response:
        state.stats.count(state.stats.auth_failures, provider)
        return reject(reason)

    state.stats.count(state.stats.resource_requests, provider)
    fault = state.next_fault(provider, "resource")
    if fault is not None:
        faulted = fault_response(state, fault, lambda: rejected(fault_reason))
        if faulted is not None:
            return faulted
    if methods is not None and request.method not in methods:
        return method_not_allowed(", ".join(methods))
    reason = authenticate(request)
    return None if reason is None else rejected(reason)


Handler = Callable[[Request, EmulatorState, str], Response]


def _index(providers: Iterable[str]) -> Response:
    return json_response(
        {
            "service": "delivery-auth provider emulator",
            "warning": "This is a test double. It accepts only its own fixed test credentials "
            "and must never face real traffic.",
            "providers": {name: f"/{name}/" for name in providers},
        }
    )


class EmulatorApp:
    """The WSGI application of the emulator (a test double of the carriers' APIs).

    ``handlers`` maps a provider name to ``handle(request, state, path)``, where
    ``path`` is what follows the provider's prefix; by default each page's ``handle``.
    """

    def __init__(self, state: EmulatorState, handlers: Mapping[str, Handler] | None = None):
        self.state = state
        if handlers is None:
            handlers = {name: page.handle for name, page in state.pages.items()}
        self.handlers = dict(handlers)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        provider, _, rest = path.lstrip("/").partition("/")
        if not provider:
            return _index(self.handlers)
        handler = self.handlers.get(provider)
        if handler is None:
            return json_response(
                {
                    "error": "not_found",
                    "error_description": f"no provider {provider!r} here; paths start with "
                    + ", ".join(f"/{name}/" for name in self.handlers),
                },
                404,
            )
        try:
            return handler(request, self.state, "/" + rest)
        except ConnectionResetFault:
            raise
        except HTTPException as exc:
            return json_response(
                {"error": exc.name, "error_description": exc.description}, exc.code or 500
            )
        except Exception:  # a bug in the emulator must not look like a provider's answer
            logger.exception("The emulator failed on %s %s", request.method, path)
            return json_response(
                {"error": "emulator_bug", "error_description": "see the emulator's log"}, 500
            )


def not_found(provider: str, path: str, known: Iterable[str]) -> Response:
    return json_response(
        {
            "error": "not_found",
            "error_description": f"the {provider} emulator has no {path!r}; try "
            + ", ".join(known),
        },
        404,
    )


def method_not_allowed(allowed: str) -> Response:
    response = json_response(
        {"error": "method_not_allowed", "error_description": f"use {allowed}"}, 405
    )
    response.headers["Allow"] = allowed
    return response


def read_json(request: Request) -> Any:
    """The request's JSON body, or ``None`` when it is absent or not JSON."""
    return request.get_json(silent=True, force=True)
