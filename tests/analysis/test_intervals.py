"""Bootstrap intervals: scipy's BCa on ordinary data, honest fallbacks on degenerate data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmclm.analysis import effect_sizes
from mlmclm.analysis.intervals import (
    bootstrap_ci,
    difference_t_interval,
    mean_difference_statistic,
    mean_statistic,
    mean_t_interval,
    standardized_effect_ci,
)
from mlmclm.analysis.resampled import CrossValidationDesign


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


def test_two_sample_difference_interval_equals_scipy_bootstrap_with_the_same_generator():
    """Each sample resampled on its own (scipy's multi-sample bootstrap), BCa, as scipy computes it."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(1, 1, 12), rng.normal(0, 1, 10)
    ours = _ci((a, b), mean_difference_statistic)
    reference = stats.bootstrap(
        (a, b), lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        n_resamples=2000, method="BCa", rng=np.random.default_rng(0),
    )
    assert ours.method == "BCa"
    assert (ours.low, ours.high) == pytest.approx(tuple(reference.confidence_interval))


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


def test_effect_size_interval_matches_r_effectsize_on_the_sleep_data():
    # R: effectsize::cohens_d on datasets::sleep — paired d = -1.28 [-2.12, -0.41], independent
    # d = -0.83 [-1.74, 0.10] (noncentral-t intervals).
    drug_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
    drug_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])
    paired = standardized_effect_ci(
        float(effect_sizes.cohens_dz(drug_1 - drug_2)), n_a=10, n_b=None, confidence_level=0.95
    )
    assert (paired.low, paired.high) == pytest.approx((-2.12, -0.41), abs=0.006)
    independent = standardized_effect_ci(
        float(effect_sizes.cohens_d(drug_1, drug_2)), n_a=10, n_b=10, confidence_level=0.95
    )
    assert (independent.low, independent.high) == pytest.approx((-1.74, 0.10), abs=0.006)


@pytest.mark.parametrize("n_b", [None, 3])
def test_effect_size_interval_covers_the_true_effect_at_the_nominal_rate_with_three_runs(n_b):
    rng, delta, trials = np.random.default_rng(5), 0.8, 1000
    covered = 0
    for _ in range(trials):
        if n_b is None:
            d = float(effect_sizes.cohens_dz(rng.normal(delta, 1.0, 3)))
        else:
            d = float(effect_sizes.cohens_d(rng.normal(delta, 1.0, 3), rng.normal(0.0, 1.0, n_b)))
        interval = standardized_effect_ci(d, n_a=3, n_b=n_b, confidence_level=0.95)
        covered += interval.low <= delta <= interval.high
    assert covered / trials == pytest.approx(0.95, abs=3 * np.sqrt(0.95 * 0.05 / trials))


def test_undefined_effect_has_no_interval():
    assert standardized_effect_ci(None, n_a=3, n_b=None, confidence_level=0.95).low is None


def test_t_interval_of_a_mean_equals_scipy():
    values = np.array([2.1, 2.5, 1.9, 2.8])
    reference = stats.ttest_1samp(values, 0.0).confidence_interval(0.9)
    interval = mean_t_interval(values, design=None, confidence_level=0.9)
    assert interval.method == "t"
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high))


def test_welch_interval_of_a_difference_equals_scipy():
    a, b = np.array([2.1, 2.5, 1.9, 2.8]), np.array([1.0, 1.7, 1.2])
    reference = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    interval = difference_t_interval(a, b, design=None, confidence_level=0.95)
    assert (interval.low, interval.high) == pytest.approx((reference.low, reference.high))


def test_cross_validation_widens_the_interval_by_the_nadeau_bengio_factor():
    values = np.array([0.2, 0.5, 0.1, 0.4, 0.3, 0.35])
    plain = mean_t_interval(values, design=None, confidence_level=0.95)
    corrected = mean_t_interval(values, design=CrossValidationDesign(3), confidence_level=0.95)
    factor = np.sqrt((1 / 6 + 1 / 2) / (1 / 6))  # sqrt(1 + n * n_test/n_train) = 2
    assert corrected.method == "corrected t"
    assert corrected.high - corrected.low == pytest.approx(factor * (plain.high - plain.low))


def test_t_interval_of_equal_values_is_the_point_and_of_one_value_none():
    equal = mean_t_interval(np.full(3, 1.5), design=None, confidence_level=0.95)
    assert (equal.low, equal.high, equal.method) == (1.5, 1.5, "degenerate")
    assert mean_t_interval(np.array([1.0]), design=None, confidence_level=0.95).low is None
