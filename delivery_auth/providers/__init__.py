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

from collections.abc import Mapping
from types import MappingProxyType

from ..errors import ConfigurationError
from .base import StaticSource, read_env

__all__ = [
    "PROVIDERS",
    "BringgAuth",
    "ConfigurationError",
    "DHLeCommerceAuth",
    "DeliveryTrackerAuth",
    "GraphQLFailureDetector",
    "StaticSource",
    "YandexCourierAuth",
    "read_env",
]

from .bringg import BringgAuth
from .dhl import DHLeCommerceAuth
from .tracker import DeliveryTrackerAuth, GraphQLFailureDetector
from .yandex import YandexCourierAuth

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
