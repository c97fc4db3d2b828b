"""delivery_auth.otel with the OpenTelemetry SDK's in-memory span exporter and metric
reader: what a span and each metric carry, for events as the auth objects emit them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from delivery_auth import otel
from delivery_auth.events import (
    BackgroundRefreshFailed,
    Events,
    TokenFetched,
    TokenFetchFailed,
    TokenRejected,
)


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        otel.instrument(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
        )

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points = found.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:  # a histogram point
                            value = (point.count, point.sum)
                        points.append((dict(point.attributes), value))
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    seen = Telemetry()
    yield seen
    otel.uninstrument()


def test_a_fetched_token_is_one_span_and_counted(telemetry: Telemetry) -> None:
    events = Events("dhl")
    events.emit(
        TokenFetched(
            provider="dhl",
            fingerprint="ab12cd34",
            source="token endpoint",
            duration=0.25,
            attempts=2,
            lifetime=3600.0,
            waiters=63,
            time=1_000_000.0,
        )
    )
    (span,) = telemetry.spans.get_finished_spans()
    assert span.name == "delivery_auth.token.fetch"
    assert dict(span.attributes or {}) == {
        "delivery_auth.provider": "dhl",
        "delivery_auth.outcome": "ok",
        "delivery_auth.attempts": 2,
        "delivery_auth.cache_layer": "token endpoint",
        "delivery_auth.token.fingerprint": "ab12cd34",
    }
    assert (span.start_time, span.end_time) == (999_999_750_000_000, 1_000_000_000_000_000)
    found = telemetry.metrics()
    provider = {"delivery_auth.provider": "dhl"}
    assert found["delivery_auth.token.requests"] == [
        ({**provider, "delivery_auth.outcome": "ok"}, 1)
    ]
    assert found["delivery_auth.token.fetch.duration"] == [(provider, (1, 0.25))]
    assert found["delivery_auth.flight.waiters"] == [(provider, 63)]


def test_a_token_from_the_shared_cache_is_a_span_but_no_token_request(
    telemetry: Telemetry,
) -> None:
    Events("ups").emit(
        TokenFetched(provider="ups", source="redis", duration=0.001, attempts=0, lifetime=None)
    )
    (span,) = telemetry.spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["delivery_auth.cache_layer"] == "redis"
    assert "delivery_auth.token.requests" not in telemetry.metrics()


def test_a_failed_fetch_is_an_error_span(telemetry: Telemetry) -> None:
    Events("fedex").emit(
        TokenFetchFailed(provider="fedex", error="InvalidClientError", duration=0.1, attempts=1)
    )
    (span,) = telemetry.spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.attributes is not None
    assert span.attributes["delivery_auth.outcome"] == "InvalidClientError"
    assert telemetry.metrics()["delivery_auth.token.requests"] == [
        ({"delivery_auth.provider": "fedex", "delivery_auth.outcome": "InvalidClientError"}, 1)
    ]


def test_resends_and_background_failures_are_counted(telemetry: Telemetry) -> None:
    events = Events("tracker")
    events.emit(TokenRejected(provider="tracker", status=200, resent=True, reason="resent"))
    events.emit(
        TokenRejected(provider="tracker", status=401, resent=False, reason="no other credentials")
    )
    events.emit(BackgroundRefreshFailed(provider="tracker", error="Timeout", retry_in=5.0))
    found = telemetry.metrics()
    assert found["delivery_auth.request.retries"] == [
        ({"delivery_auth.provider": "tracker", "http.response.status_code": 200}, 1)
    ]
    assert found["delivery_auth.refresh.background_failures"] == [
        ({"delivery_auth.provider": "tracker"}, 1)
    ]
    assert telemetry.spans.get_finished_spans() == ()


def test_uninstrument_stops_the_spans(telemetry: Telemetry) -> None:
    otel.uninstrument()
    Events("dhl").emit(
        TokenFetched(provider="dhl", source="token endpoint", duration=0, attempts=1, lifetime=1)
    )
    assert telemetry.spans.get_finished_spans() == ()


def test_the_module_imports_only_the_api() -> None:
    code = (
        "import sys, delivery_auth.otel; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    assert result.stdout.strip() == "[]"
