"""The emulator's settings: one :class:`Settings` object per emulator.

Pages read ``state.settings.<name>``; tests set them through the emulator
(``emu.token_ttl = 30``, ``emu.configure_device_flow(...)``). The settings every
emulator has are :data:`COMMON_SETTINGS`; each page adds its own (``Page.settings``).
A value is checked when it is set, and the error names the setting.

Example::

    settings = Settings(COMMON_SETTINGS, {"token_ttl": 60})
    settings.token_ttl = 0        # ValueError: token_ttl must be > 0, got 0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .page import Setting

__all__ = ["COMMON_SETTINGS", "DEVICE_OUTCOMES", "Settings", "count", "one_of", "seconds"]

#: How a device-code login ends in the emulator.
DEVICE_OUTCOMES: tuple[str, ...] = ("approve", "deny", "expire")


def seconds(name: str, default: float = 0.0, *, positive: bool = False) -> Setting:
    """A setting holding a finite number of seconds (``>= 0``, or ``> 0``)."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
        if value < 0 or (positive and value == 0):
            raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
        return float(value)

    return Setting(default, check)


def count(name: str, default: int) -> Setting:
    """A setting holding an integer ``>= 0``."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        return value

    return Setting(default, check)


def one_of(name: str, choices: tuple[str, ...], default: str) -> Setting:
    """A setting holding one of ``choices``."""

    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        return str(value)

    return Setting(default, check)


def _offset(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"clock_offset must be a finite number of seconds, got {value!r}")
    return float(value)


#: The settings every emulator has; pages add their own (:attr:`Page.settings`).
COMMON_SETTINGS: Mapping[str, Setting] = {
    "token_ttl": seconds("token_ttl", 3600.0, positive=True),  # expires_in of new tokens
    "clock_offset": Setting(0.0, _offset),  # seconds added to the emulator's clock
    # Device-code logins: this many "authorization_pending" polls, then the outcome.
    "device_pending_polls": count("device_pending_polls", 1),
    "device_outcome": one_of("device_outcome", DEVICE_OUTCOMES, "approve"),
    "device_interval": count("device_interval", 1),
    "device_expires_in": count("device_expires_in", 300),
}


class Settings:
    """Every knob of one emulator, in one object: pages read ``state.settings.<name>``,
    tests set them through :class:`~delivery_auth.emulator.Emulator` (``emu.token_ttl = 5``).
    A new value is checked before it is stored; an unknown name is an ``AttributeError``.
    """

    def __init__(self, declared: Mapping[str, Setting], values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_declared", dict(declared))
        object.__setattr__(self, "_values", {})
        self.update(**{name: setting.default for name, setting in declared.items()})
        self.update(**values)

    def __contains__(self, name: object) -> bool:
        return name in self._declared

    def __getattr__(self, name: str) -> Any:
        values: dict[str, Any] = object.__getattribute__(self, "_values")
        if name not in values:
            raise AttributeError(f"the emulator has no setting {name!r}")
        return values[name]

    def __setattr__(self, name: str, value: Any) -> None:
        self.update(**{name: value})

    def update(self, **values: Any) -> None:
        """Check every value, then store them all (nothing is stored if one is wrong)."""
        declared: dict[str, Setting] = object.__getattribute__(self, "_declared")
        checked = {}
        for name, value in values.items():
            if name not in declared:
                raise AttributeError(
                    f"the emulator has no setting {name!r}; it has {', '.join(declared)}"
                )
            checked[name] = declared[name].check(value)
        object.__getattribute__(self, "_values").update(checked)

    def __repr__(self) -> str:
        return f"Settings({object.__getattribute__(self, '_values')!r})"
