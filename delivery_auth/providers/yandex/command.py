"""``delivery-auth yandex login``: get a Yandex Courier token with the device-code flow.

Added to the command line by Yandex's spec (``cli_commands``); imported only when the
parser is built.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from ...cli.report import EMULATOR_CREDENTIALS, UsageProblem
from ...cli.shared import EXIT_CODES, Parser, formatter
from .login import OAUTH_URL, DeviceCode, device_login

__all__ = ["add_commands", "login"]


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


def login(args: argparse.Namespace) -> int:
    """Run the device-code login and write the token to ``args.output`` (mode 600)."""
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
            f"--client-id / --client-secret. {EMULATOR_CREDENTIALS}"
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


def add_commands(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add ``yandex login`` to ``delivery-auth``."""
    yandex = commands.add_parser(
        "yandex",
        parents=[parent],
        formatter_class=formatter,
        help="Yandex ID helpers (login)",
        description="Yandex ID helpers.",
        epilog="examples:\n  delivery-auth yandex login --client-id 0123abcd\n",
    )
    # Errors and log lines speak of this provider, and of --client-id for the client id.
    yandex.set_defaults(provider="yandex", client_id_words="--client-id")
    yandex_commands = yandex.add_subparsers(
        dest="yandex_command", metavar="COMMAND", parser_class=Parser, required=True
    )
    command = yandex_commands.add_parser(
        "login",
        parents=[parent],
        formatter_class=formatter,
        help="get a token with the device-code flow",
        description="Show a code and a URL, wait (with a countdown) until you confirm it "
        "in a browser, then write the token and refresh token to a file only you can read. "
        "The token is not printed.",
        epilog="The client secret is read from YANDEX_CLIENT_SECRET (safer than "
        "--client-secret, which other users may see in the process list).\n\n"
        "examples:\n  YANDEX_CLIENT_SECRET=... delivery-auth yandex login --client-id 0123abcd\n"
        "  delivery-auth yandex login --emulator http://127.0.0.1:8080 -O /tmp/y.env\n"
        + EXIT_CODES,
    )
    command.add_argument("--client-id", help="your Yandex ID app's ClientID (or YANDEX_CLIENT_ID)")
    command.add_argument("--client-secret", help="the app's secret (prefer YANDEX_CLIENT_SECRET)")
    command.add_argument("--oauth-url", metavar="URL", help="Yandex ID base URL override")
    command.add_argument(
        "--emulator",
        metavar="URL",
        help="use the Yandex ID endpoints of a running 'delivery-auth emulate' at URL",
    )
    command.add_argument(
        "-O",
        "--output",
        default="yandex-courier.env",
        metavar="FILE",
        help="where to write the token (default yandex-courier.env, mode 600)",
    )
    command.add_argument("--force", action="store_true", help="overwrite --output")
    command.set_defaults(handler=login)
