"""Getting a Yandex Courier token from Yandex ID (re-exported from its provider package).

The code lives in :mod:`delivery_auth.providers.yandex.login`; this module keeps the
import path the README and existing code use.

Example::

    from delivery_auth.yandex import authorize_url, device_login

    print(authorize_url("my-app-client-id"))   # open in a browser, copy the token

    token = device_login("my-app-client-id", "my-app-secret")   # prints a code to enter
    auth = YandexCourierAuth(token.access_token, refresh_token=token.refresh_token,
                             client_id="my-app-client-id", client_secret="my-app-secret")
"""

from __future__ import annotations

from .providers.yandex import (
    OAUTH_URL,
    DeviceCode,
    DeviceLoginError,
    YandexCourierAuth,
    authorize_url,
    device_login,
)

__all__ = [
    "OAUTH_URL",
    "DeviceCode",
    "DeviceLoginError",
    "YandexCourierAuth",
    "authorize_url",
    "device_login",
]
