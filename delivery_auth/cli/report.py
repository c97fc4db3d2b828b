"""How ``delivery-auth`` reports: exit codes, and errors and log lines in its own words.

Exit codes: 0 success; 1 the remote side failed (credentials rejected, endpoint
unreachable or failing); 2 usage or configuration (bad flags, missing or invalid
credential settings, insecure or invalid URLs, an output file that cannot be written).

The library's messages are written for the Python API (``token_url``, ``client_id``,
``delivery_auth.yandex.device_login(...)``); :func:`wording` rewrites that advice into the
command's flags, commands and environment variables, for errors and log lines alike.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..providers.spec import ProviderSpec

__all__ = [
    "EMULATOR_CREDENTIALS",
    "Failure",
    "UsageProblem",
    "check_url_flags",
    "configure_logging",
    "exit_code",
    "report",
    "wording",
]

logger = logging.getLogger("delivery_auth")


class UsageProblem(Exception):
    """A mistake in the command line or the environment: exit code 2."""


class Failure(Exception):
    """The check failed or the server refused: exit code 1."""


#: Said when a command needs credentials from the environment and they are missing.
EMULATOR_CREDENTIALS = (
    "To try it offline, 'delivery-auth emulate' prints the emulator's test credentials "
    "(--emulator supplies only its endpoints)."
)


class Formatter(logging.Formatter):
    """delivery-auth's log lines, in the command line's words."""

    def __init__(self, words: Callable[[str], str]) -> None:
        super().__init__("delivery-auth: %(levelname)s: %(message)s")
        self._words = words

    def format(self, record: logging.LogRecord) -> str:
        return self._words(super().format(record))


def configure_logging(debug: bool, words: Callable[[str], str]) -> Callable[[], None]:
    """Send delivery-auth's log to stderr; returns how to undo it (main() may run in-process)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Formatter(words))
    if not debug:  # the commands report rejected credentials themselves, in one line
        handler.addFilter(lambda record: not getattr(record, "credentials_rejected", False))
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

    return undo


def wording(spec: ProviderSpec | None, *, client_id: str | None = None) -> Callable[[str], str]:
    """A function that rewrites the Python API's advice (parameters, functions) in a message
    into the flags, commands and environment variables of the command line, for the
    provider ``spec`` (``None``: a command about no one provider). ``client_id`` replaces
    the name of the client id (a command's ``--client-id`` flag).

    Every registered provider's own rules (:attr:`ProviderSpec.cli_wording`) apply first.

    Example::

        wording(get("dhl"))("Check client_id and token_url.")
        # 'Check DHL_ECOMMERCE_CLIENT_ID and --token-url.'
    """
    from ..providers.spec import registry

    title = spec.title if spec is not None else "the provider"
    client_id_name = (spec.variables("client_id") if spec else None) or "the client id"
    secret = (spec.variables("client_secret") if spec else None) or "the client secret"
    client_id = client_id or client_id_name
    rules: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
        *(rule for known in registry().values() for rule in known.cli_wording),
        (r"the request will be tried again on the next call", "try again later"),
        (r"max_retry_after=(\S+ s)", r"the \1 delivery-auth waits at most"),
        (r"Check scope and token_params\.", "Check --token-url and the -o options."),
        (r" \(or other fields in token_params\)", ""),
        (
            r"it is not in allowed_hosts \[[^\]]*\]\. If this host is yours, add it with "
            r"allowed_hosts=\[\.\.\.\]\.",
            f"delivery-auth sends {title} credentials only to {title}'s hosts and to loopback. "
            "Check --api-url.",
        ),
        (r"\bclient_id\b", client_id),
        (r"\bclient_secret\b", secret),
        (
            r"\b(token_url|api_url|oauth_url|token_ttl|clock_offset)\b",
            lambda match: "--" + match.group(1).replace("_", "-"),
        ),
    ]

    def words(text: str) -> str:
        for pattern, replacement in rules:
            text = re.sub(pattern, replacement, text)
        return text

    return words


def check_url_flags(args: argparse.Namespace) -> None:
    """Every URL flag is an absolute http(s) URL, and https unless its host is loopback."""
    from ..errors import InsecureTransportError
    from ..hosts import check_endpoint_url

    for name in ("emulator", "token_url", "api_url", "oauth_url"):
        value = getattr(args, name, None)
        flag = "--" + name.replace("_", "-")
        if value is not None and not value.strip():
            raise UsageProblem(f"{flag} is empty; give a URL such as https://api.example.com")
        try:
            if value is not None:
                check_endpoint_url(value, flag)
        except InsecureTransportError:
            raise UsageProblem(
                f"{flag} uses plain http: credentials would travel unencrypted. Use https:// "
                "(plain http is allowed only for loopback hosts such as 127.0.0.1)."
            ) from None
        except ValueError as exc:
            message = str(exc)
            raise UsageProblem(
                message if message.startswith(flag) else f"{flag}: {message}"
            ) from None


def exit_code(exc: BaseException) -> int:
    """2: usage or configuration, for the user to fix here; 1: the remote side failed."""
    from ..errors import ConfigurationError, DisallowedHostError, InsecureTransportError

    local_file = isinstance(exc, OSError) and exc.filename is not None
    ours = (UsageProblem, ConfigurationError, DisallowedHostError, InsecureTransportError)
    return 2 if local_file or isinstance(exc, ours) else 1


def report(exc: BaseException, debug: bool, words: Callable[[str], str]) -> None:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    message = str(exc) if isinstance(exc, (UsageProblem, Failure)) else describe(exc)
    print(f"delivery-auth: error: {words(message)}", file=sys.stderr)


def describe(exc: BaseException) -> str:
    from ..errors import DeliveryAuthError

    if isinstance(exc, DeliveryAuthError):
        return str(exc)
    import httpx
    import requests

    if isinstance(exc, OSError) and exc.filename is not None:  # a local file, not the network
        return f"cannot use {exc.filename}: {exc.strerror}"
    if isinstance(exc, (requests.RequestException, httpx.HTTPError, OSError)):
        return f"network failure ({type(exc).__name__}); check the URL and the connection"
    return f"unexpected {type(exc).__name__} (run with --debug for the traceback)"
