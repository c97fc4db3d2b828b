"""The ``delivery-auth`` command: demo, emulate, token, check and yandex login.

Exit codes: 0 success; 1 the remote side failed (credentials rejected, endpoint
unreachable or failing); 2 usage or configuration (bad flags, missing or invalid
credential settings, insecure or invalid URLs, an output file that cannot be written).
Errors are one line on stderr, in the command line's own words (flags and variables,
never Python parameters); ``--debug`` adds the traceback and delivery-auth's DEBUG log.
Only ``delivery-auth token`` prints a token; no command prints a secret of yours
(``emulate`` lists the emulator's public test credentials). ``--emulator`` supplies
endpoints only: the credentials checked are always the ones given.

Example::

    $ delivery-auth demo
    $ DHL_ECOMMERCE_CLIENT_ID=... DHL_ECOMMERCE_CLIENT_SECRET=... delivery-auth check dhl
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NoReturn

from ._cli_report import (
    Failure,
    UsageProblem,
    check_url_flags,
    configure_logging,
    exit_code,
    report,
    wording,
)

__all__ = ["main"]

logger = logging.getLogger("delivery_auth")

PROVIDER_NAMES = ("tracker", "bringg", "dhl", "yandex")
TITLES = {
    "tracker": "Delivery Tracker",
    "bringg": "Bringg",
    "dhl": "DHL eCommerce",
    "yandex": "Yandex Courier",
}
#: Constructor options that ``-o`` cannot set (objects, or secrets that belong in env).
_NOT_SETTABLE = frozenset(
    {
        "self",
        "client_id",
        "client_secret",
        "token",
        "refresh_token",
        "cache",
        "backoff",
        "failure_detector",
        "token_params",
        "allowed_hosts",
        "environ",
    }
)
#: The query Delivery Tracker's documentation uses to test credentials.
AUTH_TEST_QUERY = "query AuthTestQuery { carriers(first: 10) { edges { node { id name } } } }"
_EMULATOR_CREDENTIALS = (
    "To try it offline, 'delivery-auth emulate' prints the emulator's test credentials "
    "(--emulator supplies only its endpoints)."
)
_TEST_DOUBLE = (
    "The emulator is a TEST DOUBLE of the carriers' APIs: it accepts only its own public "
    "test credentials. Never point production code at it."
)


# -- helpers ---------------------------------------------------------------------------


def _provider(value: str) -> str:
    name = value.strip().lower()
    if name in PROVIDER_NAMES:
        return name
    close = difflib.get_close_matches(name, PROVIDER_NAMES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown provider {value!r}.{hint} Choose one of: {', '.join(PROVIDER_NAMES)}."
    )


def _settable_options(cls: Any) -> list[str]:
    names: list[str] = []
    classes: list[Any] = [cls]
    signature = inspect.signature(cls.__init__)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        from .client_credentials import ClientCredentialsAuth

        classes.append(ClientCredentialsAuth)
    for klass in classes:
        for parameter in inspect.signature(klass.__init__).parameters.values():
            if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                continue
            if parameter.name not in _NOT_SETTABLE and parameter.name not in names:
                names.append(parameter.name)
    return names


def _convert(value: str) -> object:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _options(provider: str, pairs: Sequence[str]) -> dict[str, object]:
    from .providers import PROVIDERS

    allowed = _settable_options(PROVIDERS[provider])
    options: dict[str, object] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageProblem(f"-o expects NAME=VALUE, got {pair!r} (e.g. -o timeout=5)")
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageProblem(
                f"{TITLES[provider]} has no option {name!r}.{hint} Options: {', '.join(allowed)}."
            )
        options[name] = _convert(value)
    return options


def _emulator_endpoints(provider: str, base: str) -> dict[str, str]:
    from .emulator.server import DEFAULT_RESOURCE_PATHS, TOKEN_PATHS

    base = base.rstrip("/")
    root = f"{base}/{provider}"
    endpoints = {"token_url": root + TOKEN_PATHS[provider]}
    endpoints["api_url"] = root if provider == "yandex" else root + DEFAULT_RESOURCE_PATHS[provider]
    return endpoints


def _build(provider: str, args: argparse.Namespace, **forced: object) -> tuple[Any, str | None]:
    """The provider auth object from the environment, and the API URL to check."""
    from .providers import PROVIDERS, ConfigurationError

    options = _options(provider, args.option or [])
    api_url: str | None = getattr(args, "api_url", None)
    if args.emulator:
        endpoints = _emulator_endpoints(provider, args.emulator)
        options.setdefault("token_url", endpoints["token_url"])
        api_url = api_url or endpoints["api_url"]
    if args.token_url:
        options["token_url"] = args.token_url
    if provider == "yandex" and api_url:
        options.setdefault("api_url", api_url)
    for name, value in forced.items():
        if name in options and options[name] != value:
            raise UsageProblem(f"{TITLES[provider]}: {name}={options[name]!r} is not possible here")
        options[name] = value
    cls: Any = PROVIDERS[provider]
    try:
        auth = cls.from_env(**options)
    except ConfigurationError as exc:
        if not exc.missing:  # set, but invalid (e.g. BRINGG_TTL=soon)
            raise UsageProblem(str(exc)) from None
        raise UsageProblem(
            f"missing environment variable(s) {', '.join(exc.missing)}. Set them (see "
            f"'delivery-auth {args.command} --help'). {_EMULATOR_CREDENTIALS}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise UsageProblem(f"{TITLES[provider]}: {exc}") from None
    return auth, api_url


# -- commands --------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import CLIENTS, run_demo

    providers = args.provider or list(PROVIDER_NAMES)
    clients = args.client or list(CLIENTS)
    ok = run_demo(sys.stdout, providers=providers, clients=clients)
    sys.stdout.flush()
    return 0 if ok else 1


def _cmd_emulate(args: argparse.Namespace) -> int:
    from .emulator import Emulator, NonLoopbackHostError
    from .emulator._auth import environment
    from .emulator.server import DEFAULT_RESOURCE_PATHS, TOKEN_PATHS

    try:
        emu = Emulator(
            host=args.host,
            port=args.port,
            token_ttl=args.token_ttl,
            clock_offset=args.clock_offset,
            allow_non_loopback=args.i_know_this_is_a_test_double,
        )
    except NonLoopbackHostError:
        raise UsageProblem(
            f"the emulator is a test double and listens only on loopback; {args.host!r} is not "
            "a loopback address. Use --host 127.0.0.1, or add --i-know-this-is-a-test-double "
            "if you really mean to expose it."
        ) from None
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            emu.start()
        except OSError as exc:
            raise UsageProblem(f"{exc.strerror}; choose another --port (0: a free one)") from None
        print(f"delivery-auth emulator on {emu.base_url}", flush=True)
        print(_TEST_DOUBLE)
        print(f"Token lifetime {args.token_ttl:g} s, clock offset {args.clock_offset:g} s.\n")
        width = max(len(TITLES[p]) for p in PROVIDER_NAMES)
        for provider in PROVIDER_NAMES:
            print(
                f"  {TITLES[provider]:<{width}}  token {emu.url(provider, TOKEN_PATHS[provider])}"
                f"\n  {'':<{width}}  api   {emu.url(provider, DEFAULT_RESOURCE_PATHS[provider])}"
            )
        print("\nIts public test credentials (accepted only by the emulator), for your shell:")
        for provider in PROVIDER_NAMES:
            pairs = environment(provider).items()
            print("  export " + " ".join(f"{name}={value}" for name, value in pairs))
        print(
            f"\nTry: delivery-auth check dhl --emulator {emu.base_url}\nPress Ctrl-C to stop.",
            flush=True,
        )
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        emu.stop()
        signal.signal(signal.SIGTERM, previous)
    print("emulator stopped", flush=True)
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    provider = args.provider
    if provider == "yandex":
        token = _yandex_refresh(args)
    else:
        forced: dict[str, object] = {"method": "oauth2"} if provider == "tracker" else {}
        if provider == "tracker" and "method=api_key" in (args.option or []):
            raise UsageProblem(
                "Delivery Tracker's API-key mode has no token to fetch; use -o method=oauth2"
            )
        auth, _ = _build(provider, args, **forced)
        with auth:
            token = auth.get_token()
    if args.json:
        payload: dict[str, object] = {
            "provider": provider,
            "access_token": token.access_token,
            "token_type": token.token_type,
            "expires_in": token.lifetime,
        }
        payload.update({k: v for k, v in token.extra.items() if k in ("created_at", "client_id")})
        print(json.dumps(payload, indent=2))
    else:
        print(token.access_token)
        lifetime = "unknown" if token.lifetime is None else f"{token.lifetime:.0f} s"
        print(
            f"({TITLES[provider]} {token.token_type} token, lifetime {lifetime})", file=sys.stderr
        )
    return 0


def _yandex_refresh(args: argparse.Namespace) -> Any:
    from .errors import InvalidClientError, TokenRequestError
    from .fetch import TokenFetcher
    from .providers import ConfigurationError, read_env
    from .providers.yandex import TOKEN_URL

    names = ("YANDEX_REFRESH_TOKEN", "YANDEX_CLIENT_ID", "YANDEX_CLIENT_SECRET")
    try:
        values = read_env("delivery-auth token yandex", names)
    except ConfigurationError as exc:
        raise UsageProblem(
            f"missing environment variable(s) {', '.join(exc.missing)}. A Yandex Courier "
            "token is not fetched but renewed with a refresh token; get both with "
            f"'delivery-auth yandex login'. {_EMULATOR_CREDENTIALS}"
        ) from None
    token_url = args.token_url or (
        _emulator_endpoints("yandex", args.emulator)["token_url"] if args.emulator else TOKEN_URL
    )
    if args.option:
        raise UsageProblem("'token yandex' takes no -o options; use --token-url")
    fetcher = TokenFetcher(token_url, values["YANDEX_CLIENT_ID"], values["YANDEX_CLIENT_SECRET"])
    try:
        return fetcher.fetch(grant_type="refresh_token", refresh_token=values[names[0]])
    except TokenRequestError as exc:
        if exc.error != "invalid_grant" or isinstance(exc, InvalidClientError):
            raise
        raise Failure(
            "Yandex ID refused YANDEX_REFRESH_TOKEN (invalid_grant): it was revoked or has "
            "expired. Get a new one with 'delivery-auth yandex login'."
        ) from None
    finally:
        fetcher.close()


def _cmd_check(args: argparse.Namespace) -> int:
    provider = args.provider
    if args.api_url and provider in ("bringg", "dhl"):
        raise UsageProblem(
            f"--api-url is for tracker and yandex; {provider} is checked with a token request"
        )
    auth, api_url = _build(provider, args)
    with auth:
        if provider == "yandex":
            auth.verify()
            given = os.environ["YANDEX_COURIER_TOKEN"].strip()
            how = (
                ""
                if auth.get_token().access_token == given
                else ", renewed with YANDEX_REFRESH_TOKEN: YANDEX_COURIER_TOKEN itself was rejected"
            )
            print(f"OK: {TITLES[provider]} accepted the token{how} ({auth.test_url} answered OK).")
            return 0
        if provider == "tracker":
            return _check_tracker(auth, api_url or auth.GRAPHQL_URL)
        token = auth.get_token()
        lifetime = "unknown" if token.lifetime is None else f"{token.lifetime:.0f} s"
        print(f"OK: {TITLES[provider]} issued a token (lifetime {lifetime}) at {auth.token_url}.")
    return 0


def _graphql_codes(errors: object) -> list[str]:
    """The ``extensions.code`` strings of a GraphQL ``errors`` member, whatever its shape."""
    if not isinstance(errors, list):
        return []
    codes = []
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if isinstance(code, str):
            codes.append(code)
    return codes


def _check_tracker(auth: Any, url: str) -> int:
    import requests

    try:
        response = requests.post(url, json={"query": AUTH_TEST_QUERY}, auth=auth, timeout=15)
    except requests.RequestException as exc:
        raise Failure(
            f"could not reach {url} ({type(exc).__name__}); check the network and --api-url"
        ) from None
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, or absurdly nested
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    data = body.get("data") if isinstance(body, dict) else None
    if response.status_code == 200 and not errors and isinstance(data, dict):
        print(f"OK: Delivery Tracker answered AuthTestQuery ({auth.method} mode, {url}).")
        return 0
    codes = _graphql_codes(errors)
    if "UNAUTHENTICATED" in codes:
        hint = (
            " Client IDs registered before 2024-05-13 work only with -o method=oauth2."
            if auth.method == "api_key"
            else ""
        )
        raise Failure(f"Delivery Tracker rejected the credentials (UNAUTHENTICATED).{hint}")
    what = ", ".join(codes) if codes else f"HTTP {response.status_code}"
    raise Failure(f"Delivery Tracker did not answer AuthTestQuery ({what}) at {url}")


def _countdown(expires_in: float, started: float, interactive: bool) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            left = max(0, int(expires_in - (now - started)))
            text = f"waiting for confirmation... {left // 60}:{left % 60:02d} left"
            if interactive:
                print(f"\r{text} ", end="", file=sys.stderr, flush=True)
            if now >= end:
                break
            time.sleep(min(1.0, end - now))
        if not interactive:
            print(text, file=sys.stderr, flush=True)

    return sleep


def _open_output(path: str, force: bool) -> tuple[int, bool]:
    """Open ``-O FILE`` (mode 600) before the login starts, so that a path that cannot be
    written fails at once, not after the user confirmed. Returns (descriptor, created)."""
    existed = os.path.lexists(path)
    if existed and not force and not os.path.isdir(path):
        raise UsageProblem(f"{path} exists; pass --force to overwrite it or -O another file")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if existed else os.O_EXCL), 0o600)
    except OSError as exc:
        raise UsageProblem(
            f"cannot write {path}: {exc.strerror}. Pass -O a file in a directory you can write to."
        ) from None
    try:
        os.fchmod(fd, 0o600)
    except OSError as exc:
        os.close(fd)
        raise UsageProblem(f"cannot write {path}: {exc.strerror} (making it mode 600)") from None
    return fd, not existed


def _cmd_yandex_login(args: argparse.Namespace) -> int:
    from .yandex import OAUTH_URL, DeviceCode, device_login

    client_id = args.client_id or os.environ.get("YANDEX_CLIENT_ID", "").strip()
    secret = args.client_secret or os.environ.get("YANDEX_CLIENT_SECRET", "").strip()
    emulator = f"{args.emulator.rstrip('/')}/yandex" if args.emulator else OAUTH_URL
    missing = [
        name
        for name, value in (("YANDEX_CLIENT_ID", client_id), ("YANDEX_CLIENT_SECRET", secret))
        if not value
    ]
    if missing:
        raise UsageProblem(
            f"missing {', '.join(missing)}: set the environment variable(s) or pass "
            f"--client-id / --client-secret. {_EMULATOR_CREDENTIALS}"
        )
    fd, created = _open_output(args.output, args.force)
    interactive = sys.stderr.isatty()
    started = [time.monotonic(), 300.0]

    def show(code: DeviceCode) -> None:
        started[0], started[1] = time.monotonic(), float(code.expires_in)
        print(
            f"Open {code.verification_url}\nand enter the code:  {code.user_code}\n"
            f"(it expires in {code.expires_in // 60}:{code.expires_in % 60:02d})",
            file=sys.stderr,
            flush=True,
        )

    def sleep(seconds: float) -> None:
        _countdown(started[1], started[0], interactive)(seconds)

    with os.fdopen(fd, "w") as handle:
        try:
            token = device_login(
                client_id, secret, on_code=show, oauth_url=args.oauth_url or emulator, sleep=sleep
            )
        except BaseException:
            if created:  # leave nothing behind but what was there
                os.unlink(args.output)
            raise
        if interactive:
            print(file=sys.stderr)
        lines = [f"YANDEX_COURIER_TOKEN={token.access_token}", f"YANDEX_CLIENT_ID={client_id}"]
        if token.refresh_token:
            lines.insert(1, f"YANDEX_REFRESH_TOKEN={token.refresh_token}")
        handle.truncate(0)
        handle.write("\n".join(lines) + "\n")
    print(
        f"Signed in. The token{' and refresh token' if token.refresh_token else ''} are in "
        f"{args.output} (readable only by you).\nLoad them with:  set -a; . {args.output}; "
        "set +a   (and set YANDEX_CLIENT_SECRET yourself)"
    )
    return 0


# -- parser ----------------------------------------------------------------------------

_EXIT_CODES = """
exit codes:
  0  OK
  1  the remote side failed: credentials rejected, endpoint unreachable or failing
  2  usage or configuration: bad flags, missing or invalid credential settings,
     insecure or invalid URLs, an output file that cannot be written
