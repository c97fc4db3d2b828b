"""What every token-issuing carrier promises, written once and run against its emulator page.

A carrier's test module subclasses :class:`CarrierContract` (as ``TestContract``) with
its provider name and what a wrong credential is called; pytest then runs these tests
for it through requests, httpx and httpx async: first call, reuse, a rejection costs one
new token and one resend, a wrong credential is a clear error naming what to check, a
stampede is one token request, and no secret shows in logs, errors or reprs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
from conftest import CLIENTS, FAST_BACKOFF, call
from emulated import EmulatedProvider

from delivery_auth import InvalidClientError


class CarrierContract:
    """Subclass as ``TestContract`` and set :attr:`provider` and :attr:`wrong`."""

    provider: str
    #: Constructor arguments that make the token endpoint refuse, and the words the
    #: error must use to say what to check.
    wrong: ClassVar[dict[str, str]]
    advice: str = "client_id and client_secret"

    @pytest.fixture
    def server(self) -> Iterator[EmulatedProvider]:
        with EmulatedProvider(self.provider) as srv:
            yield srv

    @pytest.fixture
    def made(self) -> Iterator[list[Any]]:
        made: list[Any] = []
        yield made
        for auth in made:
            auth.close()

    def auth(self, server: EmulatedProvider, made: list[Any], **options: Any) -> Any:
        options.setdefault("backoff", FAST_BACKOFF)
        auth = server.emu.auth(self.provider, **options)
        made.append(auth)
        return auth

    @pytest.mark.parametrize("client", CLIENTS)
    def test_first_call_reuse_and_one_resend_after_a_rejection(
        self, client: str, server: EmulatedProvider, made: list[Any]
    ) -> None:
        auth = self.auth(server, made)
        assert call(client, auth, "GET", server.resource_url).status == 200
        assert call(client, auth, "GET", server.resource_url).status == 200
        assert len(server.token_requests) == 1
        server.revoke_all()
        result = call(client, auth, "POST", server.resource_url, json={"n": 1})
        assert (result.status, result.history) == (200, [401])
        assert len(server.token_requests) == 2
        assert len(server.api_requests) == 4
        sent = [seen.headers["Authorization"] for seen in server.api_requests]
        assert sent == [f"Bearer {server.issued[0]}"] * 3 + [f"Bearer {server.issued[1]}"]
        assert server.api_requests[2].body == server.api_requests[3].body
        assert json.loads(server.api_requests[3].body) == {"n": 1}

    @pytest.mark.parametrize("client", CLIENTS)
    def test_wrong_credentials_are_a_clear_error(
        self,
        client: str,
        server: EmulatedProvider,
        made: list[Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        auth = self.auth(server, made, **self.wrong)
        with pytest.raises(InvalidClientError) as caught:
            call(client, auth, "GET", server.resource_url)
        error = caught.value
        assert self.advice in str(error)
        assert len(server.token_requests) == 1  # a refusal is not retried
        assert server.api_requests == []
        shown = str(error) + repr(vars(error)) + caplog.text + repr(auth)
        for value in self.wrong.values():
            assert value not in shown

    def test_a_stampede_is_one_token_request(
        self, server: EmulatedProvider, made: list[Any]
    ) -> None:
        auth = self.auth(server, made)
        callers = 32
        barrier = threading.Barrier(callers)
        statuses: list[int] = []

        def one() -> None:
            barrier.wait()
            statuses.append(call("requests", auth, "GET", server.resource_url).status)

        threads = [threading.Thread(target=one) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        async def many() -> list[int]:
            async with httpx.AsyncClient(auth=auth, timeout=10) as client:
                answers = await asyncio.gather(
                    *(client.get(server.resource_url) for _ in range(callers))
                )
            return [answer.status_code for answer in answers]

        server.revoke_all()  # every async caller is rejected: still one new token
        assert statuses == [200] * callers
        assert asyncio.run(many()) == [200] * callers
        assert len(server.token_requests) == 2

    @pytest.mark.parametrize("client", CLIENTS)
    def test_no_secret_in_logs_errors_or_reprs(
        self,
        client: str,
        server: EmulatedProvider,
        made: list[Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        auth = self.auth(server, made)
        assert call(client, auth, "GET", server.resource_url).status == 200
        server.revoke_all()
        assert call(client, auth, "GET", server.resource_url).status == 200
        shown = caplog.text + repr(auth) + str(auth) + repr(auth.get_token())
        secrets = server.secrets_seen() | set(server.issued)
        secrets |= {
            value
            for name, value in server.credentials.extra.items()
            if "password" in name or "secret" in name
        }
        assert len(secrets) >= 3
        for secret in secrets:
            assert secret not in shown
