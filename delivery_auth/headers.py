"""Checks of the header options of :class:`~delivery_auth.DeliveryAuth`: ``header`` (where
the credential goes) and ``default_headers`` (headers every authorised request gets).

Example::

    check_header_name("API-Key", "header")              # 'API-Key'
    check_default_headers({"x-version": "3.1.0"})       # (('x-version', '3.1.0'),)
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

__all__ = ["check_default_headers", "check_header_name"]

#: The characters of an HTTP header name (RFC 9110 "token").
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def check_header_name(name: object, what: str) -> str:
    """``name`` if it is a valid HTTP header name, else a ``ValueError`` naming ``what``."""
    if not isinstance(name, str) or not name or not set(name) <= _TOKEN_CHARS:
        raise ValueError(
            f"{what} must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), "
            f"got {name!r}"
        )
    # One spelling for the header the clients drop on redirects to another origin.
    return "Authorization" if name.lower() == "authorization" else name


def check_default_headers(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """``default_headers`` as ``(name, value)`` pairs, each checked (no line breaks)."""
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        raise TypeError(f"default_headers must be a mapping of names to values, got {headers!r}")
    pairs = []
    for name, value in headers.items():
        check_header_name(name, "a default_headers name")
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\x00"):
            raise ValueError(
                f"default_headers[{name!r}] must be a string without line breaks or NUL"
            )
        pairs.append((name, value))
    return tuple(pairs)


def add_missing(headers: MutableMapping[str, str], defaults: tuple[tuple[str, str], ...]) -> None:
    """Set each default header the request does not set itself (names compare
    case-insensitively in both clients' header maps)."""
    for name, value in defaults:
        if name not in headers:
            headers[name] = value
