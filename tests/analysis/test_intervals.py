"""Bootstrap intervals: scipy's BCa on ordinary data, honest fallbacks on degenerate data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmclm.analysis import effect_sizes
from mlmclm.analysis.intervals import bootstrap_ci, mean_difference_statistic, mean_statistic


def _ci(samples, statistic=mean_statistic, seed=0):
    return bootstrap_ci(
        samples, statistic, confidence_level=0.95, n_resamples=2000, rng=np.random.default_rng(seed)
    )


def test_bca_equals_scipy_bootstrap_with_the_same_generator():
    values = np.random.default_rng(1).normal(10, 2, 15)
    ours = _ci((values,))
    reference = stats.bootstrap(
        (values,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(0)
    )
    assert ours.method == "BCa"
    assert (ours.low, ours.high) == pytest.approx(tuple(reference.confidence_interval))


def test_two_sample_difference_interval_contains_the_point_estimate():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1, 1, 12), rng.normal(0, 1, 10)
    interval = _ci((a, b), mean_difference_statistic)
    assert interval.low < a.mean() - b.mean() < interval.high


def test_fewer_than_two_values_give_no_interval():
    interval = _ci((np.array([3.0]),))
    assert interval.low is None and interval.method == "none" and "fewer than 2" in interval.note


def test_all_equal_values_give_the_point_with_a_note():
    interval = _ci((np.full(4, 2.5),))
    assert (interval.low, interval.high) == (2.5, 2.5) and interval.method == "degenerate"


@pytest.mark.parametrize("values", [[1.0, 1.0, 1.0, 2.0], [0.0, 1e-300], [1.0, 2.0]])
def test_awkward_samples_never_crash(values):
    interval = _ci((np.array(values),))
    assert interval.method in {"BCa", "percentile", "degenerate", "none"}
    if interval.low is not None:
        assert interval.low <= interval.high


def test_standardised_effect_undefined_in_many_resamples_gives_no_interval():
    interval = _ci((np.array([0.1, 0.2, 0.4]),), effect_sizes.cohens_dz)  # 3 of 27 resamples have no spread
    assert interval.low is None and "undefined" in interval.note


def test_bootstrap_distribution_without_spread_gives_no_interval_not_a_zero_width_one():
    # Three negative differences: every resample has r = -1, which says nothing about the uncertainty of r.
    interval = _ci((np.array([-0.1, -0.2, -0.4]),), effect_sizes.rank_biserial_paired)
    assert interval.low is None and interval.method == "none" and "every resample" in interval.note
