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

import ipaddress
from collections.abc import Iterable
from urllib.parse import SplitResult, urlsplit

import idna

from .errors import ConfigurationError, DisallowedHostError, InsecureTransportError

__all__ = ["LOOPBACK_HOSTS", "HostPolicy", "is_loopback", "origin_of"]

#: Patterns that admit every loopback address; providers add them to their defaults.
LOOPBACK_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.0/8", "::1")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ORIGIN_CACHE_LIMIT = 512

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    scheme, host, port = _split(url)
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
        self._exact: frozenset[str] = frozenset()
        self._suffixes: tuple[str, ...] = ()
        self._networks: tuple[IPNetwork, ...] = ()
        # raw "scheme://netloc" prefix -> normalised origin, for URLs already admitted
        self._origins: dict[str, str] = {}
        # httpx/httpx2 parsed (scheme, userinfo, host, port) -> origin, for URLs admitted
        self._parsed: dict[tuple[object, ...], str] = {}
        if allowed_hosts is None:
            self.patterns = None
            return
        if isinstance(allowed_hosts, str):
            allowed_hosts = [allowed_hosts]
        patterns = tuple(allowed_hosts)
        exact: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern.strip():
                raise ValueError(
                    f"allowed_hosts entries must be non-empty strings such as "
                    f"'api.example.com' or '*.example.com', got {pattern!r}"
                )
            pattern = pattern.strip().lower().rstrip(".")
            if pattern.startswith("*."):
                suffixes.append("." + _ascii_pattern(pattern[2:], pattern))
                continue
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
        self.patterns = patterns
        self._exact = frozenset(exact)
        self._suffixes = tuple(suffixes)
        self._networks = tuple(networks)

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
        scheme, host, _port = _split(url)
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
        origin = origin_of(url)
        if len(self._origins) >= _ORIGIN_CACHE_LIMIT:
            self._origins.clear()
        self._origins[prefix] = origin
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
            if len(self._parsed) >= _ORIGIN_CACHE_LIMIT:
                self._parsed.clear()
            self._parsed[key] = origin
        return origin


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
    return url
