"""Registries of the MLM masking strategies and CLM sequence strategies (filled by their modules)."""

from __future__ import annotations

from mlmclm.registry import Registry

MLM_STRATEGIES: Registry = Registry("MLM strategy")
CLM_STRATEGIES: Registry = Registry("CLM strategy")
