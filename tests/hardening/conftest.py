"""Fixtures of the hardening suite: one emulator for the session, a fresh rig per test,
auth objects that are always closed, and a leak scan of every captured log record."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from delivery_auth.emulator import CREDENTIALS, Emulator
from delivery_auth.providers.spec import registry

from .harness import FAST_BACKOFF, Rig


@pytest.fixture(scope="session")
def session_rig() -> Iterator[Rig]:
    with Emulator(token_ttl=3600) as emu:
        rig = Rig(emu)
        yield rig
        rig.stopping.set()  # wake scripted "slow" answers still sleeping


@pytest.fixture
def rig(session_rig: Rig, caplog: pytest.LogCaptureFixture) -> Iterator[Rig]:
    """The emulator, reset, with DEBUG logs captured and scanned for secrets afterwards."""
    session_rig.reset()
    caplog.set_level(logging.DEBUG)
    yield session_rig
    assert_no_secrets(session_rig, log_texts(caplog))


MakeAuth = Callable[..., Any]


@pytest.fixture
def make_auth(rig: Rig) -> Iterator[MakeAuth]:
    """Provider auth objects aimed at the emulator: fast back-off, 10 s timeouts, closed
    after the test. Delivery Tracker uses OAuth2 unless ``method=`` says otherwise."""
    made: list[Any] = []

    def make(provider: str, **options: Any) -> Any:
        accepted = registry()[provider].options()  # a minted JWT has no token request
        for name, value in (("backoff", FAST_BACKOFF), ("timeout", 10.0)):
            if name in accepted:
                options.setdefault(name, value)
        if provider == "tracker":
            options.setdefault("method", "oauth2")
        auth = rig.emu.auth(provider, **options)
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.close()


@pytest.fixture
def refused_url() -> str:
    """An http URL on loopback where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/token"


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = []
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            texts.append("".join(traceback.format_exception(record.exc_info[1])))
    return texts


def exception_texts(exc: BaseException) -> list[str]:
    """str, repr, the full traceback (chained causes included) and every attribute."""
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts += [repr(value) for value in vars(exc).values()]
    context = exc.__context__
    while context is not None:
        texts += [str(context), repr(context)]
        context = context.__context__
    return texts


def assert_no_secrets(rig: Rig, texts: list[str]) -> None:
    secrets = rig.secrets | {c.client_secret for c in CREDENTIALS.values()}
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret or token leaked into: {text[:300]!r}"
