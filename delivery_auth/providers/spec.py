"""One description per provider (:class:`ProviderSpec`) and the registry that collects them.

Everything delivery-auth knows about a provider lives in that provider's module and its
emulator page. The command line, the emulator, the demo, the pytest plugin and the tests
read it from here and never name a provider themselves, so adding one is: its module
(exporting ``SPEC``), its emulator page, one line in :data:`REGISTERED`, and its tests.

Example::

    from delivery_auth.providers.spec import registry

    spec = registry()["dhl"]
    spec.title                                   # 'DHL eCommerce'
    auth = spec.from_env(token_url="http://127.0.0.1:8080/dhl/auth/v4/accesstoken")
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .base import check_overrides, keyword_options, read_env

if TYPE_CHECKING:
    from ..auth import DeliveryAuth
    from ..token import Token

__all__ = [
    "EXTRA_PROVIDERS_VARIABLE",
    "REGISTERED",
    "EnvVar",
    "ProviderSpec",
    "TokenCommand",
    "get",
    "register",
    "registry",
    "unregister",
    "verify_by_token",
]


@dataclass(frozen=True)
class EnvVar:
    """An environment variable ``from_env`` reads and the constructor argument it fills.

    ``field`` names the emulator's test credential that fits it (``client_id``,
    ``client_secret``, ``token``, ``refresh_token``, or a name of its own that the
    emulator page's ``Credentials.extra`` fills), or ``None`` when the variable is a
    setting rather than a credential (a region, an environment name).

    Example::

        EnvVar("DHL_ECOMMERCE_CLIENT_ID", "client_id", required=True, field="client_id")
    """

    name: str
    argument: str
    required: bool = False
    field: str | None = None
    help: str = ""


def verify_by_token(auth: Any, api_url: str | None = None) -> str:
    """The check of a client-credentials provider: getting a token is the check.

    Returns what happened, to follow the provider's title (see :attr:`ProviderSpec.verify`);
    the token endpoint's refusal is raised as the fetch raises it
    (:class:`~delivery_auth.InvalidClientError`, ...). ``api_url`` is not used.

    Example::

        verify_by_token(DHLeCommerceAuth(client_id, client_secret))
        # 'issued a token (lifetime 3600 s) at https://api.dhlecs.com/auth/v4/accesstoken.'
    """
    token = auth.get_token()
    lifetime = "unknown" if token.lifetime is None else f"{token.lifetime:.0f} s"
    return f"issued a token (lifetime {lifetime}) at {auth.token_url}."


@dataclass(frozen=True)
class TokenCommand:
    """How ``delivery-auth token`` gets one token of a provider.

    By default it builds the auth object from the environment (``from_env``) with the
    command's options and asks it for its token.

    Attributes:
        help: one sentence for ``delivery-auth token --help`` when the provider differs
            from the default (``"Delivery Tracker uses OAuth2 here"``).
        options: constructor options the command always sets (``{"method": "oauth2"}``).
        refusal: what to say when ``-o`` asks for another value of one of ``options``.
        renew: instead of the auth object, ``renew(token_url, environ) -> Token`` gets
            the token (Yandex renews it with a refresh token); ``token_url`` ``None``
            means the provider's own. It raises :class:`ConfigurationError` naming
            ``missing`` variables; the command then takes no ``-o`` options.
        needs: said after the missing variables' names when ``renew`` lacks some.
        unavailable: why the provider has no token to print (its requests are signed):
            the command says so and exits 2.
    """

    help: str = ""
    options: Mapping[str, object] = field(default_factory=dict)
    refusal: str = ""
    renew: Callable[[str | None, Mapping[str, str] | None], Token] | None = None
    needs: str = ""
    unavailable: str = ""


@dataclass(frozen=True)
class ProviderSpec:
    """What delivery-auth knows about one provider, in one place.

    Attributes:
        name: the short name used by the CLI, the emulator and the registry (``"dhl"``).
        title: the name people use (``"DHL eCommerce"``).
        auth_class: the :class:`~delivery_auth.DeliveryAuth` subclass users construct.
        env: the environment variables ``from_env`` reads, in the order to document them.
        default_hosts: where its credentials may go by default (``allowed_hosts``).
        failure_signal: how its API says "this credential is no longer accepted", for
            people (``"HTTP 401"``); the code that detects it is the auth class's.
        emulator_page: dotted path of its emulator page module (imported only when the
            emulator runs, so the library never imports Werkzeug).
        endpoints: the constructor options that name an endpoint URL and that the
            emulator, the CLI (``--token-url``, ``--api-url``) and tests may point elsewhere.
        verify: ``verify(auth, api_url)`` checks the credentials of an auth object of
            this provider against the real API (or the emulator) and returns what
            happened, worded to follow the title (``"issued a token (lifetime 3600 s) at
            URL."``: the CLI prints ``OK: <title> <that>``); it raises a
            :class:`~delivery_auth.DeliveryAuthError` when they are refused. ``api_url``
            ``None``: the auth object's own. Default :func:`verify_by_token`: getting a
            token is the check.
        verify_help: what ``verify`` does, for ``delivery-auth check --help``.
        api_url_help: what ``--api-url`` means for it, when ``api_url`` is an endpoint.
        token: how ``delivery-auth token`` gets a token (:class:`TokenCommand`).
        cli_commands: dotted path of a module whose ``add_commands(commands, parents)``
            adds the provider's own subcommands to ``delivery-auth`` (Yandex: ``yandex
            login``), or ``None``.
        cli_wording: ``(regular expression, replacement)`` pairs that rewrite the Python
            API's advice in its messages into the command line's words
            (``'method="oauth2"'`` -> ``"-o method=oauth2"``).

    Example::

        SPEC = ProviderSpec(
            name="acme", title="Acme", auth_class=AcmeAuth,
            env=(EnvVar("ACME_CLIENT_ID", "client_id", required=True, field="client_id"),
                 EnvVar("ACME_CLIENT_SECRET", "client_secret", required=True,
                        field="client_secret")),
            default_hosts=("*.acme.example",), failure_signal="HTTP 403 TOKEN_EXPIRED",
            emulator_page="tests.acme_page",
        )
    """

    name: str
    title: str
    auth_class: type[DeliveryAuth]
    env: tuple[EnvVar, ...]
    default_hosts: tuple[str, ...]
    failure_signal: str
    emulator_page: str
    endpoints: tuple[str, ...] = ("token_url",)
    verify: Callable[[Any, str | None], str] = verify_by_token
    verify_help: str = "a token request"
    api_url_help: str = ""
    token: TokenCommand = TokenCommand()
    cli_commands: str | None = None
    cli_wording: tuple[tuple[str, str], ...] = ()

    def environment_for(self, credentials: Any) -> dict[str, str]:
        """The variables ``from_env`` reads, filled from the emulator's test credentials
        (:class:`~delivery_auth.emulator.page.Credentials`); settings are left out."""
        values: dict[str, str] = {}
        for var in self.env:
            value = credentials.value(var.field) if var.field else None
            if isinstance(value, str) and value:
                values[var.name] = value
        return values

    def arguments_from_env(
        self, cls: type, environ: Mapping[str, str] | None, overrides: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The constructor arguments of ``cls.from_env``: the value of each variable of
        :attr:`env` that is set, under its argument's name, then ``overrides`` (options
        only, so they win over optional variables and never replace a credential).

        Raises :class:`~delivery_auth.ConfigurationError` naming every required variable
        that is unset, then :class:`TypeError` for an option ``cls`` does not take.

        Example::

            def from_env(cls, environ=None, **overrides):
                return cls(**SPEC.arguments_from_env(cls, environ, overrides))
        """
        values = read_env(
            cls.__name__,
            [var.name for var in self.env if var.required],
            [var.name for var in self.env if not var.required],
            environ,
        )
        check_overrides(cls, overrides)
        return {var.argument: values[var.name] for var in self.env if var.name in values} | dict(
            overrides
        )

    def from_env(self, environ: Mapping[str, str] | None = None, **overrides: Any) -> Any:
        """Build the auth object from the environment (the class's own ``from_env``)."""
        from_env: Callable[..., Any] = getattr(self.auth_class, "from_env")  # noqa: B009
        return from_env(environ, **overrides)

    def options(self) -> tuple[str, ...]:
        """The keyword options of the auth class's constructor, in signature order
        (what ``from_env`` overrides and ``delivery-auth -o NAME=VALUE`` may set)."""
        return keyword_options(self.auth_class)

    def variables(self, argument: str) -> str | None:
        """The environment variable that fills constructor argument ``argument``."""
        return next((var.name for var in self.env if var.argument == argument), None)

    def page(self) -> Any:
        """The provider's emulator page module (imports Werkzeug)."""
        return importlib.import_module(self.emulator_page)


