"""The emulator's counters: what it has seen, per provider, safe to read from any thread.

Example::

    emu.stats.token_requests["dhl"]            # 1
    emu.stats.token_requests.wait_for("dhl", 2, timeout=5)
    emu.stats.token_log[-1].grant_type         # 'client_credentials'
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["Counter", "Stats", "TokenRequestRecord"]


@dataclass(frozen=True)
class TokenRequestRecord:
    """What one token request looked like (never the secret)."""

    provider: str
    grant_type: str | None
    client_auth: str  # "body", "basic", "none" or "both"
    body_format: str  # "form", "multipart", "json", "empty" or "other"
    params: Mapping[str, str]  # the request's fields without client_secret/refresh_token


class Counter:
    """A thread-safe per-provider counter that tests can read and wait on.

    Example::

        emu.stats.token_requests["dhl"]            # 1
        emu.stats.token_requests.total             # 3
        emu.stats.token_requests.wait_for("dhl", 2, timeout=5)
    """

    def __init__(self, condition: threading.Condition, providers: tuple[str, ...]) -> None:
        self._condition = condition
        self._providers = providers
        self._counts: collections.Counter[str] = collections.Counter()

    def __getitem__(self, provider: str) -> int:
        self._check(provider)
        with self._condition:
            return self._counts[provider]

    def __iter__(self) -> Iterator[str]:
        return iter(self._providers)

    def __repr__(self) -> str:
        return f"Counter({self.as_dict()!r})"

    @property
    def total(self) -> int:
        """The sum over every provider."""
        with self._condition:
            return sum(self._counts.values())

    def as_dict(self) -> dict[str, int]:
        """A snapshot, one entry per provider."""
        with self._condition:
            return {name: self._counts[name] for name in self._providers}

    def wait_for(self, provider: str, count: int, timeout: float = 10.0) -> bool:
        """Block until the counter of ``provider`` reaches ``count``; ``False`` on timeout."""
        self._check(provider)
        with self._condition:
            return self._condition.wait_for(lambda: self._counts[provider] >= count, timeout)

    def _check(self, provider: str) -> None:
        if provider not in self._providers:
            raise ValueError(
                f"unknown provider {provider!r}; the emulator plays {', '.join(self._providers)}"
            )

    def _add(self, provider: str) -> None:  # caller holds the condition
        self._counts[provider] += 1
        self._condition.notify_all()

    def _clear(self) -> None:  # caller holds the condition
        self._counts.clear()


class Stats:
    """Thread-safe counters of what the emulator has seen.

    Attributes:
        token_requests: every request to a token endpoint (rejected and faulted ones too).
        tokens_issued: token requests that were answered with a token.
        resource_requests: every request to a protected resource.
        auth_failures: resource requests answered with the provider's auth failure.
        token_log: one :class:`TokenRequestRecord` per token request, oldest first.
    """

    def __init__(self, providers: tuple[str, ...]) -> None:
        self._condition = threading.Condition()
        self.token_requests = Counter(self._condition, providers)
        self.tokens_issued = Counter(self._condition, providers)
        self.resource_requests = Counter(self._condition, providers)
        self.auth_failures = Counter(self._condition, providers)
        self._log: list[TokenRequestRecord] = []

    @property
    def token_log(self) -> list[TokenRequestRecord]:
        with self._condition:
            return list(self._log)

    def __repr__(self) -> str:
        return (
            f"Stats(token_requests={self.token_requests.as_dict()}, "
            f"resource_requests={self.resource_requests.as_dict()})"
        )

    def record_token_request(self, record: TokenRequestRecord) -> None:
        with self._condition:
            self._log.append(record)
            self.token_requests._add(record.provider)

    def count(self, counter: Counter, provider: str) -> None:
        with self._condition:
            counter._add(provider)

    def clear(self) -> None:
        """Set every counter back to zero and forget the log."""
        with self._condition:
            for counter in (
                self.token_requests,
                self.tokens_issued,
                self.resource_requests,
                self.auth_failures,
            ):
                counter._clear()
            self._log.clear()
