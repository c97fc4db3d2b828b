"""One provider of the emulator, seen the way the provider tests look at a server.

The fake behaviour is the emulator page's (``delivery_auth/emulator/<provider>.py``,
written once). This wrapper only adds what a test of the client side wants to look at:
every request as it arrived (secrets included: test values, never logged), the access
tokens handed out, and scripted answers (the emulator's ``reply`` fault).

Example::

    with EmulatedProvider("tracker") as server:
        auth = DeliveryTrackerAuth(server.client_id, server.client_secret,
                                   token_url=server.token_url, method="oauth2")
        server.api_script.append(Reply(200, {"errors": [...]}))
        ...
        (token_request,) = server.token_requests
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from loopback import Reply, Seen
from werkzeug.wrappers import Request, Response

from delivery_auth.emulator import Emulator


def graphql_errors(*codes: str) -> dict[str, Any]:
    """A GraphQL response with ``data: null`` and one error per code, in that order."""
    return {
        "data": None,
        "errors": [
            {
                "message": f"{code.lower()} error",
                "locations": [{"line": 1, "column": 3}],
                "path": ["track"],
                "extensions": {"code": code},
            }
            for code in codes
        ],
    }


#: The failure as the tests script it: UNAUTHENTICATED as the second of three errors.
UNAUTHENTICATED_SECOND = graphql_errors("BAD_REQUEST", "UNAUTHENTICATED", "NOT_FOUND")


class Script:
    """Answers given instead of the page's, first in first out (``append``/``extend``)."""

    def __init__(self, emu: Emulator, provider: str, endpoint: str) -> None:
        self._emu = emu
        self._provider = provider
        self._endpoint = endpoint

    def append(self, reply: Reply) -> None:
        body, headers = reply.encoded()
        self._emu.inject_fault(
            self._provider,
            "reply",
            endpoint=self._endpoint,
            status=reply.status,
            body=body,
            headers=headers,
        )

    def extend(self, replies: Iterable[Reply]) -> None:
        for reply in replies:
            self.append(reply)


class EmulatedProvider:
    """A running :class:`Emulator`, with the requests to one of its providers recorded.

    ``token_paths``: the paths recorded as token requests (default: the page's token
    endpoint); every other request is an API request.
    """

    def __init__(self, provider: str, token_paths: Iterable[str] = (), **settings: Any) -> None:
        self.emu = Emulator(**settings)
        self.provider = provider
        self.credentials = self.emu.credentials(provider)
        self.client_id = self.credentials.client_id
        self.client_secret = self.credentials.client_secret
        self.lock = threading.Lock()
        self.token_requests: list[Seen] = []
        self.api_requests: list[Seen] = []
        self.issued: list[str] = []  # access tokens handed out, oldest first
        self.token_answers: list[Any] = []  # decoded JSON answers of token requests
        self.token_script = Script(self.emu, provider, "token")
        self.api_script = Script(self.emu, provider, "resource")
        page = self.emu.state.pages[provider]
        own = set() if page.token_path is None else {page.token_path}
        self._token_paths = set(token_paths) or own
        handle = self.emu.app.handlers[provider]

        def recording(request: Request, state: Any, path: str) -> Response:
            body = request.get_data(cache=True)
            form: dict[str, str] = {}
            if request.mimetype == "application/x-www-form-urlencoded":
                form = dict(parse_qsl(body.decode()))
            seen = Seen(request.method, path, dict(request.headers.items()), body, form)
            is_token = path in self._token_paths
            with self.lock:
                (self.token_requests if is_token else self.api_requests).append(seen)
            response = handle(request, state, path)
            if is_token and not response.is_streamed:
                try:
                    answer = json.loads(response.get_data())
                except ValueError:
                    answer = None
                issued = answer.get("access_token") if isinstance(answer, dict) else None
                with self.lock:
                    self.token_answers.append(answer)
                    if response.status_code == 200 and isinstance(issued, str):
                        self.issued.append(issued)
            return response

        self.emu.app.handlers[provider] = recording

    # -- URLs -------------------------------------------------------------------------

    @property
    def base(self) -> str:
        """The provider's root: ``http://127.0.0.1:PORT/<provider>``."""
        return f"{self.emu.base_url}/{self.provider}"

    def url(self, path: str) -> str:
        return self.emu.url(self.provider, path)

    @property
    def token_url(self) -> str:
        return self.emu.token_url(self.provider)

    @property
    def resource_url(self) -> str:
        return self.emu.resource_url(self.provider)

    # -- server-side actions ----------------------------------------------------------

    def revoke_all(self) -> None:
        self.emu.revoke_all(self.provider)

    def accept(self, token: str) -> None:
        self.emu.accept_token(self.provider, token)

    def secrets_seen(self) -> set[str]:
        """The client secret, every credential sent to the API and every refresh token."""
        found = {self.client_secret}
        with self.lock:
            for seen in self.api_requests:
                header = seen.headers.get("Authorization", "")
                if " " in header:
                    found.add(header.split(" ", 1)[1])
            found.update(
                seen.form["refresh_token"]
                for seen in self.token_requests
                if "refresh_token" in seen.form
            )
        return found

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self) -> EmulatedProvider:
        self.emu.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.emu.stop()
