"""Grids and arms: how a check gets the conditions it compares through the ordinary grid and analysis.

A :class:`GridSpec` is one ordinary experiment (``run_grid``, resumable, in its own directory). An
:class:`Arm` is a view of one condition of a grid under a label of the check's choosing. Merging arms into one
raw-results document and giving it to :func:`mlmclm.analysis.compare.analyze` compares the arms *exactly as
two attention mechanisms would be compared* (same families, tests, corrections), without registering fake
mechanisms or changing the grid: e.g. the A/A check trains one condition on disjoint seeds and labels the
halves ``aa_a`` and ``aa_b``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmclm.components import resolve_config
from mlmclm.config import ExperimentConfig, merge_dicts
from mlmclm.grid.results import load_raw_results

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridSpec:
    """One ordinary experiment grid a check needs; grids with the same name are trained once and shared."""

    name: str
    config_file: Path  # the preset file (cpu_small.yaml, quick_test.yaml, ...)
    objectives: tuple[str, ...]
    attention: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)  # config layer above the preset's file

    @property
    def runs(self) -> int:
        return len(self.objectives) * len(self.attention) * len(self.seeds)


@dataclass(frozen=True)
class Arm:
    """Condition (objective, attention) of grid ``grid``, analysed under the name ``label`` (an attention
    slot of the merged document, so it is compared as a mechanism would be)."""

    grid: str
    objective: str
    attention: str
    label: str
    seeds: tuple[int, ...] | None = None  # None: every seed of the grid


def grid_config(spec: GridSpec, output_dir: Path, base: Mapping[str, Any]) -> ExperimentConfig:
    """The grid's validated config: its preset file < the validation's shared layer < the grid's own layer."""
    layer = merge_dicts(dict(base), dict(spec.overrides))
    layer = merge_dicts(layer, {
        "experiment_name": spec.name,
        "output_dir": str(output_dir / spec.name),
        "objectives": list(spec.objectives),
        "attention": list(spec.attention),
        "seeds": list(spec.seeds),
        "data": {"cache_dir": str(output_dir / "cache")},  # one corpus/tokenizer cache for every grid
    })
    return resolve_config(spec.config_file, False, layer)


def train_grid(config: ExperimentConfig, command: str) -> Path:
    """Train (or resume) one grid through the ordinary runner; return its raw-results path."""
    from mlmclm.grid.runner import run_grid

    return run_grid(config, command, quiet=True)


def merge_arms(raws: Mapping[str, Mapping[str, Any]], arms: Sequence[Arm]) -> dict[str, Any]:
    """One raw-results document holding each arm's runs relabelled as attention ``arm.label``.

    The header (config, probe tasks, data) is the first arm's grid's; the arms of a check share the preset,
    corpus and probe tasks, so the header describes all of them.
    """
    first = raws[arms[0].grid]
    merged = copy.deepcopy(dict(first))
    runs = []
    for arm in arms:
        for run in raws[arm.grid]["runs"]:
            same = run.get("objective") == arm.objective and run.get("attention") == arm.attention
            if same and (arm.seeds is None or run.get("seed") in arm.seeds):
                runs.append({**copy.deepcopy(run), "attention": arm.label})
    merged["runs"] = runs
    config = merged.setdefault("config", {})
    config["attention"] = list(dict.fromkeys(arm.label for arm in arms))
    config["objectives"] = list(dict.fromkeys(arm.objective for arm in arms))
    return merged


def load_grid(path: Path) -> dict[str, Any]:
    return load_raw_results(path)
