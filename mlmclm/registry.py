"""Name -> implementation registries: the single source of truth for every pluggable choice.

The CLI choices, the config validator and the report all read the same registry, so adding an attention
mechanism or a masking strategy is one new module plus one ``@REGISTRY.register("name")`` line.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from mlmclm.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping from a public name to an implementation (class or function)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def names(self) -> list[str]:
        return list(self._items)

    def get(self, name: str) -> T:
        self.check(name)
        return self._items[name]

    def check(self, name: str) -> None:
        """Raise a one-line ConfigError naming the valid choices when ``name`` is unknown."""
        if name not in self._items:
            raise ConfigError(unknown_choice_message(self.kind, name, self.names()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def unknown_choice_message(kind: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (valid: {', '.join(valid)})"
