"""Choosing and running the two-sided test for one comparison, and saying why.

Decision rule (docs/statistics.md), fixed by the design rather than by a normality pre-test:

- Independent runs (no cross-validation), paired by (fold, seed): the **sign-flip permutation test** of the
  mean difference (Fisher 1935; ``scipy.stats.permutation_test``, ``permutation_type="samples"``), exact by
  enumeration of all 2ⁿ sign patterns when they are at most the resample count. It is exact under the null
  that the two conditions are exchangeable within each pair, whatever the (skewed) distribution of the runs'
  scores; a t-test chosen after Shapiro–Wilk is not (its type-I error is 0.14 at n = 3 under skewed
  differences, and Shapiro–Wilk cannot see skew in 3 values). Runs that do not pair: the two-sample
  permutation test of the difference of means (``permutation_type="independent"``).
- Cross-validation: folds share training data, so pairs are not independent and no permutation or rank test
  is valid (sign flips assume independent pairs). The **corrected resampled t-test** (Nadeau & Bengio 2003;
  Bouckaert & Frank 2004; :mod:`mlmclm.analysis.resampled`) is used; unpaired runs get its Welch form.

Permutation tests have a floor on their p-value at small n (3 pairs: 0.25); it is computed from the exact null
distribution so the report can say when significance is out of reach. Shapiro–Wilk is still reported, as a
description of the differences; it no longer chooses the test (Rochon, Gondan & Kieser 2012).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from mlmclm.analysis.resampled import (
    NADEAU_BENGIO,
    NO_CV_CORRECTION,
    CrossValidationDesign,
    TResult,
    corrected_one_sample_t,
    corrected_welch_t,
)

PAIRED_T = "paired t-test"
WELCH_T = "Welch t-test"
WILCOXON = "Wilcoxon signed-rank"
MANN_WHITNEY = "Mann-Whitney U"
SIGN_FLIP = "sign-flip permutation"
PERMUTATION = "two-sample permutation"
CORRECTED_T = "corrected resampled t-test"
CORRECTED_WELCH = "corrected Welch t-test"
NO_TEST = "none"
# Tests whose p-value has a floor at small n (exact null distributions over finitely many rearrangements).
_SIGN_PATTERN_TESTS = (WILCOXON, SIGN_FLIP)
_SPLIT_TESTS = (MANN_WHITNEY, PERMUTATION)
# How the report names each test's statistic (the sign-flip test's statistic is the mean paired difference).
STATISTIC_SYMBOLS = {
    PAIRED_T: "t", WELCH_T: "t", WILCOXON: "W", MANN_WHITNEY: "U", SIGN_FLIP: "mean d", PERMUTATION: "Δ mean",
    CORRECTED_T: "t", CORRECTED_WELCH: "t",
}
# How a p-value was obtained (TestResult.p_value_method).
EXACT_PERMUTATION = "exact permutation"
MONTE_CARLO_PERMUTATION = "Monte Carlo permutation"
T_DISTRIBUTION = "t distribution"
NO_P_VALUE = "none"


@dataclass(frozen=True)
class NormalityResult:
    """Shapiro–Wilk on one sample; ``statistic``/``pvalue`` are ``None`` when it could not be run."""

    sample: str  # "differences" or a condition label
    n: int
    test: str
    statistic: float | None
    pvalue: float | None
    note: str | None = None


@dataclass(frozen=True)
class TestResult:
    """Outcome of the chosen test; ``pvalue`` is ``None`` when no test is defined for the data.

    ``cv_correction`` is ``"nadeau_bengio"`` when the variance was inflated for cross-validation overlap
    (``cv_test_train_ratio`` = n_test/n_train), else ``"none"``.
    """

    test: str
    statistic: float | None
    pvalue: float | None
    test_reason: str
    normality: tuple[NormalityResult, ...]
    min_achievable_p: float | None
    can_reach_significance: bool
    min_runs_for_significance: int | None
    cv_correction: str = NO_CV_CORRECTION
    cv_test_train_ratio: float | None = None
    p_value_method: str = NO_P_VALUE  # EXACT_PERMUTATION | MONTE_CARLO_PERMUTATION | T_DISTRIBUTION | NO_P_VALUE

    @property
    def symbol(self) -> str | None:
        """The statistic's name in the report (``t``, ``mean d``, ...); ``None`` when no test was run."""
        return STATISTIC_SYMBOLS.get(self.test)


