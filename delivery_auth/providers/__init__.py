"""Ready-made auth objects for the four delivery APIs delivery-auth knows.

Each provider is one small module: its URLs, header format, allowed hosts, refresh
policy and, where the API needs one, its failure detector. The request flow, the
token engine and the adapters are shared (:mod:`delivery_auth.auth`).

=========== ================================ ==========================================
name        class                            environment (``from_env``)
=========== ================================ ==========================================
``tracker`` :class:`DeliveryTrackerAuth`     ``DELIVERY_TRACKER_CLIENT_ID``, ``…_SECRET``
``bringg``  :class:`BringgAuth`              ``BRINGG_CLIENT_ID``, ``BRINGG_CLIENT_SECRET``
``dhl``     :class:`DHLeCommerceAuth`        ``DHL_ECOMMERCE_CLIENT_ID``, ``…_SECRET``
``yandex``  :class:`YandexCourierAuth`       ``YANDEX_COURIER_TOKEN``
=========== ================================ ==========================================

Example::

    from delivery_auth.providers import PROVIDERS

    auth = PROVIDERS["bringg"].from_env()          # reads BRINGG_CLIENT_ID, ...
    requests.get("https://us2-admin-api.bringg.com/services/...", auth=auth)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from ..errors import DeliveryAuthError, TokenRevokedError
from ..token import Token

__all__ = [
    "PROVIDERS",
    "BringgAuth",
    "ConfigurationError",
    "DHLeCommerceAuth",
    "DeliveryTrackerAuth",
    "GraphQLFailureDetector",
    "YandexCourierAuth",
]


class ConfigurationError(DeliveryAuthError, ValueError):
    """Settings a provider needs are missing or invalid (e.g. environment variables).

    ``missing`` names every variable that was not set.
    """

    def __init__(self, message: str, *, missing: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


def read_env(
    provider: str,
    required: Sequence[str],
    optional: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The set, non-empty values of ``required`` and ``optional`` variables.

    Raises :class:`ConfigurationError` naming every required variable that is unset
    or empty (never a value). A new provider's ``from_env`` is built on it.

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


# The provider modules import ConfigurationError and read_env from here.
from .bringg import BringgAuth  # noqa: E402
from .dhl import DHLeCommerceAuth  # noqa: E402
from .tracker import DeliveryTrackerAuth, GraphQLFailureDetector  # noqa: E402
from .yandex import YandexCourierAuth  # noqa: E402

#: Short name -> provider class (used by the emulator and the command line).
PROVIDERS: Mapping[
    str, type[DeliveryTrackerAuth | BringgAuth | DHLeCommerceAuth | YandexCourierAuth]
] = MappingProxyType(
    {
        "tracker": DeliveryTrackerAuth,
        "bringg": BringgAuth,
        "dhl": DHLeCommerceAuth,
        "yandex": YandexCourierAuth,
    }
)
