"""delivery-auth: authentication for delivery and logistics APIs as one ``auth=`` object.

Example::

    import requests
    from delivery_auth import ClientCredentialsAuth

    auth = ClientCredentialsAuth("https://auth.example.com/oauth2/token", "id", "secret")
    requests.get("https://api.example.com/v1/orders", auth=auth)
"""

from __future__ import annotations

from .auth import DeliveryAuth
from .cache import FileTokenCache, MemoryTokenCache, RedisTokenCache, TokenCache
from .client_credentials import ClientCredentialsAuth
from .errors import (
    CredentialsRejectedError,
    DeliveryAuthError,
    DisallowedHostError,
    InsecureTransportError,
    InvalidClientError,
    TokenEndpointUnavailableError,
    TokenRequestError,
    TokenRevokedError,
)
from .flow import FailureDetector, StatusFailureDetector
from .policy import BackoffPolicy, RefreshPolicy
from .providers import (
    BringgAuth,
    ConfigurationError,
    DeliveryTrackerAuth,
    DHLeCommerceAuth,
    GraphQLFailureDetector,
    YandexCourierAuth,
)
from .providers.doordash import DoorDashDriveAuth
from .providers.fedex import FedExAuth
from .providers.uber_direct import UberDirectAuth
from .self_signed_jwt import SelfSignedJWTAuth
from .token import Token

__version__ = "0.1.0"

__all__ = [
    "BackoffPolicy",
    "BringgAuth",
    "ClientCredentialsAuth",
    "ConfigurationError",
    "CredentialsRejectedError",
    "DHLeCommerceAuth",
    "DeliveryAuth",
    "DeliveryAuthError",
    "DeliveryTrackerAuth",
    "DisallowedHostError",
    "DoorDashDriveAuth",
    "FailureDetector",
    "FedExAuth",
    "FileTokenCache",
    "GraphQLFailureDetector",
    "InsecureTransportError",
    "InvalidClientError",
    "MemoryTokenCache",
    "RedisTokenCache",
    "RefreshPolicy",
    "SelfSignedJWTAuth",
    "StatusFailureDetector",
    "Token",
    "TokenCache",
    "TokenEndpointUnavailableError",
    "TokenRequestError",
    "TokenRevokedError",
    "UberDirectAuth",
    "YandexCourierAuth",
    "__version__",
]
