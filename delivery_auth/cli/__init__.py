"""The ``delivery-auth`` command: demo, emulate, token, check, and each provider's own
commands (``yandex login``).

Exit codes: 0 success; 1 the remote side failed (credentials rejected, endpoint
unreachable or failing); 2 usage or configuration (bad flags, missing or invalid
credential settings, insecure or invalid URLs, an output file that cannot be written).
Errors are one line on stderr, in the command line's own words (flags and variables,
never Python parameters); ``--debug`` adds the traceback and delivery-auth's DEBUG log.
Only ``delivery-auth token`` prints a token; no command prints a secret of yours
(``emulate`` lists the emulator's public test credentials). ``--emulator`` supplies
endpoints only: the credentials checked are always the ones given.

The commands read every provider from the registry (:mod:`delivery_auth.providers.spec`)
and name none: ``parser`` builds the parser, one module per command (``check``,
``token``, ``demo``), ``build`` turns flags into an auth object, ``report`` words errors.

Example::

    $ delivery-auth demo
    $ DHL_ECOMMERCE_CLIENT_ID=... DHL_ECOMMERCE_CLIENT_SECRET=... delivery-auth check dhl
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .parser import build_parser
from .report import UsageProblem, check_url_flags, configure_logging, exit_code, report, wording

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``delivery-auth``; returns the exit code (see the module's docstring).

    Example::

        main(["check", "dhl", "--emulator", "http://127.0.0.1:8080"])
    """
    from ..providers.spec import registry

    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        args = parser.parse_args(["demo", *(["--debug"] if args.debug else [])])
    debug = bool(getattr(args, "debug", False))
    provider = getattr(args, "provider", None)
    spec = registry().get(provider) if isinstance(provider, str) else None
    words = wording(spec, client_id=getattr(args, "client_id_words", None))
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
