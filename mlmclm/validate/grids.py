"""The grids the checks share: planned once per preset, trained once, read by every check that needs them.

``nope``: both objectives with ``nope`` at the preset's scale; ``standard``: MLM-``standard`` on the same seeds
(NoPE structure, probe validity, and the full arm of the planted effect). ``planted``: MLM-``standard`` with the
learning rate cut by the preset's factor, same seeds (so planted comparisons are paired, as two mechanisms'
are). ``aa``: one tiny condition on R x labels x n disjoint seeds. ``planted_tiny``: the handicapped tiny arm
on the seeds of the first label of each of the first ``planted_repetitions`` A/A repetitions.

Seed counts follow from the tests the analysis runs: an exact sign-flip test of n pairs cannot go below
p = 2/2^n, so n = 7 is the least at which a paired difference can be significant after Holm over two
comparisons (docs/validation.md).
"""

from __future__ import annotations

from mlmclm.config import load_yaml
from mlmclm.validate.arms import GridSpec
from mlmclm.validate.records import ValidationPreset

MAIN_SEED = 42
AA_SEED = 1000
NOPE, STANDARD, PLANTED, AA, PLANTED_TINY = "nope", "standard", "planted", "aa", "planted_tiny"


def main_seeds(preset: ValidationPreset) -> tuple[int, ...]:
    return tuple(range(MAIN_SEED, MAIN_SEED + preset.runs))


def aa_seeds(preset: ValidationPreset, repetition: int, label: int) -> tuple[int, ...]:
    """Disjoint seed blocks: repetition r, label j gets n seeds of its own."""
    start = AA_SEED + (repetition * preset.aa_labels + label) * preset.aa_runs
    return tuple(range(start, start + preset.aa_runs))


def _learning_rate(path) -> float:
    return float((load_yaml(path).get("training") or {}).get("learning_rate", 1e-4))


def _tiny_overrides(preset: ValidationPreset) -> dict:
    return {**preset.tiny_overrides, "training": {"max_steps": preset.tiny_max_steps}}


def plan_grid(name: str, preset: ValidationPreset) -> GridSpec:
    """The grid called ``name`` at ``preset``'s scale."""
    if name == NOPE:
        return GridSpec(NOPE, preset.config_path, ("mlm", "clm"), ("nope",), main_seeds(preset))
    if name == STANDARD:
        return GridSpec(STANDARD, preset.config_path, ("mlm",), ("standard",), main_seeds(preset))
    if name == PLANTED:
        rate = _learning_rate(preset.config_path) * preset.planted_lr_factor
        return GridSpec(PLANTED, preset.config_path, ("mlm",), ("standard",), main_seeds(preset),
                        {"training": {"learning_rate": rate}})
    if name == AA:
        blocks = [(r, j) for r in range(preset.aa_repetitions) for j in range(preset.aa_labels)]
        seeds = tuple(seed for r, j in blocks for seed in aa_seeds(preset, r, j))
        return GridSpec(AA, preset.tiny_config_path, ("mlm",), ("standard",), seeds, _tiny_overrides(preset))
    if name == PLANTED_TINY:
        overrides = _tiny_overrides(preset)
        rate = _learning_rate(preset.tiny_config_path) * preset.planted_lr_factor
        overrides["training"] = {**overrides["training"], "learning_rate": rate}
        seeds = tuple(seed for r in range(preset.planted_repetitions) for seed in aa_seeds(preset, r, 0))
        return GridSpec(PLANTED_TINY, preset.tiny_config_path, ("mlm",), ("standard",), seeds, overrides)
    raise KeyError(name)
