"""``delivery-auth check PROVIDER``: verify credentials end to end, print OK or the reason.

Each provider says how in its spec (:attr:`~delivery_auth.providers.spec.ProviderSpec.verify`):
a query to its API, or a token request.
"""

from __future__ import annotations

import argparse

from ..providers.spec import get, registry
from .build import build_auth, one_of, provider_name
from .report import UsageProblem
from .shared import EXIT_CODES, add_endpoint_options, env_help, formatter

__all__ = ["add_parser", "run"]


def run(args: argparse.Namespace) -> int:
    """Check the credentials of ``args.provider``; 0 when its API accepted them."""
    spec = get(args.provider)
    if args.api_url and "api_url" not in spec.endpoints:
        with_api = [s.name for s in registry().values() if "api_url" in s.endpoints]
        raise UsageProblem(
            f"--api-url is for {one_of(with_api, 'and')}; {spec.name} is checked with a "
            "token request"
        )
    auth, api_url = build_auth(spec, args)
    with auth:
        print(f"OK: {spec.title} {spec.verify(auth, api_url)}")
    return 0


def _description() -> str:
    by_help: dict[str, list[str]] = {}
    for spec in registry().values():
        by_help.setdefault(spec.verify_help, []).append(spec.name)
    default = by_help.pop("a token request", [])  # the usual case last
    parts = [f"{', '.join(names)}: {how}" for how, names in by_help.items()]
    if default:
        parts.append(f"{', '.join(default)}: a token request")
    return f"{'; '.join(parts)}. Exit 0 if OK (exit codes below)."


def add_parser(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add ``check`` to ``delivery-auth``."""
    names = list(registry())
    check = commands.add_parser(
        "check",
        parents=[parent],
        formatter_class=formatter,
        help="verify credentials end to end (prints OK or the reason)",
        description=_description(),
        epilog=env_help() + "\nexamples:\n  delivery-auth check yandex\n  delivery-auth check "
        "tracker -o method=oauth2\n  delivery-auth check dhl -o environment=sandbox\n" + EXIT_CODES,
    )
    check.add_argument("provider", type=provider_name, metavar="PROVIDER", help=one_of(names))
    add_endpoint_options(check, api_url=True)
    check.set_defaults(handler=run)