#: Dotted paths of the specs delivery-auth ships: one line per provider.
REGISTERED: tuple[str, ...] = (
    "delivery_auth.providers.tracker:SPEC",
    "delivery_auth.providers.bringg:SPEC",
    "delivery_auth.providers.dhl:SPEC",
    "delivery_auth.providers.yandex:SPEC",
    "delivery_auth.providers.usps:SPEC",
    "delivery_auth.providers.lalamove:SPEC",
    "delivery_auth.providers.shipengine:SPEC",
    "delivery_auth.providers.shippo:SPEC",
    "delivery_auth.providers.easypost:SPEC",
    "delivery_auth.providers.mydhl:SPEC",
    "delivery_auth.providers.sendcloud:SPEC",
    "delivery_auth.providers.ups:SPEC",
    "delivery_auth.providers.dhl_parcel_de:SPEC",
    "delivery_auth.providers.doordash:SPEC",
    "delivery_auth.providers.fedex:SPEC",
    "delivery_auth.providers.uber_direct:SPEC",
)

_lock = threading.Lock()
_specs: dict[str, ProviderSpec] | None = None


def _load(path: str) -> ProviderSpec:
    module, _, attribute = path.partition(":")
    spec = getattr(importlib.import_module(module), attribute)
    if not isinstance(spec, ProviderSpec):
        raise TypeError(f"{path} is not a ProviderSpec")
    return spec


