"""The ``delivery-auth`` command, run as a real subprocess against the emulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest
import requests

from delivery_auth import cli
from delivery_auth.emulator import CREDENTIALS, Emulator

PROVIDER_VARS = (
    "DELIVERY_TRACKER_CLIENT_ID",
    "DELIVERY_TRACKER_CLIENT_SECRET",
    "DELIVERY_TRACKER_METHOD",
    "BRINGG_CLIENT_ID",
    "BRINGG_CLIENT_SECRET",
    "BRINGG_REGION",
    "BRINGG_TTL",
    "DHL_ECOMMERCE_CLIENT_ID",
    "DHL_ECOMMERCE_CLIENT_SECRET",
    "DHL_ECOMMERCE_ENVIRONMENT",
    "YANDEX_COURIER_TOKEN",
    "YANDEX_REFRESH_TOKEN",
    "YANDEX_CLIENT_ID",
    "YANDEX_CLIENT_SECRET",
)
SECRETS = [known.client_secret for known in CREDENTIALS.values()] + [
    CREDENTIALS["yandex"].refresh_token
]
USER_SECRET = "user-secret-Zq8-never-print"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARS}
    env.update(extra)
    return env


def creds(provider: str, **changes: str) -> dict[str, str]:
    """The emulator's test credentials as environment variables, with ``changes``."""
    return {**Emulator().env(provider), **changes}  # env() needs no running emulator


#: A clean environment with every provider's test credentials ('delivery-auth emulate'
#: prints them); --emulator supplies only the endpoints.
ENV_CREDENTIALS = {name: value for p in CREDENTIALS for name, value in creds(p).items()}
ENV = clean_env(**ENV_CREDENTIALS)


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
    """One CLI run in a process of its own; ``timeout`` only ends a hang (never a verdict)."""
    result = subprocess.run(
        [sys.executable, "-m", "delivery_auth.cli", *args],
        capture_output=True,
        text=True,
        env=clean_env() if env is None else env,
        timeout=timeout,
    )
    return result


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in [*SECRETS, USER_SECRET]:
            assert secret not in text


@pytest.fixture(scope="module")
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.mark.parametrize(
    "command",
    [[], ["demo"], ["emulate"], ["token"], ["check"], ["yandex"], ["yandex", "login"]],
)
def test_every_command_has_help_with_examples(command):
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout


@pytest.mark.timeout(900)
def test_demo_exits_0_and_names_every_provider_and_client():
    result = run("demo", timeout=600)  # a hang bound: about 11 s idle, 26 s under busy.py 4
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("Delivery Tracker", "Bringg", "DHL eCommerce", "Yandex Courier"):
        assert name in result.stdout
    for client in ("requests", "httpx", "httpx async"):
        assert f"  {client}  " in result.stdout
    assert "UNAUTHENTICATED at HTTP 200" in result.stdout
    assert "64 concurrent callers" in result.stdout
    assert "test double" in result.stdout
    assert "checks held" in result.stdout
    assert "FAIL" not in result.stdout
    assert_no_secret(result.stdout, result.stderr)


def test_demo_validates_names():
    result = run("demo", "--provider", "dhll")
    assert result.returncode == 2
    assert "Did you mean 'dhl'?" in result.stderr
    assert run("demo", "--client", "urllib").returncode == 2


