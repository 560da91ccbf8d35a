"""Attention / position mechanisms: one module each, all listed in ATTENTION_MECHANISMS."""

from __future__ import annotations

from mlmclm.registry import Registry

ATTENTION_MECHANISMS: Registry = Registry("attention mechanism")
