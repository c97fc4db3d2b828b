"""Provider auth objects and environment variables aimed at a running emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .state import CREDENTIALS

if TYPE_CHECKING:
    from .server import Emulator

__all__ = ["build_auth", "environment"]


def build_auth(emu: Emulator, provider: str, options: dict[str, Any]) -> Any:
    """The provider's auth class with the emulator's credentials and endpoints."""
    from ..providers import PROVIDERS

    cls: Any = PROVIDERS[provider]
    known = CREDENTIALS[provider]
    if provider == "yandex":
        options.setdefault("refresh_token", known.refresh_token)
        options.setdefault("client_id", known.client_id)
        options.setdefault("client_secret", known.client_secret)
        options.setdefault("token_url", emu.token_url("yandex"))
        options.setdefault("api_url", emu.url("yandex", ""))
        token = options.pop("token", known.token)
        return cls(token, **options)
    options.setdefault("token_url", emu.token_url(provider))
    client_id = options.pop("client_id", known.client_id)
    client_secret = options.pop("client_secret", known.client_secret)
    return cls(client_id, client_secret, **options)


def environment(provider: str) -> dict[str, str]:
    """The variables ``from_env()`` reads, set to the emulator's public test credentials."""
    known = CREDENTIALS[provider]
    if provider == "tracker":
        return {
            "DELIVERY_TRACKER_CLIENT_ID": known.client_id,
            "DELIVERY_TRACKER_CLIENT_SECRET": known.client_secret,
        }
    if provider == "bringg":
        return {"BRINGG_CLIENT_ID": known.client_id, "BRINGG_CLIENT_SECRET": known.client_secret}
    if provider == "dhl":
        return {
            "DHL_ECOMMERCE_CLIENT_ID": known.client_id,
            "DHL_ECOMMERCE_CLIENT_SECRET": known.client_secret,
        }
    assert known.token is not None
    assert known.refresh_token is not None
    return {
        "YANDEX_COURIER_TOKEN": known.token,
        "YANDEX_REFRESH_TOKEN": known.refresh_token,
        "YANDEX_CLIENT_ID": known.client_id,
        "YANDEX_CLIENT_SECRET": known.client_secret,
    }
