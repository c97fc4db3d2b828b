"""From the command line to a provider's auth object: names, ``-o`` options, endpoints.

Everything about a provider comes from its :class:`~delivery_auth.providers.spec.ProviderSpec`
in the registry; nothing here names one.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigurationError
from ..providers.spec import ProviderSpec, registry
from .report import EMULATOR_CREDENTIALS, UsageProblem

__all__ = [
    "build_auth",
    "configuration_problem",
    "emulator_endpoints",
    "one_of",
    "parse_options",
    "provider_name",
    "settable_options",
]

#: Constructor options that ``-o`` cannot set (objects, or secrets that belong in env).
NOT_SETTABLE = frozenset(
    {
        "client_id",
        "client_secret",
        "token",
        "refresh_token",
        "cache",
        "backoff",
        "failure_detector",
        "token_params",
        "allowed_hosts",
    }
)


def one_of(names: Sequence[str], last: str = "or") -> str:
    """``"a, b, c or d"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def provider_name(value: str) -> str:
    """argparse ``type=`` of a provider argument: a registered name, or a hint."""
    names = list(registry())
    name = value.strip().lower()
    if name in names:
        return name
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise argparse.ArgumentTypeError(
        f"unknown provider {value!r}.{hint} Choose one of: {', '.join(names)}."
    )


def settable_options(spec: ProviderSpec) -> list[str]:
    """The options ``-o NAME=VALUE`` may set: the constructor's keyword options."""
    return [name for name in spec.options() if name not in NOT_SETTABLE]


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


def parse_options(spec: ProviderSpec, pairs: Sequence[str]) -> dict[str, object]:
    """``-o NAME=VALUE`` pairs as constructor options; a misspelt name is a usage error."""
    allowed = settable_options(spec)
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
                f"{spec.title} has no option {name!r}.{hint} Options: {', '.join(allowed)}."
            )
        options[name] = _convert(value)
    return options


def emulator_endpoints(spec: ProviderSpec, base_url: str) -> dict[str, str]:
    """The endpoint options of ``spec`` at a running emulator (``--emulator URL``)."""
    from ..emulator import endpoints_at

    endpoints = endpoints_at(base_url.rstrip("/"), spec.name)
    return {name: endpoints[name] for name in spec.endpoints if name in endpoints}


def build_auth(
    spec: ProviderSpec, args: argparse.Namespace, forced: dict[str, object] | None = None
) -> tuple[Any, str | None]:
    """The provider's auth object from the environment, and the API URL to check.

    Options come, weakest first, from ``--emulator``, ``-o``, ``--token-url`` /
    ``--api-url``, and ``forced`` (what the command needs; ``-o`` may not contradict it).
    """
    options = parse_options(spec, args.option or [])
    for name, value in (forced or {}).items():
        if name in options and options[name] != value:
            raise UsageProblem(
                spec.token.refusal or f"{spec.title}: {name}={options[name]!r} is not possible here"
            )
        options[name] = value
    api_url: str | None = getattr(args, "api_url", None)
    if args.emulator:
        for name, url in emulator_endpoints(spec, args.emulator).items():
            options.setdefault(name, url)
    if args.token_url:
        options["token_url"] = args.token_url
    if api_url and "api_url" in spec.endpoints:
        options["api_url"] = api_url
    try:
        auth = spec.from_env(None, **options)
    except (ConfigurationError, TypeError, ValueError) as exc:
        raise configuration_problem(spec, args.command, exc) from None
    checked = options.get("api_url")
    return auth, checked if isinstance(checked, str) else None


def configuration_problem(
    spec: ProviderSpec, command: str, exc: ConfigurationError | TypeError | ValueError
) -> UsageProblem:
    """The usage error (exit 2) for a provider's complaint about its settings."""
    if not isinstance(exc, ConfigurationError):
        return UsageProblem(f"{spec.title}: {exc}")
    if not exc.missing:  # set, but invalid (e.g. BRINGG_TTL=soon)
        return UsageProblem(str(exc))
    advice = f"Set them (see 'delivery-auth {command} --help')."
    if command == "token" and spec.token.needs:
        advice = spec.token.needs
    return UsageProblem(
        f"missing environment variable(s) {', '.join(exc.missing)}. {advice} {EMULATOR_CREDENTIALS}"
    )
