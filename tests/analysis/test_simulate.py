"""The simulations behind the defaults, at reduced size: the old procedures fail, the new ones hold."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mlmclm.analysis import simulate

ALPHA = 0.05


def _by_label(rates: list[simulate.Rate]) -> dict[str, simulate.Rate]:
    return {rate.label: rate for rate in rates}


def test_t_interval_covers_nominally_at_three_runs_where_bca_does_not():
    rates = _by_label(simulate.interval_coverage(3, "normal", reps=2000, rng=np.random.default_rng(1)))
    low, high = rates["t-interval"].interval
    assert low <= 0.95 <= high
    assert rates["BCa bootstrap"].interval[1] < 0.80  # about 73%: the defect the t-interval replaces


@pytest.mark.parametrize("n", [3, 6, 10])
@pytest.mark.parametrize("null", ["normal differences", "exchangeable skewed scores"])
def test_default_sign_flip_test_keeps_alpha_under_exchangeable_nulls(n, null):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Shapiro-Wilk on tiny samples
        rates = _by_label(simulate.type_one_error(n, null, reps=2000, rng=np.random.default_rng(n)))
    low, _ = rates["sign-flip permutation (default)"].interval
    assert low <= ALPHA


def test_old_default_rejects_a_true_mean_zero_null_too_often_at_three_pairs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rates = _by_label(
            simulate.type_one_error(3, "skewed differences, mean 0", reps=2000, rng=np.random.default_rng(2))
        )
    assert rates["Shapiro -> t or Wilcoxon (old default)"].interval[0] > ALPHA  # about 0.16
    assert rates["sign-flip permutation (default)"].events == 0  # p >= 0.25 with 3 pairs


@pytest.mark.slow
def test_cv_null_naive_t_is_anticonservative_and_corrected_t_holds_alpha():
    naive, corrected = simulate.cv_null_rejection(reps=100, folds=3, repetitions=5, seed=0)
    assert naive.interval[0] > ALPHA
    low, high = corrected.interval
    assert low <= ALPHA <= high


def test_markdown_table_has_a_row_per_rate():
    rates = [simulate.Rate("t-interval", 3, "normal", 95, 100)]
    table = simulate.markdown_table(rates, "coverage")
    assert table[2].startswith("| normal | t-interval | 3 | 0.950 [")
