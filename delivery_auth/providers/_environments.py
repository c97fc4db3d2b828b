"""Environments of the carriers that have more than one: a name picks the API host."""

from __future__ import annotations

from collections.abc import Mapping

from ..hosts import LOOPBACK_HOSTS

__all__ = ["choose_environment", "hosts_for"]


def choose_environment(carrier: str, environment: object, hosts: Mapping[str, str]) -> str:
    """The normalised name of ``environment`` (case and spaces ignored), or a
    ``ValueError`` naming the valid ones.

    Example::

        choose_environment("UPS", "Test", {"production": "...", "test": "..."})   # 'test'
    """
    key = environment.strip().lower() if isinstance(environment, str) else environment
    if key not in hosts:
        valid = ", ".join(repr(name) for name in hosts)
        raise ValueError(f"Unknown {carrier} environment {environment!r}; valid: {valid}.")
    return str(key)


def hosts_for(host: str) -> tuple[str, ...]:
    """The default ``allowed_hosts`` of one environment: its API host, plus loopback
    (for the emulator and local proxies, as every preset allows)."""
    return (host, *LOOPBACK_HOSTS)
