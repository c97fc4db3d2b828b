"""delivery-auth: authentication for delivery and logistics APIs as one ``auth=`` object.

Example::

    import requests
    from delivery_auth import ClientCredentialsAuth

    auth = ClientCredentialsAuth("https://auth.example.com/oauth2/token", "id", "secret")
    requests.get("https://api.example.com/v1/orders", auth=auth)
"""

from __future__ import annotations

from ._decorate import UnsignableBodyError
from .auth import DeliveryAuth
from .cache import FileTokenCache, MemoryTokenCache, RedisTokenCache, TokenCache
from .client_credentials import ClientCredentialsAuth
from .dependent import DependentToken, JsonTokenRequest
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
from .password_grant import PasswordGrantAuth
from .policy import BackoffPolicy, RefreshPolicy
from .providers import (
    BringgAuth,
    ConfigurationError,
    DeliveryTrackerAuth,
    DHLeCommerceAuth,
    GraphQLFailureDetector,
    YandexCourierAuth,
)
from .providers.dhl_parcel_de import DHLParcelDEAuth
from .providers.doordash import DoorDashDriveAuth
from .providers.easypost import EasyPostAuth
from .providers.fedex import FedExAuth
from .providers.lalamove import LalamoveAuth
from .providers.mydhl import MyDHLExpressAuth
from .providers.sendcloud import SendcloudAuth
from .providers.shipengine import ShipEngineAuth
from .providers.shippo import ShippoAuth
from .providers.uber_direct import UberDirectAuth
from .providers.ups import UPSAuth
from .providers.usps import USPSAuth
from .self_signed_jwt import SelfSignedJWTAuth
from .signing import HmacSigningAuth, SigningInput
from .static import ApiKeyAuth, BasicCredentialsAuth
from .token import Token

__version__ = "0.1.0"

__all__ = [
    "ApiKeyAuth",
    "BackoffPolicy",
    "BasicCredentialsAuth",
    "BringgAuth",
    "ClientCredentialsAuth",
    "ConfigurationError",
    "CredentialsRejectedError",
    "DHLParcelDEAuth",
    "DHLeCommerceAuth",
    "DeliveryAuth",
    "DeliveryAuthError",
    "DeliveryTrackerAuth",
    "DependentToken",
    "DisallowedHostError",
    "DoorDashDriveAuth",
    "EasyPostAuth",
    "FailureDetector",
    "FedExAuth",
    "FileTokenCache",
    "GraphQLFailureDetector",
    "HmacSigningAuth",
    "InsecureTransportError",
    "InvalidClientError",
    "JsonTokenRequest",
    "LalamoveAuth",
    "MemoryTokenCache",
    "MyDHLExpressAuth",
    "PasswordGrantAuth",
    "RedisTokenCache",
    "RefreshPolicy",
    "SelfSignedJWTAuth",
    "SendcloudAuth",
    "ShipEngineAuth",
    "ShippoAuth",
    "SigningInput",
    "StatusFailureDetector",
    "Token",
    "TokenCache",
    "TokenEndpointUnavailableError",
    "TokenRequestError",
    "TokenRevokedError",
    "UPSAuth",
    "USPSAuth",
    "UberDirectAuth",
    "UnsignableBodyError",
    "YandexCourierAuth",
    "__version__",
]
