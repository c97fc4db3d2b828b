"""What an emulator page says about itself (:class:`Page`), and the pages of the registry.

Each provider's emulator page (the module named by its spec's ``emulator_page``) exports
one :data:`PAGE`: where its token endpoint and a protected resource are, the test
credentials it accepts, how it answers a rejected credential, its own settings and the
checks it adds to ``delivery-auth demo``. The application's routing, the server's URLs,
``Emulator.auth()``/``env()`` and the demo read it from here and never name a provider.

Example::

    page = pages()["dhl"]
    page.token_path                  # '/auth/v4/accesstoken'
    page.rejection.status            # 401
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from werkzeug.wrappers import Request, Response

    from .state import EmulatorState

__all__ = [
    "Credentials",
    "DemoCheck",
    "DemoPlan",
    "Page",
    "PageField",
    "Rejection",
    "Setting",
    "check_provider",
    "page_of",
    "pages",
]

Handler = Callable[["Request", "EmulatorState", str], "Response"]
T = TypeVar("T")


@dataclass(frozen=True)
class Credentials:
    """Fixed test credentials the emulator accepts. They are not secrets of any real account.

    ``token`` and ``refresh_token``: a pre-issued access token (valid until revoked) and
    the refresh token that replaces it, for providers whose users paste a token.
    ``extra``: any other credential a provider takes (a username, a key id), by the name
    its spec's :class:`~delivery_auth.providers.spec.EnvVar` ``field`` gives it.

    Example::

        Credentials("emu-id", "emu-secret", extra={"username": "user-valid"}).value("username")
    """

    client_id: str
    client_secret: str
    token: str | None = None
    refresh_token: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str | None:
        """The credential called ``name`` (an attribute, else an ``extra`` entry), or ``None``."""
        if name in ("client_id", "client_secret", "token", "refresh_token"):
            found: str | None = getattr(self, name)
            return found
        return self.extra.get(name)

    def __repr__(self) -> str:
        # Test values, but code that prints credentials should look the same everywhere.
        return f"Credentials(client_id={self.client_id!r}, client_secret='***')"


@dataclass(frozen=True)
class Rejection:
    """How a page answers a credential it no longer accepts.

    ``status`` is the HTTP status (by default), ``text`` says it for people, and
    ``body_says_so`` (optional) recognises the answer's decoded JSON body.
    """

    status: int
    text: str
    body_says_so: Callable[[Any], bool] | None = None

    def matches(self, status: int, body: Any) -> bool:
        """Whether an answer looks like this rejection (``body`` ``None``: not read)."""
        if status != self.status:
            return False
        return body is None or self.body_says_so is None or self.body_says_so(body)


@dataclass(frozen=True)
class Setting:
    """One knob of the emulator: its default and the check of a new value.

    ``check`` returns the value to store or raises a ``ValueError`` naming the setting.
    """

    default: Any
    check: Callable[[Any], Any]


@dataclass(frozen=True)
class DemoCheck:
    """A row a page adds to ``delivery-auth demo``: one call and what must come of it.

    ``options``: ``None`` calls with the provider's main auth object (right after the
    revocation row); otherwise a new auth object built with these options (after the
    other rows). ``settings`` are set on the emulator for the call only. ``status``:
    the expected final status, not resent (``None``: the call must be served). ``path``:
    another resource below the page's prefix (same method and body), e.g. one that needs
    a second token.
    """

    what: str
    token_requests: int
    options: Mapping[str, Any] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    status: int | None = None
    path: str | None = None


@dataclass(frozen=True)
class DemoPlan:
    """How ``delivery-auth demo`` exercises a page.

    ``token_option``: the constructor option that takes a token users already have (the
    demo then starts from a fresh one, which is renewed once revoked) or ``None`` (the
    auth object fetches tokens). ``options`` go to every auth object; ``revoked`` and
    ``first`` are the texts of those rows; ``extra`` the page's own rows.

    ``renewable``: ``False`` for credentials that cannot be renewed (an API key, a
    password): the revocation row then expects the rejection back as it came, not
    resent, with no token request. ``revoke``: how the revocation row rejects the
    credential: ``"token"`` revokes the auth object's token on the emulator,
    ``"fault"`` makes the API answer its rejection once (for credentials the emulator
    does not hold, such as per-request signatures). ``refresh_ahead``: whether the
    "past refresh time" row applies (``False`` when nothing ages: signatures).
    """

    revoked: str
    options: Mapping[str, Any] = field(default_factory=dict)
    token_option: str | None = None
    first: str = "first call fetched a token"
    extra: tuple[DemoCheck, ...] = ()
    renewable: bool = True
    revoke: str = "token"
    refresh_ahead: bool = True


@dataclass(frozen=True)
class Page:
    """What one emulator page serves and how it behaves, in one place.

    Attributes:
        name: the provider's short name, also its URL prefix (``/dhl/...``).
        handle: ``handle(request, state, path)`` answers a request below the prefix.
        credentials: the fixed test credentials the page accepts.
        token_path: its token endpoint, below the prefix (``None``: it has none, the
            credentials are sent as they are, or signed, or minted by the client).
        resource_path: a protected resource that answers 200 to a good credential.
        rejection: how a rejected credential is answered.
        served: whether a decoded 200 body is the API's notion of success.
        resource_method: ``"GET"``, or ``"POST"`` for GraphQL.
        resource_body: the JSON body to send to ``resource_path`` (or ``None``).
        endpoint_paths: constructor option -> path below the prefix (``token_url`` is
            ``token_path`` unless given).
        settings: the page's own knobs (``emu.<name> = value``).
        mint: makes a token value from ``(client_id, lifetime, server_time)``; ``None``:
            an opaque random string.
        tokens_expire: ``False`` when tokens live until revoked.
        demo: how ``delivery-auth demo`` exercises the page.
        exports: extra names ``delivery_auth.emulator`` offers (kept for compatibility).
    """

    name: str
    handle: Handler
    credentials: Credentials
    token_path: str | None
    resource_path: str
    rejection: Rejection
    served: Callable[[Any], bool]
    demo: DemoPlan
    resource_method: str = "GET"
    resource_body: Any = None
    endpoint_paths: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, Setting] = field(default_factory=dict)
    mint: Callable[[str, float, float], str] | None = None
    tokens_expire: bool = True
    exports: Mapping[str, Any] = field(default_factory=dict)

    def endpoint_path(self, option: str) -> str:
        """The path of constructor option ``option`` (``token_url``: the token path)."""
        if option in self.endpoint_paths:
            return self.endpoint_paths[option]
        if option == "token_url" and self.token_path is not None:
            return self.token_path
        raise KeyError(f"the {self.name} emulator page has no endpoint for {option!r}")


def pages() -> dict[str, Page]:
    """Every registered provider's page by name, in registration order."""
    from ..providers.spec import registry

    found: dict[str, Page] = {}
    for name, spec in registry().items():
        page = getattr(importlib.import_module(spec.emulator_page), "PAGE", None)
        if not isinstance(page, Page):
            raise TypeError(f"{spec.emulator_page} has no PAGE (an emulator Page)")
        found[name] = page
    return found


def check_provider(provider: str) -> str:
    """Return ``provider`` if the emulator plays it, else raise a ``ValueError`` listing them."""
    names = list(pages())
    if provider not in names:
        raise ValueError(f"unknown provider {provider!r}; the emulator plays {', '.join(names)}")
    return provider


def page_of(provider: str) -> Page:
    """The page of ``provider`` (a ``ValueError`` lists the known ones)."""
    return pages()[check_provider(provider)]


class PageField(Mapping[str, T], Generic[T]):
    """A read-only ``provider -> value`` view of one attribute of every page, read when
    used (so a provider registered later shows up).

    Example::

        TOKEN_PATHS = PageField(lambda page: page.token_path)
        TOKEN_PATHS["dhl"]               # '/auth/v4/accesstoken'
    """

    def __init__(self, read: Callable[[Page], T]) -> None:
        self._read = read

    def __getitem__(self, provider: str) -> T:
        found = pages().get(provider)
        if found is None:
            raise KeyError(provider)
        return self._read(found)

    def __iter__(self) -> Iterator[str]:
        return iter(pages())

    def __len__(self) -> int:
        return len(pages())

    def __repr__(self) -> str:
        return repr(dict(self))
