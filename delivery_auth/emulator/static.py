"""What the emulator pages of static credentials share (an API key in a header, HTTP
Basic): reading the credential and checking it against the emulator's tokens.

A page's fixed key or password is its ``Credentials.token``, which the emulator holds as
a token that never expires; ``emu.issue_token(provider)`` makes more of them (the demo
passes a fresh one as the key). So one check serves both, and revoking works on both.

Example::

    key = request.headers.get("API-Key")
    reason = None if key_accepted(state, "shipengine", key) else "unauthorized"
"""

from __future__ import annotations

import base64
import binascii

from werkzeug.wrappers import Request

from .state import EmulatorState

__all__ = ["basic_pair", "key_accepted"]


def key_accepted(state: EmulatorState, provider: str, value: str | None) -> bool:
    """Whether ``value`` is a live key (or password) of ``provider`` on this emulator."""
    return value is not None and state.check_token(provider, value) == "ok"


def basic_pair(request: Request) -> tuple[str, str] | None:
    """The username and password of an ``Authorization: Basic`` header (RFC 7617,
    UTF-8; no form decoding, unlike a token request's client authentication)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None
