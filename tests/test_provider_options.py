"""Every provider's options are named parameters: a misspelt one fails at the call, in
Python, under mypy and on the command line; and every provider's spec verifies
credentials (issue 11, items 4 and 5)."""

from __future__ import annotations

import inspect
import socket
import textwrap

import pytest

from delivery_auth import CredentialsRejectedError, DeliveryAuthError, DeliveryTrackerAuth, cli
from delivery_auth.emulator import CREDENTIALS, Emulator, endpoints_at
from delivery_auth.providers.spec import registry

SHIPPED = ("tracker", "bringg", "dhl", "yandex")


def _credentials(name: str) -> list[str]:
    """As many placeholder credentials as the class takes positionally."""
    parameters = inspect.signature(registry()[name].auth_class.__init__).parameters.values()
    positional = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD][1:]  # no self
    return ["placeholder"] * len(positional)


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture(scope="module")
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.mark.parametrize("name", SHIPPED)
def test_a_misspelt_option_is_a_type_error_at_the_call(name):
    cls = registry()[name].auth_class
    with pytest.raises(TypeError, match="timout"):
        cls(*_credentials(name), timout=5)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_option_is_a_named_parameter(name):
    parameters = inspect.signature(registry()[name].auth_class.__init__).parameters.values()
    assert not [p.name for p in parameters if p.kind is p.VAR_KEYWORD]
    assert "timeout" in registry()[name].options()


@pytest.mark.parametrize("name", SHIPPED)
def test_from_env_rejects_a_misspelt_option_at_once_naming_the_valid_ones(name):
    spec = registry()[name]
    environ = spec.environment_for(CREDENTIALS[name])
    with pytest.raises(TypeError) as caught:
        spec.from_env(environ, timout=5)
    message = str(caught.value)
    assert f"{spec.auth_class.__name__}.from_env()" in message
    assert "'timout'" in message
    assert "Did you mean 'timeout'?" in message
    assert "token_url" in message  # the valid ones are listed


def test_mypy_reports_a_misspelt_option():
    from mypy import api

    snippet = textwrap.dedent(
        """
        from delivery_auth import (
            BringgAuth, DeliveryTrackerAuth, DHLeCommerceAuth, YandexCourierAuth,
        )
        DeliveryTrackerAuth("id", "secret", timout=5)
        BringgAuth("id", "secret", timout=5)
        DHLeCommerceAuth("id", "secret", timout=5)
        YandexCourierAuth("token", timout=5)
        DHLeCommerceAuth("id", "secret", timeout=5)
        """
    )
    stdout, _, status = api.run(["--no-incremental", "--strict", "-c", snippet])
    assert status == 1, stdout
    assert stdout.count('Unexpected keyword argument "timout"') == 4, stdout


@pytest.mark.parametrize("name", SHIPPED)
def test_cli_option_misspelt_is_a_usage_error_naming_timeout(name, capsys, monkeypatch):
    for variable, value in registry()[name].environment_for(CREDENTIALS[name]).items():
        monkeypatch.setenv(variable, value)
    assert cli.main(["check", name, "-o", "timout=5"]) == 2
    err = capsys.readouterr().err
    assert "has no option 'timout'. Did you mean 'timeout'?" in err
    assert err.count("\n") == 1


# -- verify: one per provider, in its spec ---------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_every_spec_verifies_the_emulators_credentials(emu, name):
    spec = registry()[name]
    endpoints = endpoints_at(emu.base_url, name)
    options = {option: endpoints[option] for option in spec.endpoints}
    with spec.from_env(spec.environment_for(CREDENTIALS[name]), **options) as auth:
        line = spec.verify(auth, None)
    assert line.endswith(".")
    assert "\n" not in line


def test_tracker_verify_accepts_good_credentials(emu):
    known = CREDENTIALS["tracker"]
    api_url = emu.url("tracker", "/graphql")
    for method in ("api_key", "oauth2"):
        auth = DeliveryTrackerAuth(
            known.client_id,
            known.client_secret,
            method=method,
            token_url=emu.token_url("tracker"),
            api_url=api_url,
        )
        with auth:
            assert auth.verify() is None
            line = registry()["tracker"].verify(auth, None)
        assert line == f"answered AuthTestQuery ({method} mode, {api_url})."


def test_tracker_verify_refuses_bad_credentials_with_the_legacy_hint(emu):
    known = CREDENTIALS["tracker"]
    auth = DeliveryTrackerAuth(
        known.client_id, "not-the-secret", api_url=emu.url("tracker", "/graphql")
    )
    with auth, pytest.raises(CredentialsRejectedError) as caught:
        auth.verify()
    message = str(caught.value)
    assert "UNAUTHENTICATED" in message
    assert 'Client IDs registered before 2024-05-13 work only with method="oauth2"' in message
    assert "not-the-secret" not in message


def test_tracker_verify_in_oauth2_mode_renews_a_revoked_token_once(emu):
    with emu.auth("tracker", method="oauth2", api_url=emu.url("tracker", "/graphql")) as auth:
        auth.verify()
        fetched = auth.token_requests
        emu.revoke_all()
        auth.verify()  # UNAUTHENTICATED -> one fresh token -> the resend answers
        assert auth.token_requests == fetched + 1


def test_tracker_verify_names_what_answered_instead(emu, closed_port):
    known = CREDENTIALS["tracker"]
    elsewhere = DeliveryTrackerAuth(
        known.client_id, known.client_secret, api_url=emu.url("tracker", "/nope")
    )
    with elsewhere, pytest.raises(DeliveryAuthError, match="did not answer AuthTestQuery"):
        elsewhere.verify()
    dead = f"http://127.0.0.1:{closed_port}/graphql"
    nowhere = DeliveryTrackerAuth(known.client_id, known.client_secret, api_url=dead)
    with nowhere, pytest.raises(DeliveryAuthError, match="could not reach"):
        nowhere.verify(timeout=5)