"""

_EPILOG = (
    """\
examples:
  delivery-auth demo                      all providers x all clients, in seconds
  delivery-auth emulate --port 8080       run the emulator (a test double) for your tests
  delivery-auth token dhl --json          fetch a token (the only command that prints one)
  delivery-auth check tracker             verify credentials end to end
  delivery-auth yandex login              get a Yandex Courier token (device code)

Run 'delivery-auth COMMAND --help' for a command's options and environment variables.
"""
    + _EXIT_CODES
)

_ENV_HELP = """\
environment variables (what each provider reads):
  tracker  DELIVERY_TRACKER_CLIENT_ID, DELIVERY_TRACKER_CLIENT_SECRET [, DELIVERY_TRACKER_METHOD]
  bringg   BRINGG_CLIENT_ID, BRINGG_CLIENT_SECRET [, BRINGG_REGION, BRINGG_TTL]
  dhl      DHL_ECOMMERCE_CLIENT_ID, DHL_ECOMMERCE_CLIENT_SECRET [, DHL_ECOMMERCE_ENVIRONMENT]
  yandex   YANDEX_COURIER_TOKEN [, YANDEX_REFRESH_TOKEN, YANDEX_CLIENT_ID, YANDEX_CLIENT_SECRET]
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"delivery-auth: error: {message}\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_endpoint_options(parser: argparse.ArgumentParser, *, api_url: bool) -> None:
    parser.add_argument(
        "--emulator",
        metavar="URL",
        help="use the endpoints of a running 'delivery-auth emulate' at URL (credentials "
        "still come from the environment; 'emulate' prints its test credentials)",
    )
    parser.add_argument("--token-url", metavar="URL", help="override the token endpoint")
    if api_url:
        parser.add_argument(
            "--api-url",
            metavar="URL",
            help="tracker: the GraphQL URL; yandex: the API base URL",
        )
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="NAME=VALUE",
        help="a provider option, e.g. -o region=eu2, -o environment=sandbox, -o timeout=5 "
        "(repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``delivery-auth``."""
    from . import __version__

    debug = _Parser(add_help=False)
    debug.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and delivery-auth's DEBUG log (never secrets)",
    )
    parser = _Parser(
        prog="delivery-auth",
        description="One auth= object for delivery APIs: try it, test with it, check "
        "credentials. With no command, runs the demo.",
        epilog=_EPILOG,
        formatter_class=_formatter,
    )
    parser.add_argument("--version", action="version", version=f"delivery-auth {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False,
        help="show tracebacks and delivery-auth's DEBUG log (never secrets)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    demo = commands.add_parser(
        "demo",
        parents=[debug],
        formatter_class=_formatter,
        help="drive all providers through requests, httpx and httpx async (default)",
        description="Start the built-in emulator (a local test double) and check, for every "
        "provider and client: first fetch, cached reuse, refresh ahead of expiry, "
        "server-side revocation -> one retry, Delivery Tracker's UNAUTHENTICATED at "
        "HTTP 200 -> one retry, 64 concurrent callers -> one token request. Exits 0 "
        "only if every check held.",
        epilog="examples:\n  delivery-auth demo\n  delivery-auth demo --provider dhl "
        "--client 'httpx async'\n",
    )
    demo.add_argument(
        "--provider",
        action="append",
        type=_provider,
        metavar="PROVIDER",
        help="only this provider (repeatable)",
    )
    demo.add_argument(
        "--client",
        action="append",
        choices=("requests", "httpx", "httpx async"),
        help="only this client (repeatable)",
    )
    demo.set_defaults(handler=_cmd_demo)

    emulate = commands.add_parser(
        "emulate",
        parents=[debug],
        formatter_class=_formatter,
        help="run the provider emulator (a test double) in the foreground",
        description=f"Serve the emulator until Ctrl-C. {_TEST_DOUBLE}",
        epilog="examples:\n  delivery-auth emulate\n  delivery-auth emulate --port 8080 "
        "--token-ttl 30\n  delivery-auth check dhl --emulator http://127.0.0.1:8080\n"
        + _EXIT_CODES,
    )
    emulate.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    emulate.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    emulate.add_argument(
        "--token-ttl",
        type=float,
        default=3600.0,
        metavar="S",
        help="lifetime of issued tokens in seconds (default 3600)",
    )
    emulate.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        metavar="S",
        help="shift of the emulator's clock (Bringg created_at)",
    )
    emulate.add_argument(
        "--i-know-this-is-a-test-double", action="store_true", help="allow a non-loopback --host"
    )
    emulate.set_defaults(handler=_cmd_emulate)

    token = commands.add_parser(
        "token",
        parents=[debug],
        formatter_class=_formatter,
        help="fetch a token with credentials from the environment and print it",
        description="Fetch a token and print it on stdout: the only command that prints "
        "a token. Delivery Tracker uses OAuth2 here; Yandex renews with the refresh token.",
        epilog=_ENV_HELP + "\nexamples:\n  delivery-auth token dhl\n  delivery-auth token "
        "bringg --json -o region=eu2\n  TOKEN=$(delivery-auth token tracker)\n" + _EXIT_CODES,
    )
    token.add_argument(
        "provider", type=_provider, metavar="PROVIDER", help="tracker, bringg, dhl or yandex"
    )
    token.add_argument("--json", action="store_true", help="print JSON with the lifetime")
    _add_endpoint_options(token, api_url=False)
    token.set_defaults(handler=_cmd_token)

    check = commands.add_parser(
        "check",
        parents=[debug],
        formatter_class=_formatter,
        help="verify credentials end to end (prints OK or the reason)",
        description="tracker: the AuthTestQuery on the GraphQL API; yandex: GET "
        "/api/v1/test; bringg, dhl: a token request. Exit 0 if OK (exit codes below).",
        epilog=_ENV_HELP + "\nexamples:\n  delivery-auth check yandex\n  delivery-auth check "
        "tracker -o method=oauth2\n  delivery-auth check dhl -o environment=sandbox\n"
        + _EXIT_CODES,
    )
    check.add_argument(
        "provider", type=_provider, metavar="PROVIDER", help="tracker, bringg, dhl or yandex"
    )
    _add_endpoint_options(check, api_url=True)
    check.set_defaults(handler=_cmd_check)

    yandex = commands.add_parser(
        "yandex",
        parents=[debug],
        formatter_class=_formatter,
        help="Yandex ID helpers (login)",
        description="Yandex ID helpers.",
        epilog="examples:\n  delivery-auth yandex login --client-id 0123abcd\n",
    )
    yandex_commands = yandex.add_subparsers(
        dest="yandex_command", metavar="COMMAND", parser_class=_Parser, required=True
    )
    login = yandex_commands.add_parser(
        "login",
        parents=[debug],
        formatter_class=_formatter,
        help="get a token with the device-code flow",
        description="Show a code and a URL, wait (with a countdown) until you confirm it "
        "in a browser, then write the token and refresh token to a file only you can read. "
        "The token is not printed.",
        epilog="The client secret is read from YANDEX_CLIENT_SECRET (safer than "
        "--client-secret, which other users may see in the process list).\n\n"
        "examples:\n  YANDEX_CLIENT_SECRET=... delivery-auth yandex login --client-id 0123abcd\n"
        "  delivery-auth yandex login --emulator http://127.0.0.1:8080 -O /tmp/y.env\n"
        + _EXIT_CODES,
    )
    login.add_argument("--client-id", help="your Yandex ID app's ClientID (or YANDEX_CLIENT_ID)")
    login.add_argument("--client-secret", help="the app's secret (prefer YANDEX_CLIENT_SECRET)")
    login.add_argument("--oauth-url", metavar="URL", help="Yandex ID base URL override")
    login.add_argument(
        "--emulator",
        metavar="URL",
        help="use the Yandex ID endpoints of a running 'delivery-auth emulate' at URL",
    )
    login.add_argument(
        "-O",
        "--output",
        default="yandex-courier.env",
        metavar="FILE",
        help="where to write the token (default yandex-courier.env, mode 600)",
    )
    login.add_argument("--force", action="store_true", help="overwrite --output")
    login.set_defaults(handler=_cmd_yandex_login)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``delivery-auth``; returns the exit code (see the module's docstring).

    Example::

        main(["check", "dhl", "--emulator", "http://127.0.0.1:8080"])
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = parser.parse_args(["demo", *(["--debug"] if args.debug else [])])
    debug = bool(getattr(args, "debug", False))
    provider = args.provider if args.command in ("check", "token") else "yandex"
    words = wording(args.command, provider, TITLES[provider])
    undo_logging = configure_logging(debug, words)
    try:
        check_url_flags(args)
        result: int = args.handler(args)
        return result
    except KeyboardInterrupt:
        print("delivery-auth: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "werkzeug":
            exc = UsageProblem(
                "the emulator needs Werkzeug: python -m pip install 'delivery-auth[emulator]'"
            )
        report(exc, debug, words)
        return exit_code(exc)
    finally:
        undo_logging()


if __name__ == "__main__":
    sys.exit(main())
