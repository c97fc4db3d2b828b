"""``delivery-auth token PROVIDER``: fetch a token and print it (the only command that does).

How a provider gets its token for this command is in its spec
(:class:`~delivery_auth.providers.spec.TokenCommand`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import ConfigurationError
from ..providers.spec import ProviderSpec, get, registry
from .build import build_auth, configuration_problem, emulator_endpoints, one_of, provider_name
from .report import UsageProblem
from .shared import EXIT_CODES, add_endpoint_options, env_help, formatter

__all__ = ["add_parser", "run"]

#: Fields of a token response that ``--json`` shows besides the token and its lifetime.
_EXTRA_FIELDS = ("created_at", "client_id")


def _renewed(spec: ProviderSpec, args: argparse.Namespace) -> Any:
    """The token of a provider whose command renews one (``TokenCommand.renew``)."""
    renew = spec.token.renew
    assert renew is not None
    if args.option:
        raise UsageProblem(f"'token {spec.name}' takes no -o options; use --token-url")
    token_url = args.token_url
    if token_url is None and args.emulator:
        token_url = emulator_endpoints(spec, args.emulator)["token_url"]
    try:
        return renew(token_url, None)
    except ConfigurationError as exc:
        raise configuration_problem(spec, "token", exc) from None


def _fetched(spec: ProviderSpec, args: argparse.Namespace) -> Any:
    """The token of the auth object built from the environment."""
    auth, _ = build_auth(spec, args, dict(spec.token.options))
    with auth:
        return auth.get_token()


def _print(spec: ProviderSpec, token: Any, as_json: bool) -> None:
    if as_json:
        payload: dict[str, object] = {
            "provider": spec.name,
            "access_token": token.access_token,
            "token_type": token.token_type,
            "expires_in": token.lifetime,
        }
        payload.update({k: v for k, v in token.extra.items() if k in _EXTRA_FIELDS})
        print(json.dumps(payload, indent=2))
        return
    print(token.access_token)
    lifetime = "unknown" if token.lifetime is None else f"{token.lifetime:.0f} s"
    print(f"({spec.title} {token.token_type} token, lifetime {lifetime})", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Fetch one token of ``args.provider`` and print it."""
    spec = get(args.provider)
    if spec.token.unavailable:
        raise UsageProblem(spec.token.unavailable)
    token = _renewed(spec, args) if spec.token.renew else _fetched(spec, args)
    _print(spec, token, args.json)
    return 0


def add_parser(commands: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """Add ``token`` to ``delivery-auth``."""
    specs = list(registry().values())
    notes = "; ".join(spec.token.help for spec in specs if spec.token.help)
    token = commands.add_parser(
        "token",
        parents=[parent],
        formatter_class=formatter,
        help="fetch a token with credentials from the environment and print it",
        description="Fetch a token and print it on stdout: the only command that prints "
        f"a token.{f' {notes}.' if notes else ''}",
        epilog=env_help() + "\nexamples:\n  delivery-auth token dhl\n  delivery-auth token "
        "bringg --json -o region=eu2\n  TOKEN=$(delivery-auth token tracker)\n" + EXIT_CODES,
    )
    token.add_argument(
        "provider", type=provider_name, metavar="PROVIDER", help=one_of([s.name for s in specs])
    )
    token.add_argument("--json", action="store_true", help="print JSON with the lifetime")
    add_endpoint_options(token, api_url=False)
    token.set_defaults(handler=run)
