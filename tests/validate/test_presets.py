"""The validation presets plan valid grids whose sizes let the exact tests reach significance at all."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mlmclm.validate.arms import grid_config
from mlmclm.validate.grids import AA, NOPE, PLANTED, PLANTED_TINY, STANDARD, aa_seeds, plan_grid
from mlmclm.validate.records import PRESETS


@pytest.mark.parametrize("preset", PRESETS.values(), ids=PRESETS.keys())
def test_every_grid_resolves_to_a_valid_config(preset, tmp_path: Path):
    for name in (NOPE, STANDARD, PLANTED, AA, PLANTED_TINY):
        config = grid_config(plan_grid(name, preset), tmp_path, {"resume": True})
        assert config.output_dir == str(tmp_path / name) and config.data.cache_dir == str(tmp_path / "cache")
    planted = grid_config(plan_grid(PLANTED, preset), tmp_path, {})
    full = grid_config(plan_grid(STANDARD, preset), tmp_path, {})
    assert planted.training.learning_rate == pytest.approx(full.training.learning_rate * preset.planted_lr_factor)
    assert planted.run_seeds() == full.run_seeds()  # paired, as two mechanisms are


@pytest.mark.parametrize("preset", PRESETS.values(), ids=PRESETS.keys())
def test_sample_sizes_can_reach_significance(preset):
    """Smallest exact p: sign-flip 2/2^n (paired), two-sample 2/C(2m, m); Holm multiplies by the family size."""
    assert 2 / 2**preset.runs * 2 < preset.alpha  # NoPE: two MLM-vs-CLM comparisons
    assert 2 / 2**preset.aa_runs < preset.alpha  # tiny planted repetitions, one comparison
    family = math.comb(preset.aa_labels, 2)
    assert 2 / math.comb(2 * preset.aa_runs, preset.aa_runs) * family < preset.alpha


@pytest.mark.parametrize("preset", PRESETS.values(), ids=PRESETS.keys())
def test_aa_seed_blocks_are_disjoint(preset):
    blocks = [aa_seeds(preset, r, j) for r in range(preset.aa_repetitions) for j in range(preset.aa_labels)]
    seeds = [seed for block in blocks for seed in block]
    assert len(seeds) == len(set(seeds)) == preset.aa_repetitions * preset.aa_labels * preset.aa_runs


def test_the_planning_estimate_counts_unfinished_runs_and_shares_them_among_workers(tmp_path: Path):
    from mlmclm.validate import aa
    from mlmclm.validate.runner import estimate_seconds

    preset = PRESETS["cpu"]
    runs = plan_grid(AA, preset).runs
    assert estimate_seconds([aa], preset, tmp_path) == runs * preset.seconds_per_tiny_run
    assert estimate_seconds([aa], preset, tmp_path, workers=2) == runs * preset.seconds_per_tiny_run / 2
    for index in range(4):  # four runs already finished on disk
        (tmp_path / AA / "experiments" / f"run{index}").mkdir(parents=True)
        (tmp_path / AA / "experiments" / f"run{index}" / "metrics.json").write_text("{}")
    assert estimate_seconds([aa], preset, tmp_path) == (runs - 4) * preset.seconds_per_tiny_run