def test_token_prints_a_live_token_and_nothing_secret(emu):
    env = clean_env(**emu.env("dhl"))
    result = run("token", "dhl", "--token-url", emu.token_url("dhl"), env=env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert emu.state.check_token("dhl", token) == "ok"
    assert "lifetime 3600 s" in result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_token_json(emu):
    result = run("token", "bringg", "--json", "--emulator", emu.base_url, "-o", "ttl=600", env=ENV)
    payload = json.loads(result.stdout)
    assert payload["provider"] == "bringg"
    assert payload["expires_in"] == 600
    assert isinstance(payload["created_at"], int)
    assert emu.state.check_token("bringg", payload["access_token"]) == "ok"


def test_token_tracker_uses_oauth2_and_refuses_api_key_mode(emu):
    result = run("token", "tracker", "--emulator", emu.base_url, env=ENV)
    assert emu.state.check_token("tracker", result.stdout.strip()) == "ok"
    refused = run("token", "tracker", "--emulator", emu.base_url, "-o", "method=api_key", env=ENV)
    assert refused.returncode == 2
    assert "API-key mode" in refused.stderr
    assert refused.stdout == ""


def test_token_yandex_renews_with_the_refresh_token(emu):
    result = run("token", "yandex", "--emulator", emu.base_url, env=ENV)
    assert result.returncode == 0, result.stderr
    assert emu.state.check_token("yandex", result.stdout.strip()) == "ok"
    missing = run("token", "yandex", env=clean_env(YANDEX_COURIER_TOKEN="x"))
    assert missing.returncode == 2
    assert "YANDEX_REFRESH_TOKEN" in missing.stderr


@pytest.mark.parametrize(
    ("provider", "variables"),
    [
        ("dhl", "DHL_ECOMMERCE_CLIENT_ID, DHL_ECOMMERCE_CLIENT_SECRET"),
        ("bringg", "BRINGG_CLIENT_SECRET"),
        ("yandex", "YANDEX_COURIER_TOKEN"),
    ],
)
def test_missing_variables_exit_2_naming_them(provider, variables):
    env = clean_env(BRINGG_CLIENT_ID="someone")
    result = run("check", provider, env=env)
    assert result.returncode == 2
    assert variables in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("provider", ["tracker", "bringg", "dhl", "yandex"])
def test_check_ok_against_the_emulator(emu, provider):
    result = run("check", provider, "--emulator", emu.base_url, env=ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")
    assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize(
    ("provider", "env", "reason"),
    [
        ("dhl", {"DHL_ECOMMERCE_CLIENT_ID": "emu-dhl-client"}, "Invalid credentials"),
        ("bringg", {"BRINGG_CLIENT_ID": "emu-bringg-client"}, "rejected the client credentials"),
        ("tracker", {"DELIVERY_TRACKER_CLIENT_ID": "emu-tracker-client"}, "UNAUTHENTICATED"),
    ],
)
def test_check_reports_rejected_credentials_without_the_secret(emu, provider, env, reason):
    secret_var = next(iter(env)).replace("_ID", "_SECRET")
    environment = clean_env(**env, **{secret_var: USER_SECRET})
    result = run("check", provider, "--emulator", emu.base_url, env=environment)
    assert result.returncode == 1
    assert reason in result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_check_yandex_revoked_token(emu):
    token = emu.issue_token("yandex")
    emu.revoke(token)
    api = emu.url("yandex", "")
    result = run("check", "yandex", "--api-url", api, env=clean_env(YANDEX_COURIER_TOKEN=token))
    assert result.returncode == 1
    assert "rejected the token" in result.stderr
    assert token not in result.stdout + result.stderr


def test_network_failure_is_one_line_and_debug_shows_the_traceback(closed_port):
    url = f"http://127.0.0.1:{closed_port}"
    env = clean_env(DHL_ECOMMERCE_CLIENT_ID="a", DHL_ECOMMERCE_CLIENT_SECRET=USER_SECRET)
    result = run("check", "dhl", "--emulator", url, "-o", "timeout=2", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "Could not reach" in result.stderr
    debug = run("check", "dhl", "--emulator", url, "--debug", env=env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert_no_secret(result.stderr, debug.stderr)


def test_option_names_are_validated(emu):
    result = run("check", "bringg", "--emulator", emu.base_url, "-o", "regoin=eu2")
    assert result.returncode == 2
    assert "Did you mean 'region'?" in result.stderr
    bad_value = run("check", "bringg", "--emulator", emu.base_url, "-o", "region=mars", env=ENV)
    assert bad_value.returncode == 2
    assert "valid regions" in bad_value.stderr
    assert run("check", "dhl", "-o", "novalue").returncode == 2
    assert run("check", "dhl", "--api-url", "http://127.0.0.1:1").returncode == 2
    assert "Did you mean 'yandex'?" in run("check", "yandx").stderr


#: ``python -m delivery_auth.cli`` with Ctrl-C as a terminal delivers it: a test run that a
#: non-interactive shell started in the background ignores SIGINT, and a child inherits that
#: (Python then installs no KeyboardInterrupt handler), so the child restores it first.
AS_IN_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'delivery-auth'; runpy.run_module('delivery_auth.cli', run_name='__main__')"
)


def test_emulate_serves_until_interrupted_and_prints_working_credentials():
    proc = subprocess.Popen(
        [sys.executable, "-c", AS_IN_A_TERMINAL, "emulate", "--token-ttl", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("delivery-auth emulator on http://127.0.0.1:")
        base = first.split(" on ")[1].strip()
        assert "TEST DOUBLE" in proc.stdout.readline()
        banner = []
        while not banner or "Press Ctrl-C" not in banner[-1]:
            banner.append(proc.stdout.readline())
        exported = {}
        for line in banner:
            if line.strip().startswith("export "):
                exported.update(pair.split("=", 1) for pair in line.split()[1:])
        assert exported == ENV_CREDENTIALS
        for provider in CREDENTIALS:  # what it printed is what check needs
            checked = run("check", provider, "--emulator", base, env=clean_env(**exported))
            assert checked.returncode == 0, checked.stderr
        known = CREDENTIALS["dhl"]
        response = requests.post(
            f"{base}/dhl/auth/v4/accesstoken",
            data={
                "grant_type": "client_credentials",
                "client_id": known.client_id,
                "client_secret": known.client_secret,
            },
            timeout=60,
        )
        assert response.json()["expires_in"] == 30
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=600)  # a bound for a hang only
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "emulator stopped" in out
    assert "Traceback" not in err


def test_without_werkzeug_the_demo_says_what_to_install():
    code = (
        "import sys; sys.modules['werkzeug'] = None; "
        "from delivery_auth.cli import main; sys.exit(main(['demo']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60
    )
    assert result.returncode == 2
    assert "pip install 'delivery-auth[emulator]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_emulate_refuses_non_loopback_hosts():
    result = run("emulate", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "--i-know-this-is-a-test-double" in result.stderr


def test_yandex_login_writes_a_private_file_and_prints_no_token(emu, tmp_path):
    emu.configure_device_flow(pending_polls=1, interval=1)
    target = tmp_path / "y.env"
    result = run("yandex", "login", "--emulator", emu.base_url, "-O", str(target), env=ENV)
    assert result.returncode == 0, result.stderr
    assert "enter the code" in result.stderr
    assert "left" in result.stderr  # the countdown
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in target.read_text().splitlines())
    assert emu.state.check_token("yandex", values["YANDEX_COURIER_TOKEN"]) == "ok"
    for value in values.values():
        if value != CREDENTIALS["yandex"].client_id:
            assert value not in result.stdout + result.stderr
    again = run("yandex", "login", "--emulator", emu.base_url, "-O", str(target), env=ENV)
    assert again.returncode == 2
    assert "--force" in again.stderr


def test_yandex_login_denied_and_missing_secret(emu, tmp_path):
    emu.configure_device_flow(pending_polls=0, outcome="deny")
    try:
        denied = run(
            "yandex", "login", "--emulator", emu.base_url, "-O", str(tmp_path / "y.env"), env=ENV
        )
    finally:
        emu.configure_device_flow(outcome="approve")
    assert denied.returncode == 1
    assert "denied" in denied.stderr
    assert not (tmp_path / "y.env").exists()
    missing = run("yandex", "login", "--client-id", "abc")
    assert missing.returncode == 2
    assert "YANDEX_CLIENT_SECRET" in missing.stderr


# In-process runs of main(): the same code paths, measured by coverage.


def test_main_in_process(emu, capsys, monkeypatch):
    for name in PROVIDER_VARS:
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["check", "bringg"]) == 2
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["check", "dhl", "--emulator", emu.base_url]) == 0
    assert cli.main(["token", "tracker", "--emulator", emu.base_url, "--json"]) == 0
    assert cli.main(["check", "tracker", "--emulator", emu.base_url, "-o", "method=oauth2"]) == 0
    assert cli.main(["check", "yandex", "--emulator", emu.base_url]) == 0
    assert cli.main(["token", "yandex", "--emulator", emu.base_url]) == 0
    out, err = capsys.readouterr()
    assert out.count("OK:") == 3
    assert "BRINGG_CLIENT_ID" in err
    assert_no_secret(err)


def test_demo_in_process(capsys):
    assert cli.main(["demo", "--provider", "tracker", "--provider", "yandex"]) == 0
    out = capsys.readouterr().out
    assert "Delivery Tracker" in out
    assert "Yandex Courier" in out
    assert "Bringg" not in out


def test_yandex_login_in_process(emu, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("YANDEX_CLIENT_ID", CREDENTIALS["yandex"].client_id)
    monkeypatch.setenv("YANDEX_CLIENT_SECRET", CREDENTIALS["yandex"].client_secret)
    emu.configure_device_flow(pending_polls=1, interval=1)
    target = tmp_path / "y.env"
    assert cli.main(["yandex", "login", "--emulator", emu.base_url, "-O", str(target)]) == 0
    assert "YANDEX_REFRESH_TOKEN=" in target.read_text()
    err = capsys.readouterr().err
    assert "waiting for confirmation" in err
    assert cli.main(["yandex", "login", "--emulator", emu.base_url, "-O", str(target)]) == 2


def test_check_failures_in_process(emu, closed_port, capsys, monkeypatch):
    monkeypatch.setenv("DELIVERY_TRACKER_CLIENT_ID", "emu-tracker-client")
    monkeypatch.setenv("DELIVERY_TRACKER_CLIENT_SECRET", USER_SECRET)
    assert cli.main(["check", "tracker", "--emulator", emu.base_url]) == 1
    dead = f"http://127.0.0.1:{closed_port}/graphql"
    assert cli.main(["check", "tracker", "--api-url", dead]) == 1
    assert cli.main(["check", "tracker", "--api-url", emu.url("tracker", "/nope")]) == 1
    err = capsys.readouterr().err
    assert "2024-05-13" in err
    assert "could not reach" in err
    assert "HTTP 404" in err
    assert_no_secret(err)


def test_emulate_in_process_stops_on_sigterm(capsys, closed_port):
    import threading
    import time

    def stop_when_up():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", closed_port), timeout=1).close()
            except OSError:
                time.sleep(0.05)  # waiting for another thread's server to listen
            else:  # listening, so main() has installed its SIGTERM handler
                os.kill(os.getpid(), signal.SIGTERM)
                return

    helper = threading.Thread(target=stop_when_up)
    helper.start()
    assert cli.main(["emulate", "--port", str(closed_port)]) == 0
    helper.join()
    assert "emulator stopped" in capsys.readouterr().out


@pytest.mark.parametrize(
    "body",
    [
        {"data": None, "errors": [{"message": "x", "extensions": ["UNAUTHENTICATED"]}]},
        {"data": None, "errors": [{"extensions": None}, "text", 3]},
        {"data": None, "errors": 7},
        {"data": None, "errors": {"extensions": {"code": "UNAUTHENTICATED"}}},
        [1, 2],
    ],
)
def test_check_tracker_survives_odd_graphql_answers(body, capsys, monkeypatch):
    from delivery_auth.emulator.app import json_response

    monkeypatch.setenv("DELIVERY_TRACKER_CLIENT_ID", "someone")
    monkeypatch.setenv("DELIVERY_TRACKER_CLIENT_SECRET", USER_SECRET)
    with Emulator() as odd:
        odd.app.handlers["tracker"] = lambda request, state, path: json_response(body)
        assert cli.main(["check", "tracker", "--api-url", odd.url("tracker", "/graphql")]) == 1
    err = capsys.readouterr().err
    assert "did not answer AuthTestQuery" in err
    assert "unexpected" not in err


# -- --emulator supplies endpoints, never credentials (issue 10, F.21) -------------------


@pytest.mark.parametrize(
    ("command", "env", "code", "says"),
    [
        (["check", "yandex"], {"YANDEX_COURIER_TOKEN": "not-a-token"}, 1, "rejected the token"),
        (["check", "dhl"], {}, 2, "DHL_ECOMMERCE_CLIENT_ID, DHL_ECOMMERCE_CLIENT_SECRET"),
        (["check", "bringg"], {"BRINGG_CLIENT_ID": "emu-bringg-client"}, 2, "BRINGG_CLIENT_SECRET"),
        (
            ["check", "tracker", "-o", "method=oauth2"],
            {"DELIVERY_TRACKER_CLIENT_SECRET": USER_SECRET},
            2,
            "DELIVERY_TRACKER_CLIENT_ID",
        ),
        (["token", "yandex"], {"YANDEX_COURIER_TOKEN": "not-a-token"}, 2, "YANDEX_REFRESH_TOKEN"),
        (["yandex", "login"], {}, 2, "YANDEX_CLIENT_ID"),
    ],
    ids=["check-yandex-bad-token", "check-dhl", "check-bringg", "check-tracker", "token", "login"],
)
def test_emulator_never_fills_in_credentials(emu, tmp_path, command, env, code, says):
    output = ["-O", str(tmp_path / "y.env")] if command[0] == "yandex" else []
    issued = emu.stats.tokens_issued.total
    result = run(*command, "--emulator", emu.base_url, *output, env=clean_env(**env))
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stdout == ""
    assert says in result.stderr
    assert emu.stats.tokens_issued.total == issued, "no token was issued on the user's behalf"
    assert "enter the code" not in result.stderr
    assert_no_secret(result.stdout, result.stderr)


def test_check_yandex_with_the_emulator_checks_the_token_given(emu):
    token = emu.issue_token("yandex")
    requests_before = emu.stats.token_requests["yandex"]
    result = run(
        "check", "yandex", "--emulator", emu.base_url, env=clean_env(YANDEX_COURIER_TOKEN=token)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")
    assert emu.stats.token_requests["yandex"] == requests_before, "nothing was renewed"


def test_check_yandex_says_when_the_token_given_was_renewed(emu):
    env = clean_env(**creds("yandex", YANDEX_COURIER_TOKEN="not-a-token"))
    result = run("check", "yandex", "--emulator", emu.base_url, env=env)
    assert result.returncode == 0, result.stderr
    assert "YANDEX_COURIER_TOKEN itself was rejected" in result.stdout
    assert_no_secret(result.stdout, result.stderr)


# -- yandex login checks -O before it starts (F.22) ----------------------------------------


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing-dir/y.env", "No such file or directory"),
        ("a-file/y.env", "Not a directory"),
        ("a-dir", "Is a directory"),
    ],
)
def test_yandex_login_checks_the_output_path_before_starting(emu, tmp_path, where, reason):
    (tmp_path / "a-file").write_text("not a directory")
    (tmp_path / "a-dir").mkdir()
    target = tmp_path / where
    env = clean_env(**emu.env("yandex"))
    result = run("yandex", "login", "--emulator", emu.base_url, "-O", str(target), env=env)
    assert result.returncode == 2, result.stderr
    assert "enter the code" not in result.stderr, "it failed before the login began"
    assert f"cannot write {target}" in result.stderr
    assert reason in result.stderr
    assert "network" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def test_yandex_login_force_replaces_a_file_and_makes_it_private(emu, tmp_path):
    target = tmp_path / "y.env"
    target.write_text("OLD=1\n" * 100)
    target.chmod(0o644)
    env = clean_env(**emu.env("yandex"))
    args = ("yandex", "login", "--emulator", emu.base_url, "-O", str(target), "--force")
    result = run(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert "OLD=1" not in target.read_text()
    assert target.read_text().startswith("YANDEX_COURIER_TOKEN=")


# -- one exit-code rule, CLI wording, one line (F.23, F.24) -------------------------------

#: Words of the Python API that a command-line user cannot act on.
API_WORDING = (
    "allow_non_loopback",
    "delivery_auth.",
    "next call",
    "client_id",
    "client_secret",
    "token_url",
    "api_url",
    "oauth_url",
    "allowed_hosts",
    "token_params",
    "device_login",
    "authorize_url",
    "max_retry_after",
    "from_env",
    "refresh_token=",
    'method="oauth2"',
    "(...)",
    "WARNING",
)


# id: (arguments, environment, exit code, what stderr must say, emulator set-up)
BAD_INPUT: dict[str, tuple[list[str], dict[str, str], int, str, str | None]] = {
    # 2: usage or configuration
    "http-token-url": (
        ["check", "dhl", "--token-url", "http://example.com/auth/v4/accesstoken"],
        creds("dhl"),
        2,
        "--token-url",
        None,
    ),
    "http-api-url-tracker": (
        ["check", "tracker", "--api-url", "http://example.com/graphql"],
        creds("tracker"),
        2,
        "--api-url",
        None,
    ),
    "http-api-url-yandex": (
        ["check", "yandex", "--api-url", "http://example.com"],
        creds("yandex"),
        2,
        "--api-url",
        None,
    ),
    "http-oauth-url": (
        ["yandex", "login", "--oauth-url", "http://example.com", "-O", "{tmp}/y.env"],
        creds("yandex"),
        2,
        "--oauth-url",
        None,
    ),
    "http-emulator": (
        ["token", "bringg", "--emulator", "http://example.com"],
        creds("bringg"),
        2,
        "--emulator",
        None,
    ),
    "not-a-url": (
        ["check", "tracker", "--api-url", "graphql"],
        creds("tracker"),
        2,
        "--api-url",
        None,
    ),
    "empty-url": (
        ["check", "dhl", "--token-url", ""],
        creds("dhl"),
        2,
        "--token-url is empty",
        None,
    ),
    "foreign-api-host": (
        ["check", "tracker", "--api-url", "https://example.com/graphql"],
        creds("tracker"),
        2,
        "example.com",
        None,
    ),
    "token-with-scheme": (
        ["check", "yandex", "--emulator", "{emu}"],
        {"YANDEX_COURIER_TOKEN": "OAuth abc"},
        2,
        "YANDEX_COURIER_TOKEN",
        None,
    ),
    "bad-option-value": (
        ["check", "dhl", "--emulator", "{emu}", "-o", "timeout=-1"],
        creds("dhl"),
        2,
        "timeout",
        None,
    ),
    "invalid-variable": (
        ["check", "bringg", "--emulator", "{emu}"],
        creds("bringg", BRINGG_TTL="soon"),
        2,
        "BRINGG_TTL must be a positive whole number",
        None,
    ),
    "emulate-non-loopback": (
        ["emulate", "--host", "0.0.0.0"],
        {},
        2,
        "--i-know-this-is-a-test-double",
        None,
    ),
    "emulate-port-taken": (["emulate", "--port", "{busy}"], {}, 2, "--port", None),
    # 1: the remote side failed
    "dhl-secret-rejected": (
        ["check", "dhl", "--emulator", "{emu}"],
        creds("dhl", DHL_ECOMMERCE_CLIENT_SECRET=USER_SECRET),
        1,
        "DHL_ECOMMERCE_CLIENT_SECRET",
        None,
    ),
    "tracker-secret-rejected": (
        ["check", "tracker", "-o", "method=oauth2", "--emulator", "{emu}"],
        creds("tracker", DELIVERY_TRACKER_CLIENT_SECRET=USER_SECRET),
        1,
        "DELIVERY_TRACKER_CLIENT_SECRET",
        None,
    ),
    "tracker-api-key-rejected": (
        ["check", "tracker", "--emulator", "{emu}"],
        creds("tracker", DELIVERY_TRACKER_CLIENT_SECRET=USER_SECRET),
        1,
        "-o method=oauth2",
        None,
    ),
    "yandex-token-rejected": (
        ["check", "yandex", "--emulator", "{emu}"],
        {"YANDEX_COURIER_TOKEN": "not-a-token"},
        1,
        "delivery-auth yandex login",
        None,
    ),
    "yandex-refresh-token-rejected": (
        ["token", "yandex", "--emulator", "{emu}"],
        creds("yandex", YANDEX_REFRESH_TOKEN="not-a-refresh-token"),
        1,
        "delivery-auth yandex login",
        None,
    ),
    "yandex-client-rejected": (
        ["check", "yandex", "--emulator", "{emu}"],
        creds("yandex", YANDEX_COURIER_TOKEN="not-a-token", YANDEX_CLIENT_SECRET=USER_SECRET),
        1,
        "YANDEX_CLIENT_SECRET",
        None,
    ),
    "unreachable": (
        ["check", "dhl", "--emulator", "{dead}", "-o", "timeout=2"],
        creds("dhl"),
        1,
        "Could not reach",
        None,
    ),
    "rate-limited": (
        ["check", "dhl", "--emulator", "{emu}"],
        creds("dhl"),
        1,
        "answered HTTP 429 3 times",
        "rate_limit:0",
    ),
    "retry-after-too-long": (
        ["check", "bringg", "--emulator", "{emu}"],
        creds("bringg"),
        1,
        "999 s",
        "rate_limit:999",
    ),
    "not-a-token-endpoint": (
        ["check", "dhl", "--token-url", "{emu}/nowhere"],
        creds("dhl"),
        1,
        "--token-url",
        None,
    ),
    "login-denied": (
        ["yandex", "login", "--emulator", "{emu}", "-O", "{tmp}/y.env"],
        creds("yandex"),
        1,
        "delivery-auth yandex login",
        "deny",
    ),
    "login-unknown-client": (
        ["yandex", "login", "--emulator", "{emu}", "--client-id", "nobody", "-O", "{tmp}/y.env"],
        creds("yandex"),
        1,
        "--client-id",
        None,
    ),
}


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exit_code_and_cli_wording(emu, tmp_path, closed_port, busy_port, case):
    arguments, env, code, says, setup = BAD_INPUT[case]
    fill = {
        "emu": emu.base_url,
        "dead": f"http://127.0.0.1:{closed_port}",
        "tmp": str(tmp_path),
        "busy": str(busy_port),
    }
    argv = [argument.format(**fill) for argument in arguments]
    provider = argv[1] if argv[0] in ("check", "token") else "yandex"
    if setup == "deny":
        emu.configure_device_flow(pending_polls=0, outcome="deny")
    elif setup:
        kind, _, retry_after = setup.partition(":")
        emu.inject_fault(provider, kind, times=3, retry_after=float(retry_after))
    try:
        result = run(*argv, env=clean_env(**env))
    finally:
        emu.configure_device_flow(outcome="approve")
        emu.clear_faults()
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    if "enter the code" in result.stderr:  # a login shows its code first, then the error
        lines = lines[-1:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("delivery-auth: error: ")
    assert says in lines[0]
    for words in API_WORDING:
        assert words not in result.stderr, f"{words!r} in: {result.stderr}"
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize("command", [[], ["token"], ["check"], ["yandex", "login"], ["emulate"]])
def test_help_states_the_exit_codes(command):
    result = run(*command, "--help")
    assert "exit codes:" in result.stdout
    assert "2  usage or configuration" in result.stdout
    assert "1  the remote side failed" in result.stdout


def test_bad_input_in_process(emu, tmp_path, closed_port, busy_port, capsys, monkeypatch):
    """The same table through main() in this process (the code paths, for coverage)."""
    fill = {
        "emu": emu.base_url,
        "dead": f"http://127.0.0.1:{closed_port}",
        "tmp": str(tmp_path),
        "busy": str(busy_port),
    }
    for case, (arguments, env, code, says, setup) in BAD_INPUT.items():
        if setup or case == "unreachable":  # faults and back-off: the subprocess test has them
            continue
        with monkeypatch.context() as patch:
            for name in PROVIDER_VARS:
                patch.delenv(name, raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            assert cli.main([a.format(**fill) for a in arguments]) == code, case
        err = capsys.readouterr().err
        assert says in err, case
        assert "WARNING" not in err, case


def test_local_file_errors_are_not_network_failures(capsys):
    from delivery_auth.cli.report import exit_code, report

    missing = FileNotFoundError(2, "No such file or directory", "/missing/y.env")
    report(missing, False, str)
    assert exit_code(missing) == 2
    network = requests.ConnectionError("refused")
    report(network, False, str)
    assert exit_code(network) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "delivery-auth: error: cannot use /missing/y.env: No such file or directory",
        "delivery-auth: error: network failure (ConnectionError); check the URL and the connection",
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        ["check", "tracker", "--api-url", "http://alice:pw-in-url@127.0.0.1:9/graphql"],
        ["check", "dhl", "--token-url", "https://alice:pw-in-url@api.example.com/token"],
        ["yandex", "login", "--oauth-url", "https://alice:pw-in-url@oauth.example.com"],
    ],
    ids=["api-url", "token-url", "oauth-url"],
)
def test_a_password_in_a_url_flag_is_a_usage_error_that_never_shows_it(arguments):
    provider = arguments[1] if arguments[0] == "check" else "yandex"
    result = run(*arguments, env=clean_env(**creds(provider)))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    flag = arguments[2] if arguments[0] == "check" else "--oauth-url"
    assert lines[0].startswith(f"delivery-auth: error: {flag} '"), lines[0]
    assert "contains a user name or password" in lines[0]
    assert "pw-in-url" not in result.stderr + result.stdout
    assert "token_params" not in result.stderr
