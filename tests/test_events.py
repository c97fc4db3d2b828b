"""delivery_auth.events on its own: delivery, listeners, and hooks that raise."""

from __future__ import annotations

import logging

import pytest

from delivery_auth.events import (
    AuthEvent,
    Events,
    TokenRejected,
    add_listener,
    remove_listener,
)


def rejected() -> TokenRejected:
    return TokenRejected(provider="dhl", fingerprint="f00d", status=401, resent=True, reason="x")


def test_on_event_and_process_listeners_hear_every_event() -> None:
    mine: list[AuthEvent] = []
    everyone: list[AuthEvent] = []
    events = Events("dhl", on_event=mine.append)
    add_listener(everyone.append)
    add_listener(everyone.append)  # once only
    try:
        assert events.wanted
        event = rejected()
        events.emit(event)
        Events("ups").emit(event)
    finally:
        remove_listener(everyone.append)
    assert mine == [event]
    assert everyone == [event, event]
    assert not Events("ups").wanted


def test_a_hook_that_raises_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[AuthEvent] = []

    def broken(event: AuthEvent) -> None:
        raise RuntimeError("the secret s3cr3t is in this message")

    add_listener(heard.append)
    try:
        with caplog.at_level(logging.WARNING, logger="delivery_auth"):
            Events("dhl", on_event=broken).emit(rejected())
    finally:
        remove_listener(heard.append)
    assert len(heard) == 1
    (record,) = caplog.records
    assert "raised RuntimeError on TokenRejected; ignored" in record.getMessage()
    assert "s3cr3t" not in caplog.text  # the hook's message is not repeated


def test_events_are_frozen_and_keyword_only() -> None:
    event = rejected()
    with pytest.raises(AttributeError):
        event.status = 200  # type: ignore[misc]
    with pytest.raises(TypeError):
        TokenRejected("dhl", None, 0.0, 401, True, "x")  # type: ignore[misc]


def test_on_event_must_be_callable() -> None:
    with pytest.raises(TypeError, match="on_event must be a callable"):
        Events("dhl", on_event="print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="add_listener takes a callable"):
        add_listener(42)  # type: ignore[arg-type]
