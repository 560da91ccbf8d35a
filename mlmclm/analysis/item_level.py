"""Item-level analysis of probe scores: every run is scored on the same fixed probe test items.

A seed-level test treats each run's accuracy as exact, but it is itself an estimate from one sample of n
test items (standard error sqrt(p(1 − p) / n)), and every run shares that sample. The item-level analysis
treats the items as the sampling unit (cf. Card et al., 2020, "With Little Power Comes Great Responsibility",
EMNLP; Dror et al., 2018, "The Hitchhiker's Guide to Testing Statistical Significance in NLP", ACL):

- several runs per condition: per item, correctness averaged over a condition's runs; the difference
  d_i = ā_i − b̄_i is paired over items; its mean (= accuracy a − accuracy b) gets a bootstrap CI over items
  and a two-sided sign-flip permutation p-value over items (:func:`scipy.stats.permutation_test`);
- one run per condition: McNemar's exact test on the discordant items (statsmodels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from mlmclm.analysis import intervals
from mlmclm.analysis.intervals import ConfidenceInterval
from mlmclm.grid.records import RunRecord


@dataclass(frozen=True)
class ItemLevelComparison:
    """Condition a minus condition b on one probe task's test items (accuracy of the mean-pooled probe)."""

    task: str
    family: str
    group_a: str
    group_b: str
    n_items: int
    runs_a: int
    runs_b: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    difference_ci: ConfidenceInterval
    standard_error_a: float  # sqrt(p(1 - p) / n) of condition a's accuracy on these n items
    standard_error_b: float
    test: str  # "sign-flip permutation over items" | "McNemar exact"
    p_value: float | None
    p_adjusted: float | None = None
    significant: bool = False


def item_standard_error(accuracy: float, n_items: int) -> float:
    """Binomial standard error of an accuracy measured on ``n_items`` items: sqrt(p(1 − p) / n)."""
    return math.sqrt(accuracy * (1.0 - accuracy) / n_items) if n_items else math.nan


def correctness_matrix(runs: Sequence[RunRecord], task: str) -> np.ndarray | None:
    """[runs, items] 0/1 matrix from the runs' ``probe_items[task]``; None when absent or of unequal length."""
    rows = [(run.probe_items or {}).get(task) for run in runs]
    if not rows or any(not isinstance(row, str) or not row for row in rows) or len({len(r) for r in rows}) != 1:
        return None
    return np.array([[character == "1" for character in row] for row in rows], dtype=float)


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, float]:
    """McNemar's exact test of two classifiers scored on the same items: (statistic, two-sided p).

    The 2x2 table counts items right/wrong under a and b; only the discordant cells (a right, b wrong; a
    wrong, b right) carry information, and the exact test is a binomial test on them (McNemar, 1947)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    result = mcnemar(table, exact=True)
    return float(result.statistic), float(result.pvalue)


def bootstrap_item_difference(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    *,
    confidence_level: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> tuple[float, ConfidenceInterval, float | None]:
    """Mean over items of d_i = (mean over a's runs of correct) − (mean over b's runs), with a bootstrap CI
    over items and a two-sided sign-flip permutation p-value (H0: d_i symmetric about 0).

    ``correct_a``/``correct_b`` are [runs, items] 0/1 matrices on the same items."""
    differences = np.mean(correct_a, axis=0) - np.mean(correct_b, axis=0)
    ci_rng, test_rng = rng.spawn(2)  # independent streams: neither depends on how much the other drew
    ci = intervals.bootstrap_ci(
        (differences,), intervals.mean_statistic, confidence_level=confidence_level, n_resamples=n_resamples,
        rng=ci_rng,
    )
    if not np.any(differences):
        return 0.0, ci, 1.0
    test = stats.permutation_test(
        (differences,), intervals.mean_statistic, permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", random_state=test_rng,
    )
    return float(np.mean(differences)), ci, float(test.pvalue)


def compare_items(
    runs_a: Sequence[RunRecord],
    runs_b: Sequence[RunRecord],
    task: str,
    *,
    family: str,
    labels: tuple[str, str],
    confidence_level: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> ItemLevelComparison | None:
    """The item-level comparison of two conditions' runs on ``task``; None without comparable item records."""
    a, b = correctness_matrix(runs_a, task), correctness_matrix(runs_b, task)
    if a is None or b is None or a.shape[1] != b.shape[1]:
        return None
    n = a.shape[1]
    accuracy_a, accuracy_b = float(a.mean()), float(b.mean())
    if a.shape[0] == 1 and b.shape[0] == 1:
        _, p_value = mcnemar_exact(a[0].astype(bool), b[0].astype(bool))
        _, ci, _ = bootstrap_item_difference(
            a, b, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng
        )
        test = "McNemar exact"
    else:
        _, ci, p_value = bootstrap_item_difference(
            a, b, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng
        )
        test = "sign-flip permutation over items"
    return ItemLevelComparison(
        task=task,
        family=family,
        group_a=labels[0],
        group_b=labels[1],
        n_items=n,
        runs_a=a.shape[0],
        runs_b=b.shape[0],
        accuracy_a=accuracy_a,
        accuracy_b=accuracy_b,
        difference=accuracy_a - accuracy_b,
        difference_ci=ci,
        standard_error_a=item_standard_error(accuracy_a, n),
        standard_error_b=item_standard_error(accuracy_b, n),
        test=test,
        p_value=p_value,
    )
