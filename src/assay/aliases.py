"""Stable aliases for components named in assay.yaml (checks, splitters, model families).

Config never names an import path: it names an alias that a class registered with
the ``register`` decorator of the role's :class:`AliasTable`.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from assay.errors import ConfigError

__all__ = ["AliasTable"]

T = TypeVar("T", bound=type)


class AliasTable(Generic[T]):
    """An alias -> class table for one role (e.g. ``"check"``)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._entries: dict[str, T] = {}

    def register(self, alias: str) -> Callable[[T], T]:
        """Class decorator: register the class under ``alias`` (unique per role)."""

        def decorate(cls: T) -> T:
            if alias in self._entries and self._entries[alias] is not cls:
                raise ValueError(f"{self.role} alias '{alias}' is already taken")
            self._entries[alias] = cls
            cls.alias = alias  # type: ignore[attr-defined]
            return cls

        return decorate

    def get(self, alias: str, key: str | None = None) -> T:
        """The class registered as ``alias``; a :class:`ConfigError` naming ``key`` if none."""
        try:
            return self._entries[alias]
        except KeyError:
            raise ConfigError(
                f"unknown {self.role} '{alias}'",
                key=key,
                expected="one of: " + ", ".join(sorted(self._entries)),
                fix=f"Use one of the registered {self.role} names.",
            ) from None

    def names(self) -> list[str]:
        """Registered aliases, in registration order."""
        return list(self._entries)

    def __contains__(self, alias: object) -> bool:
        return alias in self._entries

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())