#: Extra specs to load, as ``module:ATTRIBUTE`` paths separated by commas: how a process
#: started by a test or a plugin (``delivery-auth demo --provider acme``) learns of them.
EXTRA_PROVIDERS_VARIABLE = "DELIVERY_AUTH_PROVIDERS"


def registry() -> Mapping[str, ProviderSpec]:
    """Every registered provider by short name, in registration order (read-only view).

    The shipped providers come first, then those named in ``$DELIVERY_AUTH_PROVIDERS``,
    then those added with :func:`register`.
    """
    global _specs
    with _lock:
        if _specs is None:
            extra = os.environ.get(EXTRA_PROVIDERS_VARIABLE, "")
            paths = [*REGISTERED, *(p.strip() for p in extra.split(",") if p.strip())]
            specs: dict[str, ProviderSpec] = {}
            for path in paths:
                spec = _load(path)
                specs[spec.name] = spec
            _specs = specs
        return MappingProxyType(_specs)


def get(name: str) -> ProviderSpec:
    """The spec of provider ``name``; a :class:`ConfigurationError` names the known ones."""
    specs = registry()
    try:
        return specs[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown provider {name!r}; known providers: {', '.join(specs)}."
        ) from None


def register(spec: ProviderSpec) -> None:
    """Add a provider at run time (a plugin, or a test's throwaway provider).

    Example::

        register(SPEC)          # then: delivery-auth demo --provider acme
    """
    registry()
    with _lock:
        assert _specs is not None
        if spec.name in _specs and _specs[spec.name] is not spec:
            raise ValueError(f"a provider named {spec.name!r} is already registered")
        _specs[spec.name] = spec


def unregister(name: str) -> None:
    """Remove a provider added with :func:`register` (tests clean up with it)."""
    registry()
    with _lock:
        assert _specs is not None
        _specs.pop(name, None)
