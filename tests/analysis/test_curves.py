"""Sample efficiency: per-point t-interval bands over seeds and the point from which two arms separate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmclm.analysis.conditions import seed_means
from mlmclm.analysis.curves import band_separations, condition_band, t_band
from mlmclm.grid.records import RunRecord


def test_band_is_the_t_interval_of_the_mean_at_each_point():
    stacked = np.array([[1.0, 2.0], [2.0, 2.5], [4.0, np.nan]])
    mean, low, high = t_band(stacked, 0.95)
    expected = stats.t.interval(0.95, 2, loc=np.mean([1, 2, 4]), scale=stats.sem([1, 2, 4]))
    assert (low[0], high[0]) == pytest.approx(expected)
    expected = stats.t.interval(0.95, 1, loc=2.25, scale=stats.sem([2.0, 2.5]))
    assert (low[1], high[1]) == pytest.approx(expected)


def _runs(attention: str, curve: np.ndarray, noise: list[float]) -> list[dict]:
    tokens = (np.arange(curve.size) * 1000).tolist()
    return [
        {"objective": "mlm", "attention": attention, "status": "completed",
         "curves": {"tokens": tokens, "val_loss": (curve + shift).tolist()}}
        for shift in noise
    ]


def records(runs):
    return [RunRecord.from_json(run) for run in runs]


def test_separation_is_the_first_token_count_after_which_bands_never_overlap_again():
    x = np.arange(10)
    common = 5.0 - 0.1 * x
    apart = common - np.where(x >= 6, 1.0, 0.0)  # 1.0 lower from the 7th point (6000 tokens) on
    apart[2] -= 1.0  # a single early excursion: overlap again afterwards, so it does not count
    runs = _runs("rope", common, [-0.05, 0.0, 0.05]) + _runs("alibi", apart, [-0.05, 0.0, 0.05])
    (result,) = band_separations(records(runs), ["mlm"], ["rope", "alibi"], 0.95)
    assert result.axis == "tokens" and result.separated_from == 6000.0
    assert result.better_group == "alibi_mlm"


def test_bands_that_overlap_at_the_end_never_separate():
    x = np.arange(10)
    runs = _runs("rope", 5.0 - 0.1 * x, [-0.2, 0.0, 0.2]) + _runs("alibi", 5.01 - 0.1 * x, [-0.2, 0.0, 0.2])
    (result,) = band_separations(records(runs), ["mlm"], ["rope", "alibi"], 0.95)
    assert result.separated_from is None and result.better_group is None


FOLDS, SEEDS = (0, 1, 2), (42, 43, 44)


def _cv_runs(rng: np.random.Generator, attention: str = "rope") -> tuple[list[RunRecord], np.ndarray]:
    """3 folds x 3 seeds with strong seed effects (and fold effects): runs of one seed are not independent."""
    x = np.arange(8)
    seed_effect = {seed: rng.normal(0, 0.5) for seed in SEEDS}
    fold_effect = {fold: rng.normal(0, 0.2) for fold in FOLDS}
    curves = {(f, s): 5.0 - 0.1 * x + seed_effect[s] + fold_effect[f] + rng.normal(0, 0.05, x.size)
              for f in FOLDS for s in SEEDS}
    runs = [
        RunRecord.from_json({"objective": "mlm", "attention": attention, "fold": f, "seed": s, "status": "completed",
                             "curves": {"tokens": (x * 1000).tolist(), "val_loss": y.tolist()}})
        for (f, s), y in curves.items()
    ]
    by_seed = np.array([np.mean([curves[(f, s)] for f in FOLDS], axis=0) for s in SEEDS])
    return runs, by_seed


def test_under_cross_validation_the_band_is_the_t_interval_over_fold_averaged_seeds():
    runs, by_seed = _cv_runs(np.random.default_rng(3))
    band = condition_band(runs, "val_loss", 0.95, "mlm", "rope", average_folds=True)
    low, high = stats.t.interval(0.95, 2, loc=by_seed.mean(axis=0), scale=stats.sem(by_seed, axis=0))
    assert (band.runs, band.units, band.folds_averaged) == (9, 3, True)
    assert band.mean == pytest.approx(by_seed.mean(axis=0))
    assert band.low == pytest.approx(low) and band.high == pytest.approx(high)
    # the old band over the 9 (fold, seed) runs as if independent is much narrower than this one
    _, old_low, old_high = t_band(np.array([r.curves["val_loss"] for r in runs]), 0.95)
    assert np.all(old_high - old_low < 0.6 * (high - low))


def test_without_cross_validation_the_band_is_over_every_run_as_before():
    runs, _ = _cv_runs(np.random.default_rng(3))
    band = condition_band(runs, "val_loss", 0.95, "mlm", "rope")
    mean, low, high = t_band(np.array([r.curves["val_loss"] for r in runs]), 0.95)
    assert (band.runs, band.units, band.folds_averaged) == (9, 9, False)
    assert band.mean == pytest.approx(mean) and band.low == pytest.approx(low) and band.high == pytest.approx(high)


def test_a_seed_has_a_value_only_where_all_its_folds_have_one():
    rows = np.array([[1.0, 2.0, np.nan], [3.0, 4.0, 5.0], [10.0, 10.0, 10.0]])
    means, seeds = seed_means(rows, [42, 42, 43])
    assert seeds == (42, 43)
    np.testing.assert_array_equal(means, [[2.0, 3.0, np.nan], [10.0, 10.0, 10.0]])


def test_separations_under_cross_validation_record_seeds_and_fold_averaging():
    rng = np.random.default_rng(5)
    runs = _cv_runs(rng, "rope")[0] + _cv_runs(rng, "alibi")[0]
    (cv,) = band_separations(runs, ["mlm"], ["rope", "alibi"], 0.95, average_folds=True)
    (plain,) = band_separations(runs, ["mlm"], ["rope", "alibi"], 0.95)
    assert (cv.units_a, cv.units_b, cv.folds_averaged) == (3, 3, True)
    assert (plain.units_a, plain.units_b, plain.folds_averaged) == (9, 9, False)
