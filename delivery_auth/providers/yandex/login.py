"""Getting a Yandex Courier token from Yandex ID: the browser link, the device-code flow,
and renewal with a refresh token.

A Track & Trace token belongs to a company administrator and is issued to a
Yandex ID app with the ``courier:logistician`` permission.

Example::

    from delivery_auth.yandex import authorize_url, device_login

    print(authorize_url("my-app-client-id"))   # open in a browser, copy the token

    token = device_login("my-app-client-id", "my-app-secret")   # prints a code to enter
    auth = YandexCourierAuth(token.access_token, refresh_token=token.refresh_token,
                             client_id="my-app-client-id", client_secret="my-app-secret")
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import requests

from ...deadline import DeadlineAdapter
from ...errors import DeliveryAuthError, InvalidClientError, TokenRequestError, TokenRevokedError
from ...fetch import TokenFetcher
from ...hosts import check_endpoint_url
from ...token import Token
from ..base import read_env
from .auth import TOKEN_URL, YandexCourierAuth

__all__ = [
    "OAUTH_URL",
    "DeviceCode",
    "DeviceLoginError",
    "YandexCourierAuth",
    "authorize_url",
    "device_login",
    "renew_from_env",
]

#: Yandex ID's OAuth server.
OAUTH_URL = "https://oauth.yandex.com"

#: RFC 8628: a ``slow_down`` answer adds this many seconds to the polling interval.
_SLOW_DOWN_STEP = 5


class DeviceLoginError(DeliveryAuthError):
    """The device-code login did not end with a token; ``error`` is Yandex ID's code
    (``expired_token``, ``access_denied``, ...)."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """What the user needs to confirm a device-code login (no secret in it)."""

    user_code: str
    verification_url: str
    interval: int
    expires_in: int


def _check_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not client_id.strip():
        raise ValueError("client_id must be the non-empty ClientID of your Yandex ID app")
    return client_id.strip()


def authorize_url(client_id: str, *, oauth_url: str = OAUTH_URL) -> str:
    """The implicit-flow link that shows a company administrator a new token.

    Example::

        authorize_url("0123abcd")
        # 'https://oauth.yandex.com/authorize?response_type=token&client_id=0123abcd'
    """
    client_id = _check_client_id(client_id)
    base = check_endpoint_url(oauth_url, "oauth_url").rstrip("/")
    return f"{base}/authorize?{urlencode({'response_type': 'token', 'client_id': client_id})}"


def _print_code(code: DeviceCode) -> None:
    print(
        f"To sign in to Yandex Courier, open {code.verification_url} and enter the code "
        f"{code.user_code} (valid {code.expires_in} s).",
        file=sys.stderr,
        flush=True,
    )


def _positive_int(payload: dict[str, object], name: str, default: int) -> int:
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return default
    try:
        number = int(float(value))
    except (ValueError, OverflowError):
        return default
    return number if number > 0 else default


def _request_device_code(
    oauth_url: str, form: dict[str, str], timeout: float
) -> tuple[str, DeviceCode]:
    url = f"{oauth_url}/device/code"
    # One deadline for the whole exchange, as for token requests: a read timeout alone
    # restarts on every byte a slow server drips.
    with requests.Session() as session:
        session.mount(url, DeadlineAdapter())
        try:
            response = session.post(url, data=form, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise DeliveryAuthError(
                f"Could not reach {url} ({type(exc).__name__}). Check the network and oauth_url."
            ) from None
    try:
        payload = json.loads(response.content)
    except (ValueError, RecursionError):
        payload = None
    body = payload if isinstance(payload, dict) else {}
    error = body.get("error")
    if response.status_code != 200 or error is not None:
        if error == "invalid_client":
            raise InvalidClientError(
                f"Yandex ID does not know this client_id (HTTP {response.status_code} from "
                f"{url}). Use the ClientID of your Yandex ID app.",
                token_url=url,
                status_code=response.status_code,
                error="invalid_client",
            )
        raise DeviceLoginError(
            f"Yandex ID refused to start a device login (HTTP {response.status_code}"
            f"{f', {error}' if isinstance(error, str) else ''}) at {url}. Check client_id "
            "and that the app allows this flow.",
            error=error if isinstance(error, str) else None,
        )
    device_code = body.get("device_code")
    user_code = body.get("user_code")
    verification_url = body.get("verification_url") or body.get("verification_uri")
    if not (
        isinstance(device_code, str)
        and device_code
        and isinstance(user_code, str)
        and user_code
        and isinstance(verification_url, str)
        and verification_url
    ):
        raise DeviceLoginError(
            f"Yandex ID's answer from {url} lacks device_code, user_code or "
            "verification_url. Check oauth_url."
        )
    code = DeviceCode(
        user_code=user_code,
        verification_url=verification_url,
        interval=_positive_int(body, "interval", 5),
        expires_in=_positive_int(body, "expires_in", 300),
    )
    return device_code, code


def device_login(
    client_id: str,
    client_secret: str,
    *,
    on_code: Callable[[DeviceCode], None] | None = None,
    device_id: str | None = None,
    device_name: str | None = None,
    oauth_url: str = OAUTH_URL,
    timeout: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Token:
    """Run Yandex ID's device-code flow and return the new token.

    Asks Yandex ID for a code, hands it to ``on_code`` (default: print the URL and
    code to stderr), then polls the token endpoint at the interval the server asked
    for (``sleep`` does the waiting) until the user confirms. Returns a
    :class:`~delivery_auth.Token` whose ``access_token`` and ``refresh_token`` go to
    :class:`YandexCourierAuth`. Raises :class:`DeviceLoginError` when the code
    expires (``expired_token``) or the user denies access (``access_denied``), and
    :class:`~delivery_auth.InvalidClientError` for wrong app credentials.

    Example::

        token = device_login(client_id, client_secret)
        auth = YandexCourierAuth(token.access_token, refresh_token=token.refresh_token,
                                 client_id=client_id, client_secret=client_secret)
    """
    client_id = _check_client_id(client_id)
    if not isinstance(client_secret, str) or not client_secret:
        raise ValueError("client_secret must be the non-empty client secret of your Yandex ID app")
    base = check_endpoint_url(oauth_url, "oauth_url").rstrip("/")
    form = {"client_id": client_id}
    if device_id:
        form["device_id"] = device_id
    if device_name:
        form["device_name"] = device_name
    device_code, code = _request_device_code(base, form, timeout)
    (on_code or _print_code)(code)
    fetcher = TokenFetcher(f"{base}/token", client_id, client_secret, timeout=timeout)
    interval = code.interval
    waited = 0.0
    try:
        while True:
            try:
                return fetcher.fetch(grant_type="device_code", code=device_code)
            except InvalidClientError:
                raise
            except TokenRequestError as exc:
                if exc.error == "slow_down":
                    interval += _SLOW_DOWN_STEP
                elif exc.error == "expired_token":
                    raise _expired(code) from None
                elif exc.error == "access_denied":
                    raise DeviceLoginError(
                        "The user denied access on the Yandex ID page: no token was "
                        "issued. Run device_login again and choose to allow access.",
                        error="access_denied",
                    ) from None
                elif exc.error != "authorization_pending":
                    raise
            if waited + interval > code.expires_in:
                raise _expired(code)
            sleep(interval)
            waited += interval
    finally:
        fetcher.close()


def _expired(code: DeviceCode) -> DeviceLoginError:
    return DeviceLoginError(
        f"The code {code.user_code} expired before it was confirmed (it was valid "
        f"{code.expires_in} s). Run device_login again and enter the new code at "
        f"{code.verification_url} sooner.",
        error="expired_token",
    )


#: What :func:`renew_from_env` reads: the refresh token and the app that issued it.
RENEWAL_VARIABLES = ("YANDEX_REFRESH_TOKEN", "YANDEX_CLIENT_ID", "YANDEX_CLIENT_SECRET")


def renew_from_env(token_url: str | None = None, environ: Mapping[str, str] | None = None) -> Token:
    """A new token from Yandex ID's ``refresh_token`` grant, with ``YANDEX_REFRESH_TOKEN``,
    ``YANDEX_CLIENT_ID`` and ``YANDEX_CLIENT_SECRET`` (``delivery-auth token yandex``).

    Raises :class:`~delivery_auth.ConfigurationError` naming the unset variables, and
    :class:`~delivery_auth.TokenRevokedError` when Yandex ID refuses the refresh token.

    Example::

        token = renew_from_env()
        auth = YandexCourierAuth(token.access_token)
    """
    values = read_env("renew_from_env", RENEWAL_VARIABLES, environ=environ)
    fetcher = TokenFetcher(
        token_url or TOKEN_URL, values["YANDEX_CLIENT_ID"], values["YANDEX_CLIENT_SECRET"]
    )
    try:
        return fetcher.fetch(grant_type="refresh_token", refresh_token=values[RENEWAL_VARIABLES[0]])
    except TokenRequestError as exc:
        if exc.error != "invalid_grant" or isinstance(exc, InvalidClientError):
            raise
        raise TokenRevokedError(
            "Yandex ID refused YANDEX_REFRESH_TOKEN (invalid_grant): it was revoked or has "
            "expired. Get a new one with device_login."
        ) from None
    finally:
        fetcher.close()
