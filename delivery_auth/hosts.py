"""Where credentials may travel: transport security and ``allowed_hosts``.

A token is attached only over https or to a loopback host, only to hosts that
``allowed_hosts`` admits, and a failed request is retried only against the origin
it was authorised for.

Host names are compared in their ASCII (IDNA) form, the form requests, httpx and httpx2
put on the wire: ``bücher.example`` in ``allowed_hosts`` admits ``xn--bcher-kva.example``.

Example::

    policy = HostPolicy(["api.example.com", "*.bringg.com", "127.0.0.0/8"])
    policy.origin_for("https://eu2-admin-api.bringg.com/oauth/token")
    # -> 'https://eu2-admin-api.bringg.com:443'
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Generic, TypeVar
from urllib.parse import SplitResult, urlsplit

import idna

from .errors import ConfigurationError, DisallowedHostError, InsecureTransportError

__all__ = [
    "LOOPBACK_HOSTS",
    "ORIGIN_CACHE_LIMIT",
    "HostPolicy",
    "RecentlyUsed",
    "is_loopback",
    "origin_of",
]

#: Patterns that admit every loopback address; providers add them to their defaults.
LOOPBACK_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.0/8", "::1")

_DEFAULT_PORTS = {"http": 80, "https": 443}

#: How many origins one auth object remembers verdicts for (per kind of URL). Beyond
#: that the least recently used are forgotten, one at a time, and checked again when
#: they come back; a round robin over more origins than this misses every time.
ORIGIN_CACHE_LIMIT = 2048

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A character no IP address or network can contain: such a pattern is a host name.
_NOT_AN_ADDRESS = re.compile(r"[^0-9a-f.:/\[\]]")

K = TypeVar("K")
#: The entries of every RecentlyUsed before its first put (never written to).
_NOTHING_YET: OrderedDict[object, object] = OrderedDict()
V = TypeVar("V")


class RecentlyUsed(Generic[K, V]):
    """A bounded map that forgets its least recently used entry first (an LRU cache).

    Safe to share between threads: a lookup racing with an eviction finds the entry or
    does not, never more. Values must not be ``None`` (``None`` means "not there").

    Example::

        seen = RecentlyUsed[str, str](2)
        seen.put("a", "1"); seen.put("b", "2"); seen.get("a"); seen.put("c", "3")
        seen.get("b")   # None: "b" was the least recently used
    """

    __slots__ = ("entries", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: in order of use, the least recent first; hot paths may read it directly
        #: (``get`` then ``move_to_end``) to save a call. Until the first ``put`` it is a
        #: shared empty map that nobody writes to: most objects never need their caches.
        self.entries: OrderedDict[K, V] = _NOTHING_YET  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recently used), or ``None``."""
        entries = self.entries
        value = entries.get(key)
        if value is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs more than this whole lookup
                entries.move_to_end(key)
            except KeyError:  # pragma: no cover - evicted by another thread meanwhile
                pass
        return value

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key`` as the most recently used; forget the least
        recently used entries beyond ``limit``."""
        entries = self.entries
        if entries is _NOTHING_YET:  # two threads may both get here: one map wins, fine
            entries = self.entries = OrderedDict()
        entries.pop(key, None)  # a new entry goes to the end; an old one must move there
        entries[key] = value
        while len(entries) > self.limit:
            try:
                entries.popitem(last=False)
            except KeyError:  # pragma: no cover - emptied by another thread meanwhile
                break


def ascii_host(host: str) -> str:
    """``host`` in the ASCII form the HTTP clients send (IDNA 2008 with UTS #46 mapping).

    ASCII names are returned as they are. Raises :class:`idna.IDNAError` (a
    ``UnicodeError``, so a ``ValueError``) for a name that has no IDNA form.

    Example::

        ascii_host("bücher.example")  # 'xn--bcher-kva.example'
    """
    if host.isascii():
        return host
    # requests encodes hosts with idna.encode(host, uts46=True) and httpx with the same
    # package, so this is the name they put on the wire.
    return idna.encode(host, uts46=True).decode("ascii")


def _parse(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:  # its message may quote the netloc, user info included
        raise ValueError(
            f"{_safe_url(url)!r} is not a valid URL; pass a URL such as "
            "'https://api.example.com/path'."
        ) from None


def _split(url: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) of an absolute URL, host lower-cased, in ASCII (IDNA)
    form, without brackets."""
    parts = _parse(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if not host or scheme not in _DEFAULT_PORTS:
        raise ValueError(
            f"{_safe_url(url)!r} is not an absolute http(s) URL; "
            "pass a URL such as 'https://api.example.com/path'."
        )
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:  # the port text may be part of a password ("user:pw/x@host")
        raise ValueError(
            f"{_safe_url(url)!r} has an invalid port: write it as digits from 1 to 65535."
        ) from None
    try:
        host = ascii_host(host)
    except UnicodeError:
        raise ValueError(
            f"{_safe_url(url)!r} has a host name that is not a valid internationalised "
            "domain name (IDNA)."
        ) from None
    return scheme, host, port


def _safe_url(url: str) -> str:
    """The URL without user info, query string or fragment, fit for an error message.

    Works on the raw text, so that a malformed URL (a password holding ``/``, ``?`` or
    ``#``) cannot leak part of its user info: everything up to the last ``@`` after the
    scheme is blanked out.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.split("?")[0].split("#")[0].rpartition("@")[2]
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return f"{scheme}://{rest.split('?')[0].split('#')[0]}"


def origin_of(url: str) -> str:
    """Normalised ``scheme://host:port`` of ``url``.

    Example::

        origin_of("https://API.example.com/x?y=1")  # 'https://api.example.com:443'
    """
    return _origin(*_split(url))


def _origin(scheme: str, host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """Decides whether a URL may receive credentials.

    ``allowed_hosts`` entries are exact host names (``api.example.com``), suffix
    patterns (``*.example.com``: any sub-domain, not the bare domain), IP addresses
    or networks (``127.0.0.0/8``). ``None`` admits every host (transport rules still
    apply).
    """

    __slots__ = ("_exact", "_networks", "_origins", "_parsed", "_suffixes", "patterns")

    def __init__(self, allowed_hosts: Iterable[str] | str | None = None) -> None:
        self.patterns: tuple[str, ...] | None
        self._exact: frozenset[str]
        self._suffixes: tuple[str, ...]
        self._networks: tuple[IPNetwork, ...]
        # raw "scheme://netloc" prefix -> normalised origin, for URLs already admitted
        self._origins: RecentlyUsed[str, str] = RecentlyUsed(ORIGIN_CACHE_LIMIT)
        # httpx/httpx2 parsed (scheme, userinfo, host, port) -> origin, for URLs admitted
        self._parsed: RecentlyUsed[tuple[object, ...], str] = RecentlyUsed(ORIGIN_CACHE_LIMIT)
        if allowed_hosts is None:
            self.patterns = None
            self._exact, self._suffixes, self._networks = frozenset(), (), ()
            return
        if isinstance(allowed_hosts, str):
            allowed_hosts = [allowed_hosts]
        patterns = tuple(allowed_hosts)
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.strip():
                raise ValueError(
                    f"allowed_hosts entries must be non-empty strings such as "
                    f"'api.example.com' or '*.example.com', got {pattern!r}"
                )
        self.patterns = patterns
        self._exact, self._suffixes, self._networks = _compile(patterns)

    def admits(self, host: str) -> bool:
        """True when ``host`` matches ``allowed_hosts`` (always true without a list)."""
        if self.patterns is None:
            return True
        host = host.strip("[]").rstrip(".").lower()
        try:
            host = ascii_host(host)
        except UnicodeError:
            return False
        if host in self._exact or host.endswith(self._suffixes):
            return True
        if self._networks:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                return False
            return any(address in network for network in self._networks)
        return False

    def origin_for(self, url: str) -> str:
        """Check ``url`` may carry credentials and return its normalised origin.

        Raises :class:`InsecureTransportError` for plain http to a host that is not
        loopback and :class:`DisallowedHostError` for a host outside ``allowed_hosts``.
        """
        return self.admit(url)[1]

    def admit(self, url: str) -> tuple[str, str]:
        """:meth:`origin_for`, also returning the URL's ``scheme://netloc`` prefix as written.

        Any URL that starts with that prefix followed by ``/`` or nothing has the same
        origin and the same verdict (what follows the netloc cannot change the host).
        """
        # Fast path: the scheme://netloc prefix of a URL we already admitted.
        end = url.find("/", url.find("//") + 2)
        prefix = url if end < 0 else url[:end]
        cached = self._origins.get(prefix)
        if cached is not None:
            return prefix, cached
        scheme, host, port = _split(url)  # the one parse of a miss
        if scheme != "https" and not is_loopback(host):
            raise InsecureTransportError(
                f"Refusing to send credentials over plain http to {host!r}: use an "
                "https:// URL (plain http is allowed only for loopback hosts)."
            )
        if not self.admits(host):
            raise DisallowedHostError(
                f"Refusing to send credentials to {_display(host)}: it is not in allowed_hosts "
                f"{list(self.patterns or ())!r}. If this host is yours, add it with "
                "allowed_hosts=[...]."
            )
        origin = _origin(scheme, host, port)
        self._origins.put(prefix, origin)
        return prefix, origin

    def origin_for_url(self, url: object) -> str:
        """:meth:`origin_for` for an ``httpx.URL`` or ``httpx2.URL``, without ``str(url)``.

        Formatting an httpx URL costs more than the rest of the auth step, so admitted
        URLs are remembered by their parsed ``(scheme, userinfo, host, port)``, which
        decides everything :meth:`origin_for` looks at. Other objects go through
        ``str()``.
        """
        reference = getattr(url, "_uri_reference", None)  # httpx's parsed URL tuple
        if not isinstance(reference, tuple):
            return self.origin_for(str(url))
        key = reference[:4]
        origin = self._parsed.get(key)
        if origin is None:
            origin = self.origin_for(str(url))
            self._parsed.put(key, origin)
        return origin


@functools.lru_cache(maxsize=64)
def _compile(
    patterns: tuple[str, ...],
) -> tuple[frozenset[str], tuple[str, ...], tuple[IPNetwork, ...]]:
    """``allowed_hosts`` (non-empty strings) as exact names, ``.suffixes`` and IP networks.

    Remembered per tuple of patterns: providers build every object with the same few
    defaults, and parsing IP networks (and failing to, for host names) was a good part
    of what building an object cost. Bad patterns raise every time (an exception is
    never cached).
    """
    exact: set[str] = set()
    suffixes: list[str] = []
    networks: list[IPNetwork] = []
    for pattern in patterns:
        pattern = pattern.strip().lower().rstrip(".")
        if pattern.startswith("*."):
            suffixes.append("." + _ascii_pattern(pattern[2:], pattern))
            continue
        # Only a pattern made of digits, hex letters, dots, colons and "/[]" (before an
        # IPv6 "%scope") can be an address: skip the costly failed parse for host names.
        if not _NOT_AN_ADDRESS.search(pattern.partition("%")[0]):
            try:
                networks.append(ipaddress.ip_network(pattern.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
        if "/" in pattern or "*" in pattern or ":" in pattern:
            raise ValueError(
                f"allowed_hosts entry {pattern!r} is not a host name, '*.suffix' "
                "pattern, IP address or network; write e.g. 'api.example.com'."
            )
        exact.add(_ascii_pattern(pattern, pattern))
    return frozenset(exact), tuple(suffixes), tuple(networks)


def _ascii_pattern(name: str, pattern: str) -> str:
    try:
        return ascii_host(name)
    except UnicodeError as exc:
        raise ValueError(
            f"allowed_hosts entry {pattern!r} is not a valid internationalised host name "
            f"(IDNA: {exc}); write it as the domain is registered, e.g. 'bücher.example'."
        ) from None


def _display(host: str) -> str:
    """``host`` quoted, with its Unicode form when it is an IDNA name."""
    if "xn--" in host:
        try:
            readable = idna.decode(host)
        except UnicodeError:
            readable = host
        if readable != host:
            return f"{host!r} ({readable})"
    return repr(host)


def check_endpoint_url(url: str, what: str) -> str:
    """Validate a token or API endpoint URL given at construction; return it unchanged.

    Refuses plain http to a host that is not loopback, and any user info
    (``https://user:password@host/``): a password there would end up in logs, ``repr``
    and error messages, so credentials go in their own parameters.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"{what} must be an https:// URL string, got {type(url).__name__}")
    if url in _ENDPOINTS_SEEN:  # many auth objects share one token URL: parse it once
        return url
    _check_endpoint(url, what)
    if len(_ENDPOINTS_SEEN) < 1024:
        _ENDPOINTS_SEEN.add(url)
    return url


#: Endpoint URLs that passed :func:`check_endpoint_url` (a verdict that never changes).
_ENDPOINTS_SEEN: set[str] = set()


def _check_endpoint(url: str, what: str) -> None:
    if "@" in _parse(url).netloc:
        raise ConfigurationError(
            f"{what} {_safe_url(url)!r} contains a user name or password (user:password@). "
            "It would show in logs and error messages: remove it, and pass the client "
            "credentials as client_id and client_secret (or other fields in token_params)."
        )
    scheme, host, _port = _split(url)
    if scheme != "https" and not is_loopback(host):
        raise InsecureTransportError(
            f"{what} {_safe_url(url)!r} uses plain http: the client secret would travel "
            "unencrypted. Use https:// (plain http is allowed only for loopback hosts)."
        )
