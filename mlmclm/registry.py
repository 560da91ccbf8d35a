"""Name -> implementation registries: the single source of truth for every pluggable choice.

The CLI choices, the plan check (:func:`mlmclm.components.check_plan`), the docs tables and the report all
read the same registry, so adding an attention mechanism or a masking strategy is one new module plus one
``@REGISTRY.register("name")`` line; a nested ``Config`` dataclass on it declares its settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from mlmclm.config import register_settings
from mlmclm.errors import ConfigError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping from a public name to an implementation (class or function)."""

    def __init__(
        self,
        kind: str,
        settings_section: str | None = None,
        chosen_by: str | None = None,
        is_chosen: Callable[[Any, str], bool] | None = None,
    ) -> None:
        self.kind = kind
        self.settings_section = settings_section  # where an implementation's ``Config`` keys live in the YAML
        # The key that picks one implementation and whether ``is_chosen(config, name)``: an implementation's
        # settings have no effect otherwise (``config.shadowed_settings``).
        self.chosen_by = chosen_by
        self.is_chosen = is_chosen
        self._items: dict[str, T] = {}

    def register(self, name: str, settings: type | None = None) -> Callable[[T], T]:
        """Register ``obj`` under ``name``; its settings are ``settings`` or a nested ``obj.Config`` dataclass
        (fields read from ``<settings_section>.<name>_<field>``, see :func:`mlmclm.config.register_settings`)."""

        def decorator(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            config = settings or getattr(obj, "Config", None)
            if config is not None:
                if self.settings_section is None:
                    raise ValueError(f"{self.kind}s have no config section for the settings of {name!r}")
                register_settings(self.settings_section, name, config, self._unused_rule(name, config))
            self._items[name] = obj
            return obj

        return decorator

    def _unused_rule(self, name: str, settings: type) -> tuple[str, Callable[[Any], bool], str] | None:
        """(choosing key, "not chosen" predicate, reason) for ``name``'s settings, or None if nothing chooses."""
        if self.chosen_by is None or self.is_chosen is None:
            return None
        is_chosen = self.is_chosen
        reason = getattr(settings, "UNUSED_REASON", f"only the {self.kind} {name} uses it")
        return self.chosen_by, lambda config: not is_chosen(config, name), reason

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
    return f"unknown {kind} {name!r}{did_you_mean(name, valid)} (valid: {', '.join(valid)})"
