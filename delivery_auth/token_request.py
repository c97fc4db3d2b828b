"""How a token request is shaped: its body format and the extra headers it carries.

Some token endpoints want the OAuth fields as JSON instead of a form (USPS), or a
header of their own on the token request (UPS's ``x-merchant-id``). These checks and
the JSON re-encoding are pure functions; :mod:`delivery_auth.fetch` (the only module
that talks to Authlib) registers :func:`json_body` with Authlib as a client
authentication method, so the JSON body is made from exactly the fields Authlib put in
the form, client credentials included when they go in the body.

Example::

    check_request_format("json")                        # 'json'
    check_token_headers({"x-merchant-id": "123456"}, basic=True)
    # {'x-merchant-id': '123456'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus

__all__ = [
    "REQUEST_FORMATS",
    "ClientAuthEncoder",
    "check_request_format",
    "check_token_headers",
    "json_body",
    "secret_forms",
]

#: ``token_request_format`` values: an ``application/x-www-form-urlencoded`` body
#: (RFC 6749, the default) or a JSON object of the same fields.
REQUEST_FORMATS = ("form", "json")

#: Headers the request's format, HTTP or the client authentication own.
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding", "host"})
#: RFC 9110 field names: tokens.
_FIELD_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

#: Authlib's client authentication signature: ``(client, method, uri, headers, body)``
#: in, ``(uri, headers, body)`` out.
ClientAuthEncoder = Callable[
    [Any, str, str, MutableMapping[str, str], Any], tuple[str, MutableMapping[str, str], Any]
]


def check_request_format(value: object) -> str:
    """``value`` if it is one of :data:`REQUEST_FORMATS`, else a ``ValueError`` naming them."""
    if value not in REQUEST_FORMATS:
        valid = ", ".join(repr(name) for name in REQUEST_FORMATS)
        raise ValueError(f"token_request_format must be one of {valid}, got {value!r}")
    return str(value)


def check_token_headers(headers: Mapping[str, str] | None, *, basic: bool) -> dict[str, str]:
    """The extra headers of every token request, checked (a ``ValueError`` names the
    header, never its value: a header may hold a key).

    ``Content-Type``, ``Content-Length``, ``Transfer-Encoding`` and ``Host`` are the
    request's own; ``Authorization`` is the client authentication's when ``basic``.
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError(
            f"token_headers must be a mapping of header names to values, "
            f"got {type(headers).__name__}"
        )
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _FIELD_NAME.match(name):
            shown = name if isinstance(name, str) else type(name).__name__
            raise ValueError(f"token_headers: {shown[:40]!r} is not a valid header name")
        lowered = name.lower()
        if lowered in _RESERVED_HEADERS or (basic and lowered == "authorization"):
            owner = "client authentication" if lowered == "authorization" else "token request"
            raise ValueError(
                f"token_headers may not set {name!r}: the {owner} sets it "
                "(see token_request_format and token_endpoint_auth_method)"
            )
        if any(lowered == other.lower() for other in checked):
            raise ValueError(f"token_headers names {name!r} twice (header names ignore case)")
        if not isinstance(value, str):
            raise ValueError(
                f"token_headers[{name!r}] must be a string, got {type(value).__name__}"
            )
        if any(ch in value for ch in "\r\n\x00"):
            raise ValueError(f"token_headers[{name!r}] holds a line break or NUL character")
        checked[name] = value
    return checked


def json_body(encode: ClientAuthEncoder) -> ClientAuthEncoder:
    """Authlib client authentication ``encode``, then the form body re-encoded as JSON.

    The fields (``grant_type``, scope, parameters and, with ``client_secret_post``,
    the client credentials) become one JSON object of strings, in the form's order;
    ``Content-Type`` becomes ``application/json``. The body is ASCII (non-ASCII
    characters are ``\\u`` escaped), so requests' recomputed ``Content-Length`` is right.
    """

    def encode_as_json(
        client: Any, method: str, uri: str, headers: MutableMapping[str, str], body: Any
    ) -> tuple[str, MutableMapping[str, str], bytes]:
        uri, headers, body = encode(client, method, uri, headers, body)
        if isinstance(body, bytes):
            body = body.decode("ascii")  # a urlencoded form is ASCII
        fields = dict(parse_qsl(body or "", keep_blank_values=True))
        headers["Content-Type"] = "application/json"
        return uri, headers, json.dumps(fields, separators=(",", ":")).encode("ascii")

    return encode_as_json


def secret_forms(secret: str) -> tuple[str, ...]:
    """The ways a server may echo ``secret``: as given, form-encoded (as HTTP Basic
    client authentication sends it) and JSON-escaped (as a JSON body sends it)."""
    return tuple(dict.fromkeys((secret, quote_plus(secret), json.dumps(secret)[1:-1])))
