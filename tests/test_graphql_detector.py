"""Property tests of the GraphQL failure detector: it finds UNAUTHENTICATED exactly where
the Delivery Tracker puts it, and never raises on anything a server can send."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, find, given, settings
from hypothesis import strategies as st

from delivery_auth.providers import GraphQLFailureDetector
from delivery_auth.providers import tracker as tracker_module

DETECTOR = GraphQLFailureDetector()
CODES = ["UNAUTHENTICATED", "FORBIDDEN", "BAD_REQUEST", "NOT_FOUND", "INTERNAL", "unauthenticated"]
JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "application/graphql-response+json",
    "application/problem+json;charset=UTF-8",
]
NOT_JSON_TYPES = ["", "text/html", "text/plain; charset=utf-8", "application/xml", "text/json"]

PROPERTY = settings(max_examples=100, deadline=None)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars | st.sampled_from(CODES),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["code", "extensions"]), children, max_size=4
        )
    ),
    max_leaves=8,
)


@st.composite
def graphql_error(draw: st.DrawFn) -> tuple[Any, bool]:
    """One element of ``errors`` and whether it is an UNAUTHENTICATED error."""
    kind = draw(st.sampled_from(["any", "no-extensions", "extensions-any", "coded"]))
    if kind == "any":
        value = draw(json_values)
        return value, _reference(value)
    error: dict[str, Any] = {"message": draw(st.text(max_size=20))}
    if draw(st.booleans()):
        error["path"] = draw(st.lists(st.text(max_size=5) | st.integers(), max_size=3))
    if kind == "extensions-any":
        error["extensions"] = draw(json_values)
    elif kind == "coded":
        code = draw(st.sampled_from(CODES) | st.text(max_size=16) | json_scalars)
        extra = draw(st.dictionaries(st.text(max_size=5), json_scalars, max_size=2))
        error["extensions"] = {**extra, "code": code}
    return error, _reference(error)


def _reference(error: Any) -> bool:
    """The specification, spelled out: an object whose extensions object has the code."""
    return (
        isinstance(error, dict)
        and isinstance(error.get("extensions"), dict)
        and error["extensions"].get("code") == "UNAUTHENTICATED"
    )


@st.composite
def graphql_response(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    errors = draw(st.lists(graphql_error(), max_size=5))
    response: dict[str, Any] = {"errors": [error for error, _ in errors]}
    if draw(st.booleans()):
        response["data"] = draw(json_values)
    return response, any(flag for _, flag in errors)


def _response_reference(response: Any) -> bool:
    """One response object whose ``errors`` list has an UNAUTHENTICATED error."""
    return (
        isinstance(response, dict)
        and isinstance(response.get("errors"), list)
        and any(_reference(error) for error in response["errors"])
    )


@st.composite
def graphql_batch(draw: st.DrawFn) -> tuple[list[Any], bool]:
    """The answer to a batched request (a JSON array of responses, Apollo Server style),
    with now and then an element that is not a response at all; and whether it is an auth
    failure: any one response has an UNAUTHENTICATED error."""
    elements = draw(
        st.lists(graphql_response().map(lambda case: case[0]) | json_values, max_size=5)
    )
    return elements, any(_response_reference(element) for element in elements)


@PROPERTY
@given(graphql_response(), st.sampled_from(JSON_TYPES), st.integers(100, 599))
def test_finds_unauthenticated_in_any_error_at_any_status(
    case: tuple[dict[str, Any], bool], content_type: str, status: int
) -> None:
    response, expected = case
    body = json.dumps(response).encode()
    assert DETECTOR.needs_body(status, content_type) is True
    assert DETECTOR.is_auth_failure(status, content_type, body) is expected


@PROPERTY
@given(
    st.lists(st.sampled_from(CODES[1:]), max_size=3),
    st.lists(st.sampled_from(CODES[1:]), max_size=3),
    st.integers(100, 599),
)
def test_position_among_other_errors_does_not_matter(
    before: list[str], after: list[str], status: int
) -> None:
    codes = [*before, "UNAUTHENTICATED", *after]
    errors = [{"message": code, "extensions": {"code": code}} for code in codes]
    body = json.dumps({"data": None, "errors": errors}).encode()
    assert DETECTOR.is_auth_failure(status, "application/json", body)
    without = [error for error in errors if error["extensions"]["code"] != "UNAUTHENTICATED"]
    body = json.dumps({"data": None, "errors": without}).encode()
    assert not DETECTOR.is_auth_failure(status, "application/json", body)


@PROPERTY
@given(graphql_batch(), st.sampled_from(JSON_TYPES), st.integers(100, 599))
def test_finds_unauthenticated_in_any_response_of_a_batch(
    case: tuple[list[Any], bool], content_type: str, status: int
) -> None:
    batch, expected = case
    body = json.dumps(batch).encode()
    assert DETECTOR.is_auth_failure(status, content_type, body) is expected


def _coded_response(codes: list[str]) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": c, "extensions": {"code": c}} for c in codes]}


OTHER_CODES = st.sampled_from(CODES[1:]) | st.text(max_size=16).filter(
    lambda text: "UNAUTHENTICATED" not in text
)
#: Batch answers that cannot hold the code anywhere (built so, not filtered).
batches_without_the_code = st.lists(
    st.lists(OTHER_CODES, max_size=4).map(_coded_response), max_size=4
)


@PROPERTY
@given(batches_without_the_code, batches_without_the_code, st.integers(100, 599))
def test_position_in_a_batch_does_not_matter(
    before: list[dict[str, Any]], after: list[dict[str, Any]], status: int
) -> None:
    failing = _coded_response(["BAD_REQUEST", "UNAUTHENTICATED"])
    body = json.dumps([*before, failing, *after]).encode()
    assert DETECTOR.is_auth_failure(status, "application/json", body)
    body = json.dumps([*before, *after]).encode()
    assert not DETECTOR.is_auth_failure(status, "application/json", body)


@PROPERTY
@given(graphql_batch(), st.data())
def test_truncated_batches_are_not_failures(
    case: tuple[list[Any], bool], data: st.DataObject
) -> None:
    body = json.dumps(case[0]).encode()
    cut = data.draw(st.integers(0, len(body) - 1))
    assert DETECTOR.is_auth_failure(200, "application/json", body[:cut]) is False


@PROPERTY
@given(graphql_response())
def test_a_batch_is_one_flat_array(case: tuple[dict[str, Any], bool]) -> None:
    unauthenticated = {"message": "expired", "extensions": {"code": "UNAUTHENTICATED"}}
    response = {**case[0], "errors": [*case[0]["errors"], unauthenticated]}
    body = json.dumps([response]).encode()
    assert DETECTOR.is_auth_failure(200, "application/json", body) is True  # the control
    # An array in the array, or an array where a response's fields belong, is no batch
    # answer that a server sends: not a failure.
    for shape in ([[response]], {"data": [response]}, {"errors": [response["errors"]]}):
        body = json.dumps(shape).encode()
        assert DETECTOR.is_auth_failure(200, "application/json", body) is False


@PROPERTY
@given(batches_without_the_code)
def test_batches_without_the_code_are_never_parsed(batch: list[dict[str, Any]]) -> None:
    body = json.dumps(batch).encode()
    with mock.patch.object(tracker_module, "json", wraps=json) as spy:
        assert DETECTOR.is_auth_failure(200, "application/json", body) is False
    spy.loads.assert_not_called()


@PROPERTY
@given(graphql_response(), st.data())
def test_truncated_bodies_are_not_failures(
    case: tuple[dict[str, Any], bool], data: st.DataObject
) -> None:
    body = json.dumps(case[0]).encode()
    cut = data.draw(st.integers(0, len(body) - 1))
    assert DETECTOR.is_auth_failure(200, "application/json", body[:cut]) is False


@PROPERTY
@given(st.binary(max_size=2048), st.sampled_from(JSON_TYPES + NOT_JSON_TYPES), st.integers(0, 999))
@example(b'{"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]', "application/json", 200)
@example(b"[" * 100_000 + b'"UNAUTHENTICATED"', "application/json", 200)
@example(
    b'{"errors": [{"x": ' + b"9" * 10_000 + b'}], "UNAUTHENTICATED": 1}', "application/json", 1
)
@example(
    b'\xef\xbb\xbf{"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}',
    "application/json",
    200,
)
@example(b'\xff{"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}', "application/json", 200)
@example(b'{"errors": [NaN, Infinity, "UNAUTHENTICATED"]}', "application/json", 200)
@example(b'"UNAUTHENTICATED"', "application/json", 401)
@example(b'[{"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}', "application/json", 200)
@example(b'[1, null, "UNAUTHENTICATED", [{"errors": []}], {"errors": 7}]', "application/json", 200)
@example(b"[" * 100_000 + b'{"errors": "UNAUTHENTICATED"}', "application/json", 200)
def test_never_raises_on_arbitrary_bytes(body: bytes, content_type: str, status: int) -> None:
    assert DETECTOR.is_auth_failure(status, content_type, body) in (True, False)
    assert DETECTOR.needs_body(status, content_type) in (True, False)


@PROPERTY
@given(graphql_response(), st.sampled_from(NOT_JSON_TYPES), st.integers(100, 599))
def test_only_json_responses_are_inspected(
    case: tuple[dict[str, Any], bool], content_type: str, status: int
) -> None:
    body = json.dumps(case[0]).encode()
    assert DETECTOR.needs_body(status, content_type) is False
    assert DETECTOR.is_auth_failure(status, content_type, body) is False


@PROPERTY
@given(json_values.filter(lambda v: "UNAUTHENTICATED" not in json.dumps(v)))
def test_bodies_without_the_code_are_never_parsed(value: Any) -> None:
    body = json.dumps(value).encode()
    with mock.patch.object(tracker_module, "json", wraps=json) as spy:
        assert DETECTOR.is_auth_failure(200, "application/json", body) is False
    spy.loads.assert_not_called()


def test_bodies_with_the_code_are_parsed() -> None:
    # The control for the test above: the spy does see a parse.
    body = b'{"errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}'
    with mock.patch.object(tracker_module, "json", wraps=json) as spy:
        assert DETECTOR.is_auth_failure(200, "application/json", body) is True
    spy.loads.assert_called_once()


@PROPERTY
@given(st.integers(0, 4000))
def test_bodies_over_max_body_are_not_parsed(padding: int) -> None:
    detector = GraphQLFailureDetector(max_body=1000)
    body = json.dumps(
        {"data": "x" * padding, "errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}
    ).encode()
    with mock.patch.object(tracker_module, "json", wraps=json) as spy:
        found = detector.is_auth_failure(200, "application/json", body)
    assert found is (len(body) <= 1000)
    assert spy.loads.called is (len(body) <= 1000)


def test_multi_megabyte_body_is_not_a_failure() -> None:
    body = (
        b'{"data": {"events": ["'
        + b"UNAUTHENTICATED courier scan, " * 200_000
        + b'"]}, "errors": [{"extensions": {"code": "UNAUTHENTICATED"}}]}'
    )
    assert len(body) > 5_000_000
    assert DETECTOR.is_auth_failure(200, "application/json", body) is False


def test_empty_and_missing_bodies() -> None:
    assert DETECTOR.is_auth_failure(401, "application/json", None) is False
    assert DETECTOR.is_auth_failure(401, "application/json", b"") is False


def test_custom_code_and_validation() -> None:
    detector = GraphQLFailureDetector("TOKEN_EXPIRED")
    body = b'{"errors": [{"extensions": {"code": "TOKEN_EXPIRED"}}]}'
    assert detector.is_auth_failure(200, "application/json", body)
    assert not DETECTOR.is_auth_failure(200, "application/json", body)
    assert "TOKEN_EXPIRED" in repr(detector)
    with pytest.raises(ValueError, match="code"):
        GraphQLFailureDetector("")
    with pytest.raises(ValueError, match="max_body"):
        GraphQLFailureDetector(max_body=0)


def test_the_strategy_produces_failures_and_non_failures() -> None:
    # Without both kinds, the first property would prove nothing.
    assert find(graphql_response(), lambda case: case[1])[1] is True
    assert find(graphql_response(), lambda case: not case[1] and len(case[0]["errors"]) > 2)
    # The same for batches: failing ones with other responses, and several without.
    assert find(graphql_batch(), lambda case: case[1] and len(case[0]) > 2)[1] is True
    assert find(graphql_batch(), lambda case: not case[1] and len(case[0]) > 2)
