"""The flow driven by hand, httpx style: ``next(flow)``, ``flow.send(response)``, no client.

The same flows are exercised through real clients elsewhere; here each decision is pinned
down with plain request and response objects.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import httpx
import pytest
from loopback import LoopbackServer

from delivery_auth import (
    ClientCredentialsAuth,
    DeliveryAuth,
    MemoryTokenCache,
    RefreshPolicy,
    Token,
)
from delivery_auth.engine import TokenEngine
from delivery_auth.flow import Attempt, StatusFailureDetector, Step, judge_body, judge_response

MakeAuth = Callable[..., ClientCredentialsAuth]


class JsonCodeDetector:
    """A detector that needs the body: ``{"code": "TOKEN_EXPIRED"}`` at any status."""

    def needs_body(self, status_code: int, content_type: str) -> bool:
        return "json" in content_type

    def is_auth_failure(self, status_code: int, content_type: str, body: bytes | None) -> bool:
        return body is not None and json.loads(body).get("code") == "TOKEN_EXPIRED"


def response_for(request: httpx.Request, status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=request, **kwargs)  # type: ignore[arg-type]


class TestDecisions:
    def lease(self) -> Attempt:
        engine = TokenEngine(
            source=None,  # type: ignore[arg-type]
            cache=MemoryTokenCache(),
            key="k",
            policy=RefreshPolicy(),
            format_header=lambda t: f"Bearer {t.access_token}",
            initial=Token("abc"),
            refreshable=False,
        )
        return Attempt("https://api.example.com:443", engine.current())

    def test_status_detector(self) -> None:
        attempt, detector = self.lease(), StatusFailureDetector({401, 419})
        url = "https://api.example.com/x"
        assert judge_response(attempt, detector, 401, "", url, "Bearer abc") is Step.RETRY
        assert judge_response(attempt, detector, 419, "", url, "Bearer abc") is Step.RETRY
        assert judge_response(attempt, detector, 403, "", url, "Bearer abc") is Step.DONE
        # not our token on the wire, or another origin: not ours to judge
        assert judge_response(attempt, detector, 401, "", url, "Bearer other") is Step.DONE
        assert judge_response(attempt, detector, 401, "", url, None) is Step.DONE
        assert (
            judge_response(attempt, detector, 401, "", "https://evil.example/x", "Bearer abc")
            is Step.DONE
        )
        assert judge_response(attempt, detector, 401, "", "not a url", "Bearer abc") is Step.DONE
        assert repr(detector) == "StatusFailureDetector([401, 419])"

    def test_body_detector(self) -> None:
        attempt, detector = self.lease(), JsonCodeDetector()
        url = "https://api.example.com/x"
        assert (
            judge_response(attempt, detector, 200, "application/json", url, "Bearer abc")
            is Step.READ_BODY
        )
        assert judge_response(attempt, detector, 200, "text/html", url, "Bearer abc") is Step.DONE
        other = "https://other.example/x"
        assert (
            judge_response(attempt, detector, 200, "application/json", other, "Bearer abc")
            is Step.DONE
        )
        body = b'{"code": "TOKEN_EXPIRED"}'
        assert judge_body(detector, 200, "application/json", body) is Step.RETRY
        assert judge_body(detector, 200, "application/json", b'{"code": "x"}') is Step.DONE


class TestDrivenByHand:
    def test_sync_flow(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        auth = make_auth()
        request = httpx.Request("GET", server.url())
        flow = auth.sync_auth_flow(request)
        sent = next(flow)
        first_header = sent.headers["Authorization"]
        assert first_header == f"Bearer {auth.get_token().access_token}"
        server.state.revoke_all()
        retried = flow.send(response_for(sent, 401))
        assert retried.headers["Authorization"] != first_header
        with pytest.raises(StopIteration):
            flow.send(response_for(retried, 401))  # never a second retry
        assert len(server.state.token_requests) == 2

    def test_sync_flow_done_on_success(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        flow = make_auth().sync_auth_flow(httpx.Request("GET", server.url()))
        sent = next(flow)
        with pytest.raises(StopIteration):
            flow.send(response_for(sent, 200))

    def test_async_flow(self, server: LoopbackServer, make_auth: MakeAuth) -> None:
        auth = make_auth()

        async def main() -> None:
            flow = auth.async_auth_flow(httpx.Request("GET", server.url()))
            sent = await flow.__anext__()
            first_header = sent.headers["Authorization"]
            retried = await flow.asend(response_for(sent, 401))
            assert retried.headers["Authorization"] != first_header
            with pytest.raises(StopAsyncIteration):
                await flow.asend(response_for(retried, 200))

        asyncio.run(main())
        assert len(server.state.token_requests) == 2

    def test_body_detector_reads_only_json(
        self, server: LoopbackServer, make_auth: MakeAuth
    ) -> None:
        auth = make_auth(failure_detector=JsonCodeDetector())
        flow = auth.sync_auth_flow(httpx.Request("GET", server.url()))
        sent = next(flow)
        html = response_for(
            sent, 200, headers={"content-type": "text/html"}, stream=httpx.ByteStream(b"<p>")
        )
        with pytest.raises(StopIteration):
            flow.send(html)
        assert not html.is_stream_consumed  # never read: no detector question needed it

        flow = auth.sync_auth_flow(httpx.Request("GET", server.url()))
        sent = next(flow)
        expired = response_for(
            sent,
            200,
            headers={"content-type": "application/json"},
            stream=httpx.ByteStream(b'{"code": "TOKEN_EXPIRED"}'),
        )
        retried = flow.send(expired)
        assert retried.url == sent.url
        # Judged from a peek that was put back: every byte is still there for the client.
        assert not expired.is_stream_consumed
        assert expired.read() == b'{"code": "TOKEN_EXPIRED"}'

    @pytest.mark.parametrize("client", ["sync", "async"])
    def test_unreplayable_and_unrefreshable(
        self,
        server: LoopbackServer,
        make_auth: MakeAuth,
        client: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        def chunks():  # type: ignore[no-untyped-def]
            yield b"x"

        auth = make_auth()
        static = DeliveryAuth(
            TokenEngine(
                source=None,  # type: ignore[arg-type]
                cache=MemoryTokenCache(),
                key="k",
                policy=RefreshPolicy(),
                format_header=lambda t: f"Key {t.access_token}",
                initial=Token("static-key"),
                refreshable=False,
            )
        )
        cases = [
            (auth, httpx.Request("POST", server.url(), content=chunks()), "cannot be sent twice"),
            (static, httpx.Request("GET", server.url()), "cannot obtain new ones"),
        ]
        for subject, request, message in cases:
            caplog.clear()
            if client == "sync":
                flow = subject.sync_auth_flow(request)
                sent = next(flow)
                with pytest.raises(StopIteration):
                    flow.send(response_for(sent, 401))
            else:

                async def drive(
                    subject: DeliveryAuth = subject, request: httpx.Request = request
                ) -> None:
                    aflow = subject.async_auth_flow(request)
                    sent = await aflow.__anext__()
                    with pytest.raises(StopAsyncIteration):
                        await aflow.asend(response_for(sent, 401))

                asyncio.run(drive())
            assert message in caplog.text
            assert all(r.levelno == logging.WARNING for r in caplog.records)
        assert static.token_requests == 0
        assert static.allowed_hosts is None
        assert static == static
        assert static != DeliveryAuth(static._engine)


def test_detector_through_a_real_server(server: LoopbackServer, make_auth: MakeAuth) -> None:
    from conftest import CLIENTS, call
    from loopback import Reply

    auth = make_auth(failure_detector=JsonCodeDetector())
    for client in CLIENTS:
        server.state.api_script.append(Reply(200, {"code": "TOKEN_EXPIRED"}))
        result = call(client, auth, "GET", server.url())
        assert (result.status, result.history) == (200, [200])
        assert result.json()["ok"] is True
    assert len(server.state.token_requests) == 1 + len(CLIENTS)
