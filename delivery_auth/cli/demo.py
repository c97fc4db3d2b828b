"""``delivery-auth demo`` and ``delivery-auth emulate``: the emulator, run for you or for
your tests."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import Any

from ..providers.spec import registry
from .build import provider_name
from .report import UsageProblem
from .shared import EXIT_CODES, TEST_DOUBLE, formatter

__all__ = ["add_parsers", "run_demo_command", "run_emulate"]


def run_demo_command(args: argparse.Namespace) -> int:
    """Drive the chosen providers and clients through the emulator; 0 if every check held."""
    from ..demo import CLIENTS, run_demo

    providers = args.provider or list(registry())
    clients = args.client or list(CLIENTS)
    ok = run_demo(sys.stdout, providers=providers, clients=clients)
    sys.stdout.flush()
    return 0 if ok else 1


def _start_emulator(args: argparse.Namespace) -> Any:
    from ..emulator import Emulator, NonLoopbackHostError

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
    try:
        emu.start()
    except OSError as exc:
        emu.stop()
        raise UsageProblem(f"{exc.strerror}; choose another --port (0: a free one)") from None
    return emu


def _print_banner(emu: Any, args: argparse.Namespace) -> None:
    from ..emulator import endpoints_at, environment

    specs = list(registry().values())
    print(f"delivery-auth emulator on {emu.base_url}", flush=True)
    print(TEST_DOUBLE)
    print(f"Token lifetime {args.token_ttl:g} s, clock offset {args.clock_offset:g} s.\n")
    width = max(len(spec.title) for spec in specs)
    for spec in specs:
        urls = endpoints_at(emu.base_url, spec.name)
        token = urls.get("token_url", "(none: no token endpoint)")
        print(
            f"  {spec.title:<{width}}  token {token}\n  {'':<{width}}  api   {urls['resource_url']}"
        )
    print("\nIts public test credentials (accepted only by the emulator), for your shell:")
    for spec in specs:
        pairs = environment(spec.name).items()
        print("  export " + " ".join(f"{name}={value}" for name, value in pairs))
    print(
        f"\nTry: delivery-auth check {specs[-1].name} --emulator {emu.base_url}\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )


def run_emulate(args: argparse.Namespace) -> int:
    """Serve the emulator in the foreground until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        emu = _start_emulator(args)
        try:
            _print_banner(emu, args)
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            emu.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("emulator stopped", flush=True)
    return 0


def add_parsers(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add ``demo`` and ``emulate`` to ``delivery-auth``."""
    demo = commands.add_parser(
        "demo",
        parents=[parent],
        formatter_class=formatter,
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
        type=provider_name,
        metavar="PROVIDER",
        help="only this provider (repeatable)",
    )
    demo.add_argument(
        "--client",
        action="append",
        choices=("requests", "httpx", "httpx async"),
        help="only this client (repeatable)",
    )
    demo.set_defaults(handler=run_demo_command)

    emulate = commands.add_parser(
        "emulate",
        parents=[parent],
        formatter_class=formatter,
        help="run the provider emulator (a test double) in the foreground",
        description=f"Serve the emulator until Ctrl-C. {TEST_DOUBLE}",
        epilog="examples:\n  delivery-auth emulate\n  delivery-auth emulate --port 8080 "
        "--token-ttl 30\n  delivery-auth check dhl --emulator http://127.0.0.1:8080\n" + EXIT_CODES,
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
    emulate.set_defaults(handler=run_emulate)
