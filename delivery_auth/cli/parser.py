"""The argument parser of ``delivery-auth``: the shared commands, then each provider's own
(:attr:`~delivery_auth.providers.spec.ProviderSpec.cli_commands`)."""

from __future__ import annotations

import argparse
import importlib

from ..providers.spec import registry
from . import check, demo, token
from .shared import EXIT_CODES, Parser, formatter

__all__ = ["build_parser"]

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
    + EXIT_CODES
)
_DEBUG_HELP = "show tracebacks and delivery-auth's DEBUG log (never secrets)"


def _debug_parent() -> argparse.ArgumentParser:
    """``--debug`` after a command; it leaves the value before the command alone."""
    parent = Parser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``delivery-auth``."""
    from .. import __version__

    parser = Parser(
        prog="delivery-auth",
        description="One auth= object for delivery APIs: try it, test with it, check "
        "credentials. With no command, runs the demo.",
        epilog=_EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"delivery-auth {__version__}")
    parser.add_argument("--debug", action="store_true", default=False, help=_DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    parent = _debug_parent()
    demo.add_parsers(commands, parent)
    token.add_parser(commands, parent)
    check.add_parser(commands, parent)
    for spec in registry().values():
        if spec.cli_commands:
            importlib.import_module(spec.cli_commands).add_commands(commands, parent)
    return parser
