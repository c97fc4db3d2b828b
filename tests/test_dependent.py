"""A dependent second token (generic part, against a real loopback server): obtained
with the first token, sent in its own header only on the requests the rule names, reused
until it ages, and on a rejection re-minted together with the first token for the one
resend."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from conftest import CLIENTS, FAST_BACKOFF, call
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer, Reply, Seen

from delivery_auth import ClientCredentialsAuth, DeliveryAuthError, Token, TokenRequestError
from delivery_auth.dependent import DependentToken, JsonTokenRequest

ROLES = [{"roleName": "PAYER", "CRID": "1", "accountType": "EPS", "accountNumber": "9"}]


def header(seen: Seen, name: str) -> str | None:
    return next((v for k, v in seen.headers.items() if k.lower() == name.lower()), None)


def paid(value: str) -> Reply:
    return Reply(200, {"payToken": value, "status": "OK"})


@pytest.fixture
def auth(server: LoopbackServer) -> Iterator[ClientCredentialsAuth]:
    with ClientCredentialsAuth(
        server.token_url, CLIENT_ID, CLIENT_SECRET, backoff=FAST_BACKOFF
    ) as first:
        DependentToken.attach(
            first,
            obtain=JsonTokenRequest(
                server.url("/payments/auth"),
                {"roles": ROLES},
                field="payToken",
                lifetime=3000,
                what="Payment authorization",
            ),
            header="X-Pay",
            applies=lambda method, url: "/labels/" in url,
        )
        yield first


def dependent(auth: ClientCredentialsAuth) -> DependentToken:
    decorator = auth._decorator
    assert isinstance(decorator, DependentToken)
    return decorator


@pytest.mark.parametrize("client", CLIENTS)
def test_only_the_named_requests_carry_it_and_it_is_reused(
    client: str, auth: ClientCredentialsAuth, server: LoopbackServer
) -> None:
    assert call(client, auth, "GET", server.url("/tracking/1")).status == 200
    server.state.api_script.append(paid("pay-1"))
    for _ in range(2):
        assert call(client, auth, "POST", server.url("/labels/v3/label"), body=b"{}").status == 200
    tracking, payment, label, again = server.state.api_requests
    assert header(tracking, "X-Pay") is None
    bearer = tracking.headers["Authorization"]
    assert payment.path == "/payments/auth"
    assert payment.headers["Authorization"] == bearer  # obtained with the first token
    assert json.loads(payment.body) == {"roles": ROLES}
    assert header(label, "X-Pay") == header(again, "X-Pay") == "pay-1"
    assert label.headers["Authorization"] == bearer
    assert (auth.token_requests, dependent(auth).engine.fetch_count) == (1, 1)


@pytest.mark.parametrize("client", CLIENTS)
def test_attached_to_an_object_already_used_it_goes_on_every_later_call(
    client: str, server: LoopbackServer
) -> None:
    """The adapters remember hooks and attempts per origin for an object's calls; a
    dependent token attached afterwards must still go on the calls to those origins."""
    label = server.url("/labels/v3/label")
    with ClientCredentialsAuth(server.token_url, CLIENT_ID, CLIENT_SECRET) as first:
        for _ in range(2):  # the second call takes the cached path
            assert call(client, first, "POST", label, body=b"{}").status == 200
        DependentToken.attach(
            first,
            obtain=lambda lease: Token("pay-1", lifetime=3000),
            header="X-Pay",
            applies=lambda method, url: True,
        )
        for _ in range(2):
            assert call(client, first, "POST", label, body=b"{}").status == 200
    sent = [header(seen, "X-Pay") for seen in server.state.api_requests]
    assert sent == [None, None, "pay-1", "pay-1"]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_rejected_request_is_resent_once_with_both_tokens_new(
    client: str, auth: ClientCredentialsAuth, server: LoopbackServer
) -> None:
    server.state.api_script.extend([paid("pay-1"), Reply(401, {"error": "x"}), paid("pay-2")])
    result = call(client, auth, "POST", server.url("/labels/v3/label"), body=b'{"a": 1}')
    assert (result.status, result.history) == (200, [401])
    _pay1, rejected, payment, resent = server.state.api_requests
    assert (header(rejected, "X-Pay"), header(resent, "X-Pay")) == ("pay-1", "pay-2")
    assert resent.headers["Authorization"] != rejected.headers["Authorization"]
    assert payment.headers["Authorization"] == resent.headers["Authorization"]
    assert resent.body == rejected.body == b'{"a": 1}'
    assert (auth.token_requests, dependent(auth).engine.fetch_count) == (2, 2)


def test_a_refused_first_token_at_the_second_endpoint_is_renewed_once(
    auth: ClientCredentialsAuth, server: LoopbackServer
) -> None:
    server.state.api_script.extend([Reply(401, {"error": "expired"}), paid("pay-1")])
    assert call("requests", auth, "POST", server.url("/labels/v3/label"), body=b"{}").status == 200
    refused, payment, label = server.state.api_requests
    assert refused.headers["Authorization"] != payment.headers["Authorization"]
    assert header(label, "X-Pay") == "pay-1"
    assert auth.token_requests == 2


@pytest.mark.parametrize("client", ["requests", "httpx-async"])
def test_a_refusal_of_the_second_token_is_a_clear_error_before_the_label_is_sent(
    client: str, auth: ClientCredentialsAuth, server: LoopbackServer
) -> None:
    server.state.api_script.append(Reply(403, {"error": "payments not enabled"}))
    with pytest.raises(TokenRequestError, match="Payment authorization .* HTTP 403") as caught:
        call(client, auth, "POST", server.url("/labels/v3/label"), body=b"{}")
    assert [seen.path for seen in server.state.api_requests] == ["/payments/auth"]
    assert CLIENT_SECRET not in str(caught.value)


def _jwt(exp: float) -> str:
    def part(payload: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': exp})}.sig"


@pytest.mark.parametrize(("value", "lifetime"), [("pay-opaque", 3000.0), ("jwt", 600.0)])
def test_its_lifetime_is_its_own(
    auth: ClientCredentialsAuth, server: LoopbackServer, value: str, lifetime: float
) -> None:
    if value == "jwt":
        value = _jwt(time.time() + 600)
    server.state.api_script.append(paid(value))
    assert call("requests", auth, "POST", server.url("/labels/v3/label"), body=b"{}").status == 200
    token = dependent(auth).engine.current().token
    assert token.lifetime == pytest.approx(lifetime, abs=5)
    first = auth.get_token()
    assert first.lifetime == 3600  # the first token's schedule is the first token's


def test_close_closes_both_engines(server: LoopbackServer) -> None:
    first = ClientCredentialsAuth(server.token_url, CLIENT_ID, CLIENT_SECRET)
    second = DependentToken.attach(
        first,
        obtain=lambda lease: pytest.fail("not called"),
        header="X-Pay",
        applies=lambda method, url: True,
    )
    with pytest.raises(ValueError, match="already decorates"):
        DependentToken.attach(
            first, obtain=lambda lease: pytest.fail("no"), header="X", applies=lambda m, u: True
        )
    first.close()
    with pytest.raises(DeliveryAuthError, match="closed"):
        second.engine.current()
