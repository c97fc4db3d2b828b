"""Yandex Courier (Track & Trace): the auth object, getting a token, and its description.

- :mod:`.auth` — :class:`YandexCourierAuth`, ``Authorization: OAuth <token>``, renewed
  once with a refresh token on a 401; :meth:`~YandexCourierAuth.verify`.
- :mod:`.login` — getting a token from Yandex ID: :func:`authorize_url` (the browser
  link), :func:`device_login` (the device-code flow), :func:`renew_from_env`.
- :mod:`.command` — its ``delivery-auth yandex login`` subcommand.

``delivery_auth.yandex`` re-exports the login helpers (the README uses that path).

Example::

    from delivery_auth.providers.yandex import YandexCourierAuth, device_login

    token = device_login(client_id, client_secret)        # prints a code to enter
    auth = YandexCourierAuth(token.access_token, refresh_token=token.refresh_token,
                             client_id=client_id, client_secret=client_secret)
"""

from __future__ import annotations

import re

from ..spec import EnvVar, ProviderSpec, TokenCommand
from .auth import _NEW_TOKEN_HOWTO, API_URL, TOKEN_URL, YandexCourierAuth, verify_line
from .login import (
    OAUTH_URL,
    DeviceCode,
    DeviceLoginError,
    authorize_url,
    device_login,
    renew_from_env,
)

__all__ = [
    "API_URL",
    "OAUTH_URL",
    "SPEC",
    "TOKEN_URL",
    "DeviceCode",
    "DeviceLoginError",
    "YandexCourierAuth",
    "authorize_url",
    "device_login",
    "renew_from_env",
]

SPEC = ProviderSpec(
    name="yandex",
    title="Yandex Courier",
    auth_class=YandexCourierAuth,
    env=(
        EnvVar("YANDEX_COURIER_TOKEN", "token", required=True, field="token"),
        EnvVar("YANDEX_REFRESH_TOKEN", "refresh_token", field="refresh_token"),
        EnvVar("YANDEX_CLIENT_ID", "client_id", field="client_id"),
        EnvVar("YANDEX_CLIENT_SECRET", "client_secret", field="client_secret"),
    ),
    default_hosts=YandexCourierAuth.DEFAULT_ALLOWED_HOSTS,
    failure_signal="HTTP 401",
    emulator_page="delivery_auth.emulator.yandex",
    endpoints=("token_url", "api_url"),
    verify=verify_line,
    verify_help="GET /api/v1/test",
    api_url_help="the API base URL",
    token=TokenCommand(
        help="Yandex renews with the refresh token",
        renew=renew_from_env,
        needs="A Yandex Courier token is not fetched but renewed with a refresh token; get "
        "both with 'delivery-auth yandex login'.",
    ),
    cli_commands="delivery_auth.providers.yandex.command",
    cli_wording=(
        (re.escape(_NEW_TOKEN_HOWTO), "Get a new token with 'delivery-auth yandex login'."),
        (r"\bdevice_login\b", "'delivery-auth yandex login'"),
        (r"pass the token alone", "set YANDEX_COURIER_TOKEN to the token alone"),
    ),
)
