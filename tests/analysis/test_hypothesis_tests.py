"""Test choice and p-values against published values, scipy, hand enumeration and Nadeau & Bengio (2003)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmclm.analysis import hypothesis_tests as ht
from mlmclm.analysis.resampled import CrossValidationDesign

# Student (1908) sleep data (R datasets::sleep): extra hours of sleep under drugs 1 and 2, same patients.
SLEEP_DRUG_1 = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
SLEEP_DRUG_2 = np.array([1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4])


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_sleep_data_sign_flip_p_is_the_exact_share_of_sign_patterns():
    # 9 negative differences and one zero: only the all-negative and all-positive patterns (times the zero's two
    # signs) are as extreme as the data, so p = 4 / 2**10 = 2 / 2**9.
    result = ht.paired_test(SLEEP_DRUG_1, SLEEP_DRUG_2, alpha=0.05, n_resamples=9999, rng=_rng())
    assert result.test == ht.SIGN_FLIP
    assert result.pvalue == pytest.approx(2 / 2**9)
    assert result.statistic == pytest.approx(np.mean(SLEEP_DRUG_1 - SLEEP_DRUG_2))
    assert "exact" in result.test_reason and result.cv_correction == "none"
    assert result.min_achievable_p == pytest.approx(2 / 2**9)


def test_shapiro_no_longer_chooses_the_test():
    # Sleep differences fail Shapiro-Wilk at 0.05 but pass at 0.01; the test is the same either way.
    strict = ht.paired_test(SLEEP_DRUG_1, SLEEP_DRUG_2, alpha=0.01, n_resamples=9999, rng=_rng())
    loose = ht.paired_test(SLEEP_DRUG_1, SLEEP_DRUG_2, alpha=0.05, n_resamples=9999, rng=_rng())
    assert strict.test == loose.test == ht.SIGN_FLIP
    assert strict.normality[0].pvalue == pytest.approx(0.0333, abs=1e-3)


def test_sign_flip_p_equals_a_hand_enumeration_of_sign_patterns():
    differences = np.array([0.3, 0.1, 0.5, 0.2, 0.25, -0.05, 0.4])
    patterns = np.array(np.meshgrid(*[[1, -1]] * differences.size)).reshape(differences.size, -1).T
    null = (patterns * differences).mean(axis=1)
    observed = differences.mean()
    expected = min(1.0, 2 * min(np.mean(null <= observed + 1e-12), np.mean(null >= observed - 1e-12)))
    result = ht.paired_test(differences, np.zeros(7), alpha=0.05, n_resamples=9999, rng=_rng())
    assert result.pvalue == pytest.approx(expected)
    assert result.pvalue == pytest.approx(4 / 2**7)  # all positive, or only the smallest negative


def test_two_sample_permutation_matches_scipy_exact_enumeration():
    a = stats.norm.ppf(np.linspace(0.05, 0.95, 6))
    b = 0.8 + stats.norm.ppf(np.linspace(0.1, 0.9, 5))
    result = ht.independent_test(a, b, labels=("a", "b"), alpha=0.05, n_resamples=9999, rng=_rng())
    reference = stats.permutation_test(
        (a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), permutation_type="independent",
        n_resamples=np.inf, vectorized=True,
    )
    assert result.test == ht.PERMUTATION
    assert result.pvalue == pytest.approx(reference.pvalue)
    assert result.statistic == pytest.approx(a.mean() - b.mean())


def test_three_vs_three_permutation_cannot_reach_significance():
    result = ht.independent_test(
        np.array([1.0, 1.0, 2.0]),
        np.array([3.0, 4.0, 5.0]),
        labels=("a", "b"),
        alpha=0.05,
        n_resamples=999,
        rng=_rng(),
    )
    assert result.test == ht.PERMUTATION
    assert result.pvalue == pytest.approx(0.1)  # complete separation: 2 / C(6, 3)
    assert result.min_achievable_p == pytest.approx(0.1)
    assert result.can_reach_significance is False
    assert result.min_runs_for_significance == 4  # 2 / C(8, 4) = 0.0286 <= 0.05


def test_three_pairs_floor_is_a_quarter_and_six_pairs_are_needed():
    assert ht.min_achievable_pvalue(ht.SIGN_FLIP, 3) == pytest.approx(0.25)
    assert ht.min_runs_for_significance(ht.SIGN_FLIP, 0.05) == 6  # 2/2**5 = 0.0625 > 0.05 >= 2/2**6
    result = ht.paired_test(
        np.array([2.0, 3.0]), np.array([1.0, 1.5]), alpha=0.05, n_resamples=999, rng=_rng()
    )
    assert result.test == ht.SIGN_FLIP and result.pvalue == pytest.approx(0.5)
    assert result.can_reach_significance is False and result.min_runs_for_significance == 6


def test_a_lone_run_against_four_is_enumerated_over_the_five_splits():
    result = ht.independent_test(
        np.array([3.0]), np.array([3.5, 3.6, 3.7, 3.55]), labels=("a", "b"), alpha=0.05, n_resamples=999,
        rng=_rng(),
    )
    assert result.test == ht.PERMUTATION
    assert result.pvalue == pytest.approx(0.4)  # the lone run is the lowest of 5: 2 * 1/5
    assert result.min_achievable_p == pytest.approx(0.4)


def test_cross_validation_uses_the_corrected_resampled_t_test():
    # Nadeau & Bengio (2003) eq. 9 with n_test/n_train = 1/(k-1): t = mean / sqrt((1/n + 1/(k-1)) s^2),
    # i.e. the naive t shrunk by sqrt(1 + n/(k-1)), with n - 1 degrees of freedom.
    differences = SLEEP_DRUG_1 - SLEEP_DRUG_2
    design = CrossValidationDesign(folds=5)
    result = ht.paired_test(SLEEP_DRUG_1, SLEEP_DRUG_2, alpha=0.05, n_resamples=999, rng=_rng(), design=design)
    naive = stats.ttest_1samp(differences, 0.0)
    expected_t = naive.statistic / np.sqrt(1 + differences.size / 4)
    assert result.test == ht.CORRECTED_T
    assert result.statistic == pytest.approx(expected_t)
    assert result.pvalue == pytest.approx(2 * stats.t.sf(abs(expected_t), differences.size - 1))
    assert result.pvalue > naive.pvalue
    assert result.cv_correction == "nadeau_bengio" and result.cv_test_train_ratio == pytest.approx(0.25)
    assert "no permutation or rank test is valid" in result.test_reason


def test_cross_validation_with_unpaired_runs_uses_the_corrected_welch_test():
    a, b = np.array([1.0, 1.4, 0.9, 1.2]), np.array([1.6, 1.9, 1.7])
    result = ht.independent_test(
        a, b, labels=("a", "b"), alpha=0.05, n_resamples=999, rng=_rng(), design=CrossValidationDesign(3)
    )
    assert result.test == ht.CORRECTED_WELCH and result.cv_correction == "nadeau_bengio"
    assert result.pvalue > stats.ttest_ind(a, b, equal_var=False).pvalue


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


def test_constant_groups_get_the_exact_permutation_p():
    result = ht.independent_test(
        np.ones(3), np.full(3, 2.0), labels=("a", "b"), alpha=0.05, n_resamples=999, rng=_rng()
    )
    assert result.test == ht.PERMUTATION
    assert result.pvalue == pytest.approx(0.1)
    assert all(normality.pvalue is None for normality in result.normality)


def test_normality_needs_three_values():
    assert ht.shapiro_normality(np.array([1.0, 2.0]), "x").pvalue is None
    assert "cannot be tested" in ht.shapiro_normality(np.array([1.0, 2.0]), "x").note
