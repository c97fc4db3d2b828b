"""A provider emulator for offline tests: **a test double, not the real services**.

:class:`Emulator` serves, on a loopback port in a background thread, a WSGI
application (Werkzeug) that behaves like the token endpoints and protected APIs of
Delivery Tracker, Bringg, DHL eCommerce and Yandex Courier, with each provider's
real failure signal, knobs (token lifetime, clock offset, revocation, fault
injection) and thread-safe counters. It accepts only the fixed, public test
credentials of :data:`CREDENTIALS` and refuses non-loopback addresses unless told
otherwise. Install it with ``pip install 'delivery-auth[emulator]'``.

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

from .app import EmulatorApp
from .server import DEFAULT_RESOURCE_PATHS, TOKEN_PATHS, Emulator, NonLoopbackHostError
from .state import (
    CREDENTIALS,
    DEVICE_OUTCOMES,
    ENDPOINTS,
    FAULT_KINDS,
    PROVIDER_NAMES,
    TRACKER_LEGACY,
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
    "TRACKER_LEGACY",
    "Counter",
    "Credentials",
    "Emulator",
    "EmulatorApp",
    "EmulatorState",
    "NonLoopbackHostError",
    "Stats",
    "TokenRequestRecord",
]
