"""A new provider is its own module and page, one registry line, and its tests: nothing else.

Acme (tests/acme_provider.py: OAuth2 client credentials, a rejected token is HTTP 403
``{"code": "TOKEN_EXPIRED"}``) exists only in the tests. Named in
``$DELIVERY_AUTH_PROVIDERS`` (what a plugin's one registry line does in-process), it is
served by ``delivery-auth emulate``, checked and fetched by ``check`` and ``token``, driven
by ``delivery-auth demo`` (which must judge its 403 signal), and built by the pytest
plugin's fixture, all in processes of their own, through the real command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_provider import KNOWN

from delivery_auth.demo import CLIENTS

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
EXTRA = "acme_provider:SPEC"
ACME_CREDENTIALS = {"ACME_CLIENT_ID": KNOWN.client_id, "ACME_CLIENT_SECRET": KNOWN.client_secret}


def acme_env(**extra: str) -> dict[str, str]:
    """The environment of a process that knows Acme: the registry line and the import path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACME_")}
    path = [str(TESTS), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(PYTHONPATH=os.pathsep.join(path), DELIVERY_AUTH_PROVIDERS=EXTRA, **extra)
    return env


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "delivery_auth.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """``delivery-auth emulate`` in a process of its own, serving Acme's page too."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "delivery_auth.cli", "emulate", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=acme_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("delivery-auth emulator on http://127.0.0.1:"), first
        yield first.split(" on ")[1].strip()
    finally:
        proc.terminate()
        proc.communicate(timeout=600)


def test_the_demo_drives_acme_and_judges_its_403() -> None:
    result = cli("demo", "--provider", "acme", env=acme_env())
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if "403 TOKEN_EXPIRED" in line]
    # one revocation row per client, each answered 200 after 1 refresh and 1 resend
    assert len(rows) == len(CLIENTS), result.stdout
    assert all(line.rstrip().endswith("ok") for line in rows), rows
    assert "checks held" in result.stdout


def test_emulate_serves_acme_and_prints_its_credentials(emulator_url: str) -> None:
    import requests

    index = requests.get(emulator_url, timeout=60).text
    assert "/acme/" in index
    token = requests.post(
        f"{emulator_url}/acme/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": KNOWN.client_id,
            "client_secret": KNOWN.client_secret,
        },
        timeout=60,
    )
    assert token.status_code == 200
    assert token.json()["access_token"]


def test_check_acme_against_the_emulator(emulator_url: str) -> None:
    good = cli("check", "acme", "--emulator", emulator_url, env=acme_env(**ACME_CREDENTIALS))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("OK: Acme issued a token"), good.stdout
    bad = cli(
        "check",
        "acme",
        "--emulator",
        emulator_url,
        env=acme_env(ACME_CLIENT_ID=KNOWN.client_id, ACME_CLIENT_SECRET="wrong-secret"),
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "wrong-secret" not in bad.stdout + bad.stderr
    assert "ACME_CLIENT_SECRET" in bad.stderr  # the CLI names the provider's own variables
    missing = cli("check", "acme", "--emulator", emulator_url, env=acme_env())
    assert missing.returncode == 2
    assert "ACME_CLIENT_ID" in missing.stderr


def test_token_acme_against_the_emulator(emulator_url: str) -> None:
    result = cli("token", "acme", "--emulator", emulator_url, env=acme_env(**ACME_CREDENTIALS))
    assert result.returncode == 0, result.stderr
    value = result.stdout.strip()
    assert value
    assert " " not in value
    import requests

    answer = requests.get(
        f"{emulator_url}/acme/v1/things", headers={"Authorization": f"Bearer {value}"}, timeout=60
    )
    assert answer.json() == {"ok": True}


def test_the_pytest_plugin_builds_acme(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in acme_env().items():
        if name in ("PYTHONPATH", "DELIVERY_AUTH_PROVIDERS"):
            monkeypatch.setenv(name, value)
    pytester.makepyfile(
        test_acme_user="""
import requests


def test_acme(delivery_emulator):
    auth = delivery_emulator.auth("acme")
    url = delivery_emulator.url("acme", "/v1/things")
    assert requests.get(url, auth=auth).json() == {"ok": True}
    delivery_emulator.revoke_all()
    response = requests.get(url, auth=auth)
    assert (response.status_code, [r.status_code for r in response.history]) == (200, [403])
    assert delivery_emulator.stats.token_requests["acme"] == 2
"""
    )
    # a process of its own: the installed plugin (pytest11 entry point) and a fresh registry
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
