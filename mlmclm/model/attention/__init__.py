"""Attention / position mechanisms: one module each, all listed in ATTENTION_MECHANISMS.

A mechanism is an :class:`~mlmclm.model.attention.base.AttentionMechanism` subclass registered under its
public name; its own settings, if any, are a nested ``Config`` dataclass with a ``check()`` (YAML keys
``model.<name>_<field>``, see ``rope.py``). Adding one is a new module here plus its import below; the CLI,
the plan check, the docs and the report read the names from this registry.
"""

from __future__ import annotations

from mlmclm.model.attention.base import ATTENTION_MECHANISMS, AttentionMechanism

# Importing the modules registers them, in the order shown to users.
# isort: off
from mlmclm.model.attention import (  # noqa: F401
    standard,
    absolute,
    rope,
    exposb,
    alibi,
    nope,
    stickbreaking,
)

# isort: on

__all__ = ["ATTENTION_MECHANISMS", "AttentionMechanism"]
