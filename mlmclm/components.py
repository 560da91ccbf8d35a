"""Every pluggable component, imported explicitly, and the checks of the names a config picks from them.

Importing this module fills every registry (and the settings the components declare): the attention
mechanisms (``model/attention``), the MLM and CLM strategies (``data/masking.py``, ``data/sequences.py``)
and the probe tasks (``probes/tasks.py``). :func:`resolve_config` is :func:`mlmclm.config.build_config`
plus :func:`check_plan`, the name-in-registry checks that ``config.py`` leaves to this layer so that it
imports nothing above itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlmclm.config import ExperimentConfig, build_config, from_dict, require_choice
from mlmclm.data.masking import MLM_STRATEGIES
from mlmclm.data.sequences import CLM_STRATEGIES
from mlmclm.errors import ConfigError
from mlmclm.model.attention import ATTENTION_MECHANISMS
from mlmclm.probes.tasks import PROBE_TASKS
from mlmclm.registry import Registry

# The registries users choose from, with the config key that names a choice (for CLI help and docs tables).
REGISTRIES: dict[str, Registry] = {
    "attention": ATTENTION_MECHANISMS,
    "data.mlm_strategy": MLM_STRATEGIES,
    "data.clm_strategy": CLM_STRATEGIES,
    "probes.tasks": PROBE_TASKS,
}


def check_plan(config: ExperimentConfig) -> ExperimentConfig:
    """Every registered name the config picks exists (one line with did-you-mean otherwise); returns it."""
    if not config.attention:
        raise ConfigError("attention must name at least one of: " + ", ".join(ATTENTION_MECHANISMS.names()))
    for name in config.attention:
        require_choice("attention", name, ATTENTION_MECHANISMS.names())
    require_choice("data.mlm_strategy", config.data.mlm_strategy, MLM_STRATEGIES.names())
    require_choice("data.clm_strategy", config.data.clm_strategy, CLM_STRATEGIES.names())
    for task in config.probes.tasks:
        require_choice("probes.tasks", task, PROBE_TASKS.names())
    return config


def resolve_config(
    config_file: str | Path | None = None,
    quick_test: bool = False,
    overrides: dict[str, Any] | None = None,
    overrides_are_flags: bool = False,
) -> ExperimentConfig:
    """The validated config of an experiment: :func:`mlmclm.config.build_config`, then :func:`check_plan`."""
    return check_plan(build_config(config_file, quick_test, overrides, overrides_are_flags))


def config_from_dict(values: dict[str, Any]) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from its ``to_dict()`` (a worker process receives the config so): every
    component's settings are registered by this module's imports before the keys are read."""
    return from_dict(ExperimentConfig, values, "")
