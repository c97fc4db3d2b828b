"""What the commands of ``delivery-auth`` share: the parser class, help texts, flags."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from ..providers.spec import registry

__all__ = [
    "EXIT_CODES",
    "TEST_DOUBLE",
    "Parser",
    "add_endpoint_options",
    "env_help",
    "formatter",
]

EXIT_CODES = """
exit codes:
  0  OK
  1  the remote side failed: credentials rejected, endpoint unreachable or failing
  2  usage or configuration: bad flags, missing or invalid credential settings,
     insecure or invalid URLs, an output file that cannot be written
"""

TEST_DOUBLE = (
    "The emulator is a TEST DOUBLE of the carriers' APIs: it accepts only its own public "
    "test credentials. Never point production code at it."
)


class Parser(argparse.ArgumentParser):
    """argparse, with the errors in ``delivery-auth: error: ...`` form (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"delivery-auth: error: {message}\n")


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def env_help() -> str:
    """What each provider reads from the environment (required, then [optional])."""
    specs = list(registry().values())
    width = max(len(spec.name) for spec in specs)
    lines = ["environment variables (what each provider reads):"]
    for spec in specs:
        required = ", ".join(var.name for var in spec.env if var.required)
        optional = ", ".join(var.name for var in spec.env if not var.required)
        lines.append(f"  {spec.name:<{width}}  {required}{f' [, {optional}]' if optional else ''}")
    return "\n".join(lines) + "\n"


def add_endpoint_options(parser: argparse.ArgumentParser, *, api_url: bool) -> None:
    """``--emulator``, ``--token-url``, ``--api-url`` (when asked) and ``-o NAME=VALUE``."""
    parser.add_argument(
        "--emulator",
        metavar="URL",
        help="use the endpoints of a running 'delivery-auth emulate' at URL (credentials "
        "still come from the environment; 'emulate' prints its test credentials)",
    )
    parser.add_argument("--token-url", metavar="URL", help="override the token endpoint")
    if api_url:
        meanings = [
            f"{spec.name}: {spec.api_url_help or 'its API URL'}"
            for spec in registry().values()
            if "api_url" in spec.endpoints
        ]
        parser.add_argument("--api-url", metavar="URL", help="; ".join(meanings))
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="NAME=VALUE",
        help="a provider option, e.g. -o region=eu2, -o environment=sandbox, -o timeout=5 "
        "(repeatable)",
    )
