"""Choosing and running the two-sided test for one comparison, and saying why.

Decision rule (docs/statistics.md): Shapiro–Wilk on the paired differences (paired design) or on each group
(independent design) at level α. If every sample tested passes, the paired t-test (``ttest_rel``) or Welch's
t-test (``ttest_ind(equal_var=False)``); if any fails, or n < 3 makes Shapiro–Wilk impossible, the Wilcoxon
signed-rank test or the Mann–Whitney U test. Rank tests use the exact null distribution when there are no ties
(and, for Wilcoxon, no zero differences), else a permutation test (exact enumeration when the number of
rearrangements is below the resample count). Rank tests have a floor on their p-value at small n; it is
computed from the exact null distribution so the report can say when significance is out of reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

PAIRED_T = "paired t-test"
WELCH_T = "Welch t-test"
WILCOXON = "Wilcoxon signed-rank"
MANN_WHITNEY = "Mann-Whitney U"
NO_TEST = "none"


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
    """Outcome of the chosen test; ``pvalue`` is ``None`` when no test is defined for the data."""

    test: str
    statistic: float | None
    pvalue: float | None
    test_reason: str
    normality: tuple[NormalityResult, ...]
    min_achievable_p: float | None
    can_reach_significance: bool
    min_runs_for_significance: int | None


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

    Wilcoxon signed-rank with n non-zero differences: all signs alike has probability 2/2ⁿ. Mann–Whitney U:
    complete separation of the groups has probability 2/C(n_a + n_b, n_a). t-tests have no floor (0.0).
    """
    if test == WILCOXON:
        return min(1.0, 2.0 / 2.0**n_a) if n_a > 0 else 1.0
    if test == MANN_WHITNEY:
        assert n_b is not None
        return min(1.0, 2.0 / float(special.comb(n_a + n_b, n_a, exact=True))) if n_a and n_b else 1.0
    return 0.0


def min_runs_for_significance(test: str, alpha: float) -> int | None:
    """Smallest n (pairs for Wilcoxon, runs per condition for Mann–Whitney) whose p-value floor is ≤ α."""
    if test not in (WILCOXON, MANN_WHITNEY):
        return None
    n = 1
    while min_achievable_pvalue(test, n, n) > alpha:
        n += 1
    return n


def _has_ties(values: np.ndarray) -> bool:
    return len(np.unique(values)) < len(values)


def _rank_method(has_ties: bool, n_resamples: int, rng: np.random.Generator) -> str | stats.PermutationMethod:
    return stats.PermutationMethod(n_resamples=n_resamples, rng=rng) if has_ties else "exact"


def _describe_normality(results: tuple[NormalityResult, ...], alpha: float) -> str:
    parts = []
    for result in results:
        if result.pvalue is None:
            parts.append(f"{result.sample}: {result.note}")
        else:
            verdict = "consistent with normal" if result.pvalue > alpha else "not normal"
            parts.append(f"{result.sample}: Shapiro-Wilk p={result.pvalue:.3g} ({verdict} at α={alpha:g})")
    return "; ".join(parts)


def _floor_fields(test: str, n_a: int, n_b: int | None, alpha: float) -> tuple[float, bool, int | None]:
    floor = min_achievable_pvalue(test, n_a, n_b)
    return floor, floor <= alpha, min_runs_for_significance(test, alpha)


def paired_test(
    a: np.ndarray, b: np.ndarray, *, alpha: float, n_resamples: int, rng: np.random.Generator
) -> TestResult:
    """Two-sided test on the paired differences a − b (pairs share fold and seed)."""
    differences = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = differences.size
    normality = (shapiro_normality(differences, "differences"),)
    described = _describe_normality(normality, alpha)
    if not np.any(differences):
        reason = f"all {n} paired differences are zero: no test is defined (no evidence of any difference)"
        return TestResult(NO_TEST, None, None, reason, normality, None, False, None)
    if normality[0].pvalue is not None and normality[0].pvalue > alpha:
        result = stats.ttest_rel(a, b)
        reason = f"paired by (fold, seed), n={n} pairs; {described}, so the paired t-test"
        statistic, pvalue = float(result.statistic), float(result.pvalue)
        return TestResult(PAIRED_T, statistic, pvalue, reason, normality, 0.0, True, None)
    nonzero = differences[differences != 0]
    ties = _has_ties(np.abs(nonzero)) or nonzero.size < n
    result = stats.wilcoxon(differences, method=_rank_method(ties, n_resamples, rng))
    how = "permutation p-value (ties or zero differences)" if ties else "exact p-value"
    reason = f"paired by (fold, seed), n={n} pairs; {described}, so the Wilcoxon signed-rank test, {how}"
    floor, reachable, runs = _floor_fields(WILCOXON, nonzero.size, None, alpha)
    return TestResult(
        WILCOXON, float(result.statistic), float(result.pvalue), reason, normality, floor, reachable, runs
    )


def independent_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    labels: tuple[str, str],
    alpha: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> TestResult:
    """Two-sided test for two independent groups (used when runs do not pair completely)."""
    n_a, n_b = np.size(a), np.size(b)
    normality = (shapiro_normality(a, labels[0]), shapiro_normality(b, labels[1]))
    if n_a == 0 or n_b == 0:
        reason = f"n_a={n_a}, n_b={n_b}: a group has no valid runs, no test possible"
        return TestResult(NO_TEST, None, None, reason, normality, None, False, None)
    described = _describe_normality(normality, alpha)
    if all(result.pvalue is not None and result.pvalue > alpha for result in normality):
        result = stats.ttest_ind(a, b, equal_var=False)
        reason = f"runs not completely paired (n_a={n_a}, n_b={n_b}); {described}, so Welch's t-test"
        statistic, pvalue = float(result.statistic), float(result.pvalue)
        return TestResult(WELCH_T, statistic, pvalue, reason, normality, 0.0, True, None)
    ties = _has_ties(np.concatenate([a, b]))
    result = stats.mannwhitneyu(a, b, method=_rank_method(ties, n_resamples, rng))
    how = "permutation p-value (tied values)" if ties else "exact p-value"
    reason = (
        f"runs not completely paired (n_a={n_a}, n_b={n_b}); {described}, so the Mann-Whitney U test, {how}"
    )
    floor, reachable, runs = _floor_fields(MANN_WHITNEY, n_a, n_b, alpha)
    return TestResult(
        MANN_WHITNEY, float(result.statistic), float(result.pvalue), reason, normality, floor, reachable, runs
    )