def shapiro_normality(values: np.ndarray, sample: str) -> NormalityResult:
    """Shapiro–Wilk (Shapiro & Wilk 1965) via :func:`scipy.stats.shapiro`, which needs n ≥ 3 and spread."""
    n = int(np.size(values))
    if n < 3:
        note = f"n={n} < 3: normality cannot be tested"
        return NormalityResult(sample, n, "Shapiro-Wilk", None, None, note)
    if np.ptp(values) == 0:
        return NormalityResult(sample, n, "Shapiro-Wilk", None, None, "all values equal: normality undefined")
    result = stats.shapiro(values)
    return NormalityResult(sample, n, "Shapiro-Wilk", float(result.statistic), float(result.pvalue))


def min_achievable_pvalue(test: str, n_a: int, n_b: int | None = None) -> float:
    """Smallest two-sided p-value the test can return for these sample sizes (no ties).

    Wilcoxon signed-rank and the sign-flip test with n non-zero differences: all signs alike has probability
    2/2ⁿ. Mann–Whitney U and the two-sample permutation test: complete separation of the groups has probability
    2/C(n_a + n_b, n_a). t-tests have no floor (0.0).
    """
    if test in _SIGN_PATTERN_TESTS:
        return min(1.0, 2.0 / 2.0**n_a) if n_a > 0 else 1.0
    if test in _SPLIT_TESTS:
        assert n_b is not None
        return min(1.0, 2.0 / float(special.comb(n_a + n_b, n_a, exact=True))) if n_a and n_b else 1.0
    return 0.0


def min_runs_for_significance(test: str, alpha: float) -> int | None:
    """Smallest n (pairs for Wilcoxon, runs per condition for Mann–Whitney) whose p-value floor is ≤ α."""
    if test not in _SIGN_PATTERN_TESTS + _SPLIT_TESTS:
        return None
    n = 1
    while min_achievable_pvalue(test, n, n) > alpha:
        n += 1
    return n


def _floor_fields(test: str, n_a: int, n_b: int | None, alpha: float) -> tuple[float, bool, int | None]:
    floor = min_achievable_pvalue(test, n_a, n_b)
    return floor, floor <= alpha, min_runs_for_significance(test, alpha)


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def _difference_of_means(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _enumeration(count: float, n_resamples: int) -> str:
    return "exact (all rearrangements enumerated)" if count <= n_resamples else f"{n_resamples} random rearrangements"


def _permutation_method(count: float, n_resamples: int) -> str:
    """scipy enumerates every rearrangement when there are at most ``n_resamples`` of them."""
    return EXACT_PERMUTATION if count <= n_resamples else MONTE_CARLO_PERMUTATION


def _corrected_result(
    result: TResult, test: str, reason: str, normality: tuple[NormalityResult, ...], design: CrossValidationDesign
) -> TestResult:
    return TestResult(
        test, result.statistic, result.pvalue, reason, normality, 0.0, True, None,
        NADEAU_BENGIO, design.test_train_ratio, T_DISTRIBUTION,
    )


def _cv_reason(design: CrossValidationDesign) -> str:
    return (
        f"{design.folds}-fold cross-validation: training sets overlap, so runs are not independent and no "
        "permutation or rank test is valid; variance inflated by n_test/n_train = "
        f"{design.test_train_ratio:.3g} (Nadeau & Bengio 2003)"
    )


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    alpha: float,
    n_resamples: int,
    rng: np.random.Generator,
    design: CrossValidationDesign | None = None,
) -> TestResult:
    """Two-sided test on the paired differences a − b (pairs share fold and seed).

    Without cross-validation: the sign-flip permutation test of mean(a − b) = 0, exact under exchangeability of
    a and b within pairs. With it: the corrected resampled t-test over all folds × seeds. Shapiro–Wilk on the
    differences is reported but does not choose the test.
    """
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = differences.size
    normality = (shapiro_normality(differences, "differences"),)
    if not np.any(differences):
        reason = f"all {n} paired differences are zero: no test is defined (no evidence of any difference)"
        return TestResult(NO_TEST, None, None, reason, normality, None, False, None)
    if design is not None:
        result = corrected_one_sample_t(differences, design=design, confidence_level=1 - alpha)
        if result.pvalue is None:
            reason = f"n={n} pairs with no spread in the differences: the corrected t-test is undefined"
            return TestResult(NO_TEST, None, None, reason, normality, None, False, None, NADEAU_BENGIO,
                              design.test_train_ratio)
        reason = f"paired by (fold, seed), n={n} pairs; {_cv_reason(design)}"
        return _corrected_result(result, CORRECTED_T, reason, normality, design)
    if n == 1:  # scipy needs two values; one pair has two equally extreme sign patterns
        reason = "paired by (fold, seed), n=1 pair: both sign patterns are equally extreme, so p = 1"
        return TestResult(SIGN_FLIP, float(differences[0]), 1.0, reason, normality, 1.0, False,
                          min_runs_for_significance(SIGN_FLIP, alpha), p_value_method=EXACT_PERMUTATION)
    result = stats.permutation_test(
        (differences,), _mean, permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=rng,
    )
    how = _enumeration(2.0**n, n_resamples)
    reason = f"paired by (fold, seed), n={n} pairs; sign-flip permutation test of the mean difference, {how}"
    floor, reachable, runs = _floor_fields(SIGN_FLIP, int(np.count_nonzero(differences)), None, alpha)
    return TestResult(
        SIGN_FLIP, float(result.statistic), float(result.pvalue), reason, normality, floor, reachable, runs,
        p_value_method=_permutation_method(2.0**n, n_resamples),
    )


