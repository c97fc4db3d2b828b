"""OpenTelemetry for delivery-auth: a span per token fetch and the metrics that matter.

Needs only ``opentelemetry-api`` (``pip install 'delivery-auth[otel]'``); spans and
metrics go wherever the application's OpenTelemetry SDK sends them, and cost nothing
without one. :func:`instrument` listens to the events of every auth object in the
process (:mod:`delivery_auth.events`); nothing a span or a metric carries is a token, a
secret or a password.

Spans: ``delivery_auth.token.fetch``, one per token obtained or failed, from when it was
asked for to when it arrived, with ``delivery_auth.provider``, ``delivery_auth.outcome``
(``"ok"`` or the error's class name), ``delivery_auth.attempts``,
``delivery_auth.cache_layer`` (``"token endpoint"``, ``"minted"``, ``"redis"``, ...)
and ``delivery_auth.token.fingerprint``.

Metrics (attributes: ``delivery_auth.provider`` and as noted):

==========================================  =========  ==================================
name                                        kind       counts
==========================================  =========  ==================================
``delivery_auth.token.requests``            counter    token requests (``outcome``)
``delivery_auth.token.fetch.duration``      histogram  seconds to obtain a token
``delivery_auth.request.retries``           counter    resends after a rejected token
``delivery_auth.refresh.background_failures``  counter  failed refreshes ahead of expiry
``delivery_auth.flight.waiters``            counter    callers that waited for another's
                                                       token request (single flight)
==========================================  =========  ==================================

Example::

    from delivery_auth.otel import instrument

    instrument()   # uses the global tracer and meter providers
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import metrics, trace

from . import __version__
from .events import (
    AuthEvent,
    BackgroundRefreshFailed,
    TokenFetched,
    TokenFetchFailed,
    TokenRejected,
    add_listener,
    remove_listener,
)

__all__ = ["SPAN_NAME", "instrument", "uninstrument"]

SPAN_NAME = "delivery_auth.token.fetch"
_SCOPE = "delivery_auth"
_NS = 1_000_000_000


class _Instruments:
    """The tracer and instruments of one :func:`instrument` call; a listener."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.requests = meter.create_counter(
            "delivery_auth.token.requests", unit="{request}", description="Token requests"
        )
        self.latency = meter.create_histogram(
            "delivery_auth.token.fetch.duration",
            unit="s",
            description="Time to obtain a token",
        )
        self.retries = meter.create_counter(
            "delivery_auth.request.retries",
            unit="{request}",
            description="Requests sent again after the API rejected their token",
        )
        self.background_failures = meter.create_counter(
            "delivery_auth.refresh.background_failures",
            unit="{refresh}",
            description="Refreshes ahead of expiry that failed",
        )
        self.waiters = meter.create_counter(
            "delivery_auth.flight.waiters",
            unit="{caller}",
            description="Callers that waited for another caller's token request",
        )

    def __call__(self, event: AuthEvent) -> None:
        where = {"delivery_auth.provider": event.provider}
        if isinstance(event, TokenFetched):
            self._span(event, "ok", event.source, event.attempts, event.duration)
            if event.attempts:
                self.requests.add(1, {**where, "delivery_auth.outcome": "ok"})
            self.latency.record(event.duration, where)
            if event.waiters:
                self.waiters.add(event.waiters, where)
        elif isinstance(event, TokenFetchFailed):
            self._span(event, event.error, "token endpoint", event.attempts, event.duration)
            self.requests.add(1, {**where, "delivery_auth.outcome": event.error})
            if event.waiters:
                self.waiters.add(event.waiters, where)
        elif isinstance(event, TokenRejected) and event.resent:
            self.retries.add(1, {**where, "http.response.status_code": event.status})
        elif isinstance(event, BackgroundRefreshFailed):
            self.background_failures.add(1, where)

    def _span(
        self, event: AuthEvent, outcome: str, layer: str, attempts: int, duration: float
    ) -> None:
        end = int(event.time * _NS)
        attributes: dict[str, str | int] = {
            "delivery_auth.provider": event.provider,
            "delivery_auth.outcome": outcome,
            "delivery_auth.attempts": attempts,
            "delivery_auth.cache_layer": layer,
        }
        if event.fingerprint is not None:
            attributes["delivery_auth.token.fingerprint"] = event.fingerprint
        span = self.tracer.start_span(
            SPAN_NAME,
            kind=trace.SpanKind.CLIENT if attempts else trace.SpanKind.INTERNAL,
            attributes=attributes,
            start_time=end - int(duration * _NS),
        )
        if outcome != "ok":
            span.set_status(trace.Status(trace.StatusCode.ERROR, outcome))
        span.end(end_time=end)


_current: _Instruments | None = None
_lock = threading.Lock()


def instrument(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Turn every auth object's events into spans and metrics (see the module's text).

    ``tracer_provider`` / ``meter_provider``: the providers to use (default: the global
    ones). Calling it again replaces the earlier instrumentation.

    Example::

        instrument(tracer_provider=my_tracer_provider)
    """
    global _current
    instruments = _Instruments(tracer_provider, meter_provider)
    with _lock:
        if _current is not None:
            remove_listener(_current)
        _current = instruments
        add_listener(instruments)


def uninstrument() -> None:
    """Stop producing spans and metrics."""
    global _current
    with _lock:
        if _current is not None:
            remove_listener(_current)
            _current = None
