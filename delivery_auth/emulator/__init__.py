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

from ._auth import environment
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
    "endpoints_at",
    "environment",
]


def endpoints_at(base_url: str, provider: str) -> dict[str, str]:
    """The URLs to give ``provider``'s constructor for an emulator at ``base_url`` (keyed by
    option name), plus ``resource_url``: a protected URL that answers a good credential.

    Example::

        endpoints_at("http://127.0.0.1:8080", "dhl")["token_url"]
        # 'http://127.0.0.1:8080/dhl/auth/v4/accesstoken'
    """
    from ..providers.spec import get

    root = f"{base_url.rstrip('/')}/{provider}"
    resource = root + DEFAULT_RESOURCE_PATHS[provider]
    urls = {"token_url": root + TOKEN_PATHS[provider], "resource_url": resource}
    if "api_url" in get(provider).endpoints:  # a base URL, or the resource itself
        urls["api_url"] = root if resource.endswith("/api/v1/test") else resource
    return urls
