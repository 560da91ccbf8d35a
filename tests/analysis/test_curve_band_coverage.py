"""Training-curve bands under cross-validation cover at their level (benchmarks/simulations/curve_band_coverage.py,
reduced)."""

from __future__ import annotations

from scipy import stats

from benchmarks.simulations import curve_band_coverage as simulation

REPS = 400


def test_bands_over_fold_averaged_seeds_cover_at_the_nominal_level_with_seed_and_fold_effects():
    c = simulation.coverage("seed and fold effects", folds_averaged=True, reps=REPS, seed=1)
    # exact binomial test of the hit count against 0.95: only a rate far from nominal is rejected at 1%
    assert stats.binomtest(c.hits, c.reps, c.level).pvalue > 0.01


def test_bands_over_fold_seed_runs_as_independent_replicates_under_cover():
    c = simulation.coverage("seed effects only", folds_averaged=False, reps=REPS, seed=1)
    assert c.ci[1] < 0.9  # the old band: (fold, seed) runs of one seed are not independent
