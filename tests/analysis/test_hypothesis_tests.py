"""Test choice and p-values against published values, scipy, and the exact null distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmclm.analysis import hypothesis_tests as ht

# Student (1908) sleep data (R datasets::sleep): extra hours of sleep under drugs 1 and 2, same patients.
SLEEP_DRUG_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_DRUG_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_sleep_data_paired_t_matches_published_value():
    # Shapiro-Wilk p on the differences is 0.033, so alpha=0.01 keeps the t-test (R: t=-4.0621, p=0.002833)
    result = ht.paired_test(SLEEP_DRUG_1, SLEEP_DRUG_2, alpha=0.01, n_resamples=9999, rng=_rng())
    assert result.test == ht.PAIRED_T
    assert result.statistic == pytest.approx(-4.0621, abs=1e-4)
    assert result.pvalue == pytest.approx(0.002833, abs=1e-6)
    assert result.normality[0].pvalue == pytest.approx(0.0333, abs=1e-3)


def test_sleep_data_non_normal_differences_route_to_wilcoxon_permutation():
    result = ht.paired_test(SLEEP_DRUG_1, SLEEP_DRUG_2, alpha=0.05, n_resamples=9999, rng=_rng())
    assert result.test == ht.WILCOXON
    assert "not normal" in result.test_reason and "permutation" in result.test_reason
    # 9 non-zero differences, all negative: the exact conditional p-value is 2 / 2**9.
    assert result.pvalue == pytest.approx(2 / 2**9)


def test_welch_matches_scipy_for_normal_groups():
    a = stats.norm.ppf(np.linspace(0.05, 0.95, 12))  # normal quantiles: Shapiro-Wilk cannot reject
    b = 0.5 + 2 * stats.norm.ppf(np.linspace(0.05, 0.95, 9))
    result = ht.independent_test(a, b, labels=("a", "b"), alpha=0.05, n_resamples=999, rng=_rng())
    reference = stats.ttest_ind(a, b, equal_var=False)
    assert result.test == ht.WELCH_T
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.pvalue == pytest.approx(reference.pvalue)


def test_mann_whitney_three_vs_three_cannot_reach_significance():
    # [1, 1, 2] fails Shapiro-Wilk (W = 0.75, the minimum for n = 3), so the rank test is used.
    result = ht.independent_test(
        np.array([1.0, 1.0, 2.0]),
        np.array([3.0, 4.0, 5.0]),
        labels=("a", "b"),
        alpha=0.05,
        n_resamples=999,
        rng=_rng(),
    )
    assert result.test == ht.MANN_WHITNEY
    assert result.pvalue == pytest.approx(0.1)  # complete separation: 2 / C(6, 3)
    assert result.min_achievable_p == pytest.approx(0.1)
    assert result.can_reach_significance is False
    assert result.min_runs_for_significance == 4  # 2 / C(8, 4) = 0.0286 <= 0.05


def test_wilcoxon_three_pairs_floor_is_a_quarter_and_six_pairs_are_needed():
    assert ht.min_achievable_pvalue(ht.WILCOXON, 3) == pytest.approx(0.25)
    assert ht.min_runs_for_significance(ht.WILCOXON, 0.05) == 6  # 2/2**5 = 0.0625 > 0.05 >= 2/2**6
    result = ht.paired_test(
        np.array([2.0, 3.0]), np.array([1.0, 1.5]), alpha=0.05, n_resamples=999, rng=_rng()
    )
    assert result.test == ht.WILCOXON and result.pvalue == pytest.approx(0.5)
    assert result.can_reach_significance is False and result.min_runs_for_significance == 6


@pytest.mark.parametrize("n_a,n_b", [(2, 2), (3, 3), (3, 5), (4, 4), (6, 2)])
def test_mann_whitney_floor_equals_scipy_exact_p_for_separated_groups(n_a, n_b):
    exact = stats.mannwhitneyu(np.arange(n_a), np.arange(n_b) + 100, method="exact").pvalue
    assert ht.min_achievable_pvalue(ht.MANN_WHITNEY, n_a, n_b) == pytest.approx(exact)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 10])
def test_wilcoxon_floor_equals_scipy_exact_p_when_all_signs_agree(n):
    exact = stats.wilcoxon(np.arange(1, n + 1, dtype=float), method="exact").pvalue
    assert ht.min_achievable_pvalue(ht.WILCOXON, n) == pytest.approx(exact)


def test_published_mann_whitney_example_uses_exact_distribution():
    # Conover's example in the scipy.stats.mannwhitneyu documentation: U = 17, exact p = 0.1111.
    males, females = np.array([19, 22, 16, 29, 24.0]), np.array([20, 11, 17, 12.0])
    assert stats.mannwhitneyu(males, females, method="exact").statistic == 17
    assert ht.min_achievable_pvalue(ht.MANN_WHITNEY, 5, 4) == pytest.approx(2 / 126)


def test_all_zero_differences_give_no_test_instead_of_crashing():
    values = np.array([1.0, 2.0, 3.0])
    result = ht.paired_test(values, values.copy(), alpha=0.05, n_resamples=999, rng=_rng())
    assert result.test == ht.NO_TEST and result.pvalue is None
    assert "zero" in result.test_reason


def test_constant_groups_take_the_rank_route_with_permutation_p():
    result = ht.independent_test(
        np.ones(3), np.full(3, 2.0), labels=("a", "b"), alpha=0.05, n_resamples=999, rng=_rng()
    )
    assert result.test == ht.MANN_WHITNEY
    assert result.pvalue == pytest.approx(0.1)
    assert all(normality.pvalue is None for normality in result.normality)


def test_normality_needs_three_values():
    assert ht.shapiro_normality(np.array([1.0, 2.0]), "x").pvalue is None
    assert "cannot be tested" in ht.shapiro_normality(np.array([1.0, 2.0]), "x").note