def _two_sample_permutation(
    a: np.ndarray, b: np.ndarray, *, n_resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Statistic and two-sided p of the permutation test of mean(a) − mean(b).

    ``scipy.stats.permutation_test`` needs two runs per group; a group of one run (a failed partner) is
    enumerated here over all n_a + n_b choices of the lone run, with scipy's two-sided convention
    p = min(1, 2·min(P(T ≤ t), P(T ≥ t))).
    """
    if min(a.size, b.size) >= 2:
        result = stats.permutation_test(
            (a, b), _difference_of_means, permutation_type="independent", vectorized=True,
            n_resamples=n_resamples, alternative="two-sided", rng=rng,
        )
        return float(result.statistic), float(result.pvalue)
    pooled = np.concatenate([a, b])
    lone_in_a = a.size == 1
    observed = float(np.mean(a) - np.mean(b))
    null = []
    for index in range(pooled.size):
        rest = np.delete(pooled, index)
        null.append(pooled[index] - rest.mean() if lone_in_a else rest.mean() - pooled[index])
    null_array = np.array(null)
    tolerance = 1e-12 * max(1.0, abs(observed))
    less = np.mean(null_array <= observed + tolerance)
    greater = np.mean(null_array >= observed - tolerance)
    return observed, float(min(1.0, 2 * min(less, greater)))


def independent_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    labels: tuple[str, str],
    alpha: float,
    n_resamples: int,
    rng: np.random.Generator,
    design: CrossValidationDesign | None = None,
) -> TestResult:
    """Two-sided test for two independent groups (used when runs do not pair completely).

    Without cross-validation: the two-sample permutation test of mean(a) − mean(b), exact under
    exchangeability of the runs. With it: the corrected Welch t-test.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = a.size, b.size
    normality = (shapiro_normality(a, labels[0]), shapiro_normality(b, labels[1]))
    if n_a == 0 or n_b == 0:
        reason = f"n_a={n_a}, n_b={n_b}: a group has no valid runs, no test possible"
        return TestResult(NO_TEST, None, None, reason, normality, None, False, None)
    design_words = f"runs not completely paired (n_a={n_a}, n_b={n_b})"
    if design is not None:
        result = corrected_welch_t(a, b, design=design, confidence_level=1 - alpha)
        if result.pvalue is None:
            reason = f"{design_words}: a group has fewer than 2 runs or no spread, so no corrected t-test"
            return TestResult(NO_TEST, None, None, reason, normality, None, False, None, NADEAU_BENGIO,
                              design.test_train_ratio)
        return _corrected_result(result, CORRECTED_WELCH, f"{design_words}; {_cv_reason(design)}", normality,
                                 design)
    if np.ptp(np.concatenate([a, b])) == 0:
        reason = f"{design_words}; every value is equal: no test is defined (no evidence of any difference)"
        return TestResult(NO_TEST, None, None, reason, normality, None, False, None)
    statistic, pvalue = _two_sample_permutation(a, b, n_resamples=n_resamples, rng=rng)
    count = float(special.comb(n_a + n_b, n_a, exact=True))
    how = _enumeration(count, n_resamples)
    reason = f"{design_words}; two-sample permutation test of the difference of means, {how}"
    floor, reachable, runs = _floor_fields(PERMUTATION, n_a, n_b, alpha)
    method = EXACT_PERMUTATION if min(n_a, n_b) < 2 else _permutation_method(count, n_resamples)
    return TestResult(PERMUTATION, statistic, pvalue, reason, normality, floor, reachable, runs, p_value_method=method)
