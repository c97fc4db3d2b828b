"""What the provider modules share: reading the environment and static credentials."""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Mapping, Sequence

from ..errors import ConfigurationError, TokenRevokedError
from ..token import Token

__all__ = ["StaticSource", "check_overrides", "keyword_options", "read_env"]


def read_env(
    provider: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The set, non-empty values of ``required`` and ``optional`` variables.

    Raises :class:`ConfigurationError` naming every required variable that is unset
    or empty (never a value). A provider's ``from_env`` is built on it, through
    :meth:`~delivery_auth.providers.spec.ProviderSpec.arguments_from_env` when its spec
    lists the variables.

    Example::

        values = read_env("AcmeAuth", ("ACME_CLIENT_ID", "ACME_CLIENT_SECRET"), ("ACME_REGION",))
    """
    env = os.environ if environ is None else environ
    values = {name: env[name].strip() for name in (*required, *optional) if env.get(name, "")}
    values = {name: value for name, value in values.items() if value}
    missing = [name for name in required if name not in values]
    if missing:
        raise ConfigurationError(
            f"{provider}.from_env() needs the environment variable(s) "
            f"{', '.join(missing)}, which are not set. Set them, or construct "
            f"{provider}(...) with explicit arguments.",
            missing=missing,
        )
    return values


def keyword_options(cls: type) -> tuple[str, ...]:
    """The keyword-only parameters of ``cls``'s constructor, in signature order: the
    options a provider takes (its positional parameters are its credentials)."""
    parameters = inspect.signature(cls.__init__).parameters.values()  # type: ignore[misc]
    return tuple(p.name for p in parameters if p.kind is p.KEYWORD_ONLY)


def check_overrides(cls: type, overrides: Mapping[str, object]) -> None:
    """Raise :class:`TypeError` at once when ``from_env(**overrides)`` names an option
    ``cls`` does not take, naming the valid ones (a misspelt ``timout=5`` must not get
    as far as the constructor's own, less helpful, complaint).

    Example::

        check_overrides(DHLeCommerceAuth, {"timout": 5})
        # TypeError: DHLeCommerceAuth.from_env() got an unexpected option 'timout'. ...
    """
    valid = keyword_options(cls)
    for name in overrides:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"{cls.__name__}.from_env() got an unexpected option {name!r}.{hint} "
                f"Valid options: {', '.join(valid)}."
            )


class StaticSource:
    """The token source of credentials that cannot be renewed (an API key, a static token).

    The engine is built with the credential as its initial token and
    ``refreshable=False``, so it never asks; ``fetch`` exists to satisfy the protocol.
    """

    __slots__ = ("_what",)

    def __init__(self, what: str) -> None:
        self._what = what

    def fetch(self) -> Token:
        raise TokenRevokedError(f"{self._what} cannot be renewed by delivery-auth.")

    def close(self) -> None:
        """Nothing to release."""

    def reset_after_fork(self) -> None:
        """Nothing to reset."""
