"""Provider auth objects, endpoint URLs and environment variables aimed at an emulator.

Everything here reads the provider's spec (:mod:`delivery_auth.providers.spec`) and its
page (:mod:`.page`): which constructor arguments take which test credential, which
options name an endpoint, and where that endpoint is.

Example::

    endpoints_at("http://127.0.0.1:8080", "dhl")
    # {'token_url': 'http://127.0.0.1:8080/dhl/auth/v4/accesstoken',
    #  'resource_url': 'http://127.0.0.1:8080/dhl/shipping/v4/label'}
    environment("dhl")   # {'DHL_ECOMMERCE_CLIENT_ID': 'emu-dhl-client', ...}
"""

from __future__ import annotations

import inspect
from typing import Any

from .page import page_of

__all__ = ["build_auth", "endpoints_at", "environment"]


def endpoints_at(base_url: str, provider: str) -> dict[str, str]:
    """For an emulator at ``base_url`` (maybe in another process): the URL of every
    endpoint option of ``provider``'s constructor, plus ``resource_url``, a protected
    URL that answers 200 to a good credential (``PAGE.resource_method``)."""
    from ..providers.spec import get

    page = page_of(provider)
    root = f"{base_url.rstrip('/')}/{provider}"
    urls = {option: root + page.endpoint_path(option) for option in get(provider).endpoints}
    urls["resource_url"] = root + page.resource_path
    return urls


def environment(provider: str) -> dict[str, str]:
    """The variables ``from_env()`` reads, set to the emulator's public test credentials."""
    from ..providers.spec import get

    return get(provider).environment_for(page_of(provider).credentials)


def _parameters(cls: type) -> set[str]:
    return {
        name
        for name, parameter in inspect.signature(cls).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }


def build_auth(base_url: str, provider: str, options: dict[str, Any]) -> Any:
    """The provider's auth class with the emulator's credentials and endpoints.

    Each credential variable of the spec fills its constructor argument; each endpoint
    option the constructor takes points at the emulator; ``options`` win over both.
    """
    from ..providers.spec import get

    spec = get(provider)
    known = page_of(provider).credentials
    accepted = _parameters(spec.auth_class)
    arguments: dict[str, Any] = {}
    for var in spec.env:
        value = known.value(var.field) if var.field else None
        if value is not None:
            arguments[var.argument] = value
    for option, url in endpoints_at(base_url, provider).items():
        if option in accepted:
            arguments[option] = url
    arguments.update(options)
    return spec.auth_class(**arguments)
