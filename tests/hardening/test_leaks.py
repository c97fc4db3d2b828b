"""Secret scans: the CLI's output, cache files, Redis keys and values, and the repr of
every public object never show a client secret, a refresh token or (outside
``delivery-auth token`` and an unencrypted cache's value) an access token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography.fernet import Fernet
from redis_server import RedisServer, redis_server_fixture

import delivery_auth
from delivery_auth import MemoryTokenCache, Token
from delivery_auth.cache.file import FileTokenCache
from delivery_auth.cache.redis import RedisTokenCache
from delivery_auth.emulator import CREDENTIALS
from delivery_auth.emulator._auth import environment
from delivery_auth.providers.spec import registry

from .conftest import MakeAuth, assert_no_secrets
from .harness import (
    CLIENT_CREDENTIALS,
    PROVIDERS,
    RENEWABLE,
    TOKEN_ENDPOINTS,
    Canned,
    Rig,
    call_api,
)

# -- the command line ----------------------------------------------------------------------


def _env() -> dict[str, str]:
    """A clean environment with only the emulator's test credentials (--emulator supplies
    endpoints, never credentials)."""
    keep = ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "SYSTEMROOT", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    for provider in CREDENTIALS:
        env.update(environment(provider))
    return env


def _run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Run the CLI commands at once (each a real process) and collect them, bounded."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "delivery_auth.cli", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for command in commands
    ]
    done = []
    for command, process in zip(commands, processes, strict=True):
        stdout, stderr = process.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return done


def _oauth(provider: str) -> list[str]:
    return ["-o", "method=oauth2"] if provider == "tracker" else []


def test_cli_output_never_shows_a_secret(rig: Rig) -> None:
    base = rig.emu.base_url
    # Every provider succeeds, with --debug (tracebacks and DEBUG log on stderr).
    ok = [["--debug", "check", p, "--emulator", base, *_oauth(p)] for p in PROVIDERS]
    for result in _run_all(ok):
        assert result.returncode == 0, result
        assert result.stdout.startswith("OK")
        assert_no_secrets(rig, [result.stdout, result.stderr])
    # Every token endpoint fails (429 three times; Retry-After: 0 keeps it fast), with and
    # without --debug.
    failing: list[list[str]] = []
    for provider in CLIENT_CREDENTIALS:
        failing.append(["--debug", "check", provider, "--emulator", base, *_oauth(provider)])
        rig.emu.inject_fault(provider, "rate_limit", times=3, retry_after=0)
    failing.append(["check", "dhl", "--emulator", base])
    rig.emu.inject_fault("dhl", "rate_limit", times=3, retry_after=0)
    for result in _run_all(failing):
        assert result.returncode == 1, result
        assert "answered HTTP 429 3 times" in result.stderr
        if "--debug" in result.args:
            assert "Traceback" in result.stderr
        else:
            assert len(result.stderr.strip().splitlines()) == 1, "one clear line"
        assert_no_secrets(rig, [result.stdout, result.stderr])


def test_cli_token_prints_the_token_and_nothing_else_secret(rig: Rig) -> None:
    base = rig.emu.base_url
    # Providers whose requests are signed have no token to print (the command says so).
    printing = [p for p in PROVIDERS if not registry()[p].token.unavailable]
    results = _run_all([["token", p, "--emulator", base, "--json"] for p in printing])
    for provider, result in zip(printing, results, strict=True):
        assert result.returncode == 0, result
        printed = result.stdout
        known = CREDENTIALS[provider]
        if provider not in RENEWABLE:  # a static credential: what it sends is its token
            with rig.emu.auth(provider) as auth:
                assert json.loads(printed)["access_token"] == auth.get_token().access_token
            continue
        if provider in TOKEN_ENDPOINTS:
            assert any(token in printed for token in rig.secrets), "it printed a token"
        else:  # minted in the command's process: the emulator never saw it
            assert json.loads(printed)["access_token"], "it printed a token"
        for secret in (known.client_secret, known.refresh_token, known.token):
            if secret:
                assert secret not in printed + result.stderr


def test_cli_check_tracker_survives_odd_graphql_errors(rig: Rig) -> None:
    odd = {"data": None, "errors": [{"message": "x", "extensions": ["UNAUTHENTICATED"]}]}
    rig.script_api("tracker", Canned(200, odd))
    (result,) = _run_all([["check", "tracker", "--emulator", rig.emu.base_url]])
    assert result.returncode == 1
    assert "unexpected" not in result.stderr
    assert "did not answer AuthTestQuery" in result.stderr


# -- what the shared caches store ------------------------------------------------------------

REFRESH = "rt-hardening-0123456789-refresh"


def _with_refresh_token(rig: Rig, provider: str) -> None:
    """The token endpoint also returns a refresh token (some servers do, even for
    client credentials): it must never be stored in clear."""
    rig.secrets.add(REFRESH)
    rig.script_token(
        provider,
        lambda: Canned(
            200,
            {
                "access_token": rig.valid_token(provider),
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": REFRESH,
            },
        ),
    )


def _stored_file(path: Path) -> list[bytes]:
    return [p.read_bytes() + p.name.encode() for p in path.parent.iterdir()]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()


def _stored_redis(url: str) -> list[bytes]:
    seen = []
    with redis.Redis.from_url(url) as client:
        for key in client.scan_iter(match="*"):
            seen.append(key)
            if client.type(key) == b"string":
                seen.append(client.get(key) or b"")
    return seen


def _check_stored(rig: Rig, provider: str, stored: list[bytes], encrypted: bool) -> None:
    assert stored
    blob = b"\n".join(stored)
    known = CREDENTIALS[provider]
    assert known.client_secret.encode() not in blob
    access = [s for s in rig.secrets if s.startswith("emu-") or s.count(".") == 2]
    tokens_in_clear = [s for s in access if s.encode() in blob]
    if encrypted:
        assert tokens_in_clear == []
    assert REFRESH.encode() not in blob, "the refresh token is stored in clear"


def _cache(kind: str, tmp_path: Path, request: pytest.FixtureRequest, key: bytes | None) -> Any:
    if kind == "file":
        return FileTokenCache(tmp_path / "c" / "tokens.json", encryption_key=key)
    server: RedisServer = request.getfixturevalue("redis_server")
    with redis.Redis.from_url(server.url) as client:
        client.flushall()
    return RedisTokenCache(url=server.url, encryption_key=key)


def _stored(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> list[bytes]:
    if kind == "file":
        return _stored_file(tmp_path / "c" / "tokens.json")
    return _stored_redis(request.getfixturevalue("redis_server").url)


@pytest.mark.parametrize("kind", ["file", "redis"])
@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_encrypted_caches_hold_no_token_in_clear(
    rig: Rig,
    make_auth: MakeAuth,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    provider: str,
    kind: str,
) -> None:
    _with_refresh_token(rig, provider)
    auth = make_auth(provider, cache=_cache(kind, tmp_path, request, Fernet.generate_key()))
    assert call_api("requests", auth, rig, provider).ok
    _check_stored(rig, provider, _stored(kind, tmp_path, request), encrypted=True)


@pytest.mark.parametrize("kind", ["file", "redis"])
@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_unencrypted_caches_hold_only_the_access_token(
    rig: Rig,
    make_auth: MakeAuth,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    provider: str,
    kind: str,
) -> None:
    _with_refresh_token(rig, provider)
    auth = make_auth(provider, cache=_cache(kind, tmp_path, request, None))
    assert call_api("requests", auth, rig, provider).ok
    _check_stored(rig, provider, _stored(kind, tmp_path, request), encrypted=False)


@pytest.mark.parametrize("provider", CLIENT_CREDENTIALS)
def test_unencrypted_caches_never_hold_the_client_secret(
    rig: Rig, make_auth: MakeAuth, tmp_path: Path, request: pytest.FixtureRequest, provider: str
) -> None:
    for kind in ("file", "redis"):
        auth = make_auth(provider, cache=_cache(kind, tmp_path, request, None))
        assert call_api("httpx", auth, rig, provider).ok
        blob = b"\n".join(_stored(kind, tmp_path, request))
        assert CREDENTIALS[provider].client_secret.encode() not in blob
        assert auth.get_token().access_token.encode() in blob  # unencrypted: allowed


def test_redis_password_never_shows(
    rig: Rig, make_auth: MakeAuth, refused_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = "redis-pw-hardening-0000"
    rig.secrets.add(password)
    port = refused_url.split(":")[2].split("/")[0]
    cache = RedisTokenCache(url=f"redis://:{password}@127.0.0.1:{port}/0")
    auth = make_auth("dhl", cache=cache)
    assert call_api("requests", auth, rig, "dhl").ok  # Redis down: per-process fallback
    assert_no_secrets(rig, [repr(cache), str(cache), repr(auth)])


# -- repr of every public object -------------------------------------------------------------


def _public_objects(rig: Rig, make_auth: MakeAuth, tmp_path: Path) -> list[Any]:
    objects: list[Any] = []
    for provider in PROVIDERS:
        auth = make_auth(provider)
        assert call_api("requests", auth, rig, provider).ok
        objects += [auth, auth.get_token(), auth._engine.policy]
        if hasattr(auth, "_fetcher"):
            objects.append(auth._fetcher)
    secret = CREDENTIALS["dhl"].client_secret
    objects.append(delivery_auth.ClientCredentialsAuth(rig.emu.token_url("dhl"), "id", secret))
    objects.append(Token("tok-hardening-repr-000", refresh_token=REFRESH, lifetime=60))
    objects += [MemoryTokenCache(), FileTokenCache(tmp_path / "r.json"), CREDENTIALS["yandex"]]
    objects += [delivery_auth.GraphQLFailureDetector(), delivery_auth.StatusFailureDetector()]
    objects += [delivery_auth.BackoffPolicy(), delivery_auth.RefreshPolicy(), rig.emu]
    objects += [rig.emu.stats, *rig.emu.stats.token_log]
    rig.secrets |= {"tok-hardening-repr-000", REFRESH}
    return objects


def test_repr_and_str_of_public_objects_show_no_secret(
    rig: Rig, make_auth: MakeAuth, tmp_path: Path
) -> None:
    objects = _public_objects(rig, make_auth, tmp_path)
    assert_no_secrets(rig, [repr(o) for o in objects] + [str(o) for o in objects])
    for auth in objects[:1]:
        auth.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_repr_of_an_engine_lease_shows_no_token(
    rig: Rig, make_auth: MakeAuth, provider: str
) -> None:
    auth = make_auth(provider)
    lease = auth._engine.current()
    assert_no_secrets(rig, [repr(lease), str(lease)])
