"""The command line reads every provider from the registry and names none (issue 11,
items 1 and 7): a throwaway provider registered in the test is listed, checked and
fetched like a shipped one."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from loopback import CLIENT_ID, CLIENT_SECRET, LoopbackServer

import delivery_auth
from delivery_auth import ClientCredentialsAuth, cli
from delivery_auth.providers.base import check_overrides, read_env
from delivery_auth.providers.spec import EnvVar, ProviderSpec, register, registry, unregister

PACKAGE = pathlib.Path(delivery_auth.__file__).parent
#: Modules that must not name a provider in their code (docstrings and comments may).
#: Every module of the package but the providers' own homes: their modules, their emulator
#: pages, and delivery_auth/yandex.py (a re-export kept for the README's imports).
PROVIDER_HOMES = {
    *(PACKAGE / "providers").rglob("*.py"),
    *(
        PACKAGE.parent / (spec.emulator_page.replace(".", "/") + ".py")
        for spec in registry().values()
    ),
    PACKAGE / "yandex.py",
}
PROVIDER_FREE = sorted(set(PACKAGE.rglob("*.py")) - PROVIDER_HOMES, key=str)


class AcmeAuth(ClientCredentialsAuth):
    """A provider that exists only in this test."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str = "https://auth.acme.example/oauth2/token",
        timeout: float = 10.0,
        allowed_hosts: Sequence[str] | str | None = ("127.0.0.1",),
    ) -> None:
        super().__init__(
            token_url, client_id, client_secret, timeout=timeout, allowed_hosts=allowed_hosts
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> AcmeAuth:
        check_overrides(cls, overrides)
        values = read_env(cls.__name__, ("ACME_CLIENT_ID", "ACME_CLIENT_SECRET"), (), environ)
        return cls(values["ACME_CLIENT_ID"], values["ACME_CLIENT_SECRET"], **overrides)


ACME = ProviderSpec(
    name="acme",
    title="Acme",
    auth_class=AcmeAuth,
    env=(
        EnvVar("ACME_CLIENT_ID", "client_id", required=True, field="client_id"),
        EnvVar("ACME_CLIENT_SECRET", "client_secret", required=True, field="client_secret"),
    ),
    default_hosts=("127.0.0.1",),
    failure_signal='HTTP 403 {"code": "TOKEN_EXPIRED"}',
    emulator_page="tests.no_such_page",
)


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderSpec]:
    monkeypatch.setenv("ACME_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ACME_CLIENT_SECRET", CLIENT_SECRET)
    register(ACME)
    try:
        yield ACME
    finally:
        unregister("acme")


def _code_strings(path: pathlib.Path) -> list[tuple[int, str]]:
    """String constants of a module's code, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("path", PROVIDER_FREE, ids=lambda p: p.name)
def test_no_module_outside_a_providers_home_names_a_provider_in_its_code(path):
    names = set(registry())
    named = [
        (line, text)
        for line, text in _code_strings(path)
        if text in names or any(f"/{name}/" in text or f"/{name}" == text for name in names)
    ]
    assert named == [], f"{path.name} names a provider: {named}"


def test_a_registered_provider_is_listed_checked_and_fetched(acme, capsys):
    with pytest.raises(SystemExit):
        cli.main(["check", "--help"])
    assert "acme" in capsys.readouterr().out
    with LoopbackServer() as server:
        assert cli.main(["check", "acme", "--token-url", server.token_url]) == 0
        out = capsys.readouterr().out
        assert out == f"OK: Acme issued a token (lifetime 3600 s) at {server.token_url}.\n"
        assert cli.main(["token", "acme", "--token-url", server.token_url, "--json"]) == 0
        assert '"provider": "acme"' in capsys.readouterr().out
        assert cli.main(["check", "acme", "-o", "timout=5"]) == 2
        err = capsys.readouterr().err
        assert "Acme has no option 'timout'. Did you mean 'timeout'?" in err
        assert "Options: --token-url, timeout." in err


def test_a_registered_providers_missing_variables_are_named(acme, capsys, monkeypatch):
    monkeypatch.delenv("ACME_CLIENT_SECRET")
    assert cli.main(["check", "acme"]) == 2
    assert "missing environment variable(s) ACME_CLIENT_SECRET" in capsys.readouterr().err
