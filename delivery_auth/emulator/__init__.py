"""A provider emulator for offline tests: **a test double, not the real services**.

:class:`Emulator` serves, on a loopback port in a background thread, a WSGI
application (Werkzeug) that behaves like the token endpoints and protected APIs of
every registered provider (Delivery Tracker, Bringg, DHL eCommerce and Yandex Courier
ship with delivery-auth), with each provider's real failure signal, settings (token
lifetime, clock offset, revocation, fault injection, scripted answers) and thread-safe
counters. It accepts only the fixed, public test credentials of :data:`CREDENTIALS`
and refuses non-loopback addresses unless told otherwise. Install it with
``pip install 'delivery-auth[emulator]'``.

Each provider's behaviour is one page module exporting a :class:`~.page.Page`
(``PAGE``), named by the provider's spec (``delivery_auth.providers.spec``).

Example::

    import requests
    from delivery_auth.emulator import Emulator

    with Emulator(token_ttl=3600) as emu:
        auth = emu.auth("dhl")            # a DHLeCommerceAuth pointed at the emulator
        requests.get(emu.url("dhl", "/shipping/v4/label"), auth=auth)
        emu.revoke_all()                  # server-side revocation
        emu.stats.token_requests["dhl"]   # counters for tests

In pytest, the ``delivery_emulator`` fixture gives each test a fresh one.
"""

from __future__ import annotations

from typing import Any

from ._auth import endpoints_at, environment
from .app import EmulatorApp
from .page import Page, pages
from .server import DEFAULT_RESOURCE_PATHS, TOKEN_PATHS, Emulator, NonLoopbackHostError
from .state import (
    CREDENTIALS,
    DEVICE_OUTCOMES,
    ENDPOINTS,
    FAULT_KINDS,
    Counter,
    Credentials,
    EmulatorState,
    Stats,
    TokenRequestRecord,
)

__all__ = [
    "CREDENTIALS",
    "DEFAULT_RESOURCE_PATHS",
    "DEVICE_OUTCOMES",
    "ENDPOINTS",
    "FAULT_KINDS",
    "PROVIDER_NAMES",
    "TOKEN_PATHS",
    "Counter",
    "Credentials",
    "Emulator",
    "EmulatorApp",
    "EmulatorState",
    "NonLoopbackHostError",
    "Page",
    "Stats",
    "TokenRequestRecord",
    "endpoints_at",
    "environment",
    "pages",
]


def __getattr__(name: str) -> Any:
    """``PROVIDER_NAMES`` (the registered providers, read now) and the names pages
    export (``TRACKER_LEGACY``, for compatibility)."""
    if name == "PROVIDER_NAMES":
        return tuple(pages())
    for page in pages().values():
        if name in page.exports:
            return page.exports[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
