"""pytest fixtures that run the provider emulator (a test double) for your tests.

Registered through the ``pytest11`` entry point, so installing
``delivery-auth[emulator]`` is enough. Two fixtures:

- ``delivery_emulator`` — a fresh :class:`~delivery_auth.emulator.Emulator` per test
  (new port, no tokens, zero counters). Options go through the
  ``@pytest.mark.delivery_emulator(token_ttl=..., clock_offset=...)`` marker.
- ``delivery_emulator_session`` — one emulator for the whole session; state is shared
  between tests (call ``.reset()`` when a test needs a clean slate).

Example::

    import requests

    def test_labels(delivery_emulator):
        auth = delivery_emulator.auth("dhl")
        url = delivery_emulator.url("dhl", "/shipping/v4/label")
        assert requests.get(url, auth=auth).status_code == 200
        delivery_emulator.revoke_all()
        assert requests.get(url, auth=auth).status_code == 200   # one refresh, one resend
        assert delivery_emulator.stats.token_requests["dhl"] == 2

This module imports the emulator (and Werkzeug) only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["delivery_emulator", "delivery_emulator_session"]

_MARKER = "delivery_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): options of the delivery_emulator fixture's Emulator "
        "(token_ttl, clock_offset).",
    )


def _start(options: dict[str, Any]) -> Emulator:
    try:
        from .emulator import Emulator
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise pytest.UsageError(
            f"the delivery_emulator fixture needs Werkzeug ({exc}); install it with "
            "pip install 'delivery-auth[emulator]'"
        ) from None
    unknown = sorted(set(options) - {"token_ttl", "clock_offset"})
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER} got unknown option(s) {', '.join(unknown)}; "
            "it accepts token_ttl and clock_offset"
        )
    return Emulator(**options).start()


@pytest.fixture
def delivery_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """A fresh provider emulator (a test double on 127.0.0.1) for one test."""
    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = {}
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{_MARKER} takes keyword options only, e.g. token_ttl=60"
            )
        options = dict(marker.kwargs)
    emulator = _start(options)
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def delivery_emulator_session() -> Iterator[Emulator]:
    """One provider emulator for the whole test session (state is shared)."""
    emulator = _start({})
    try:
        yield emulator
    finally:
        emulator.stop()
