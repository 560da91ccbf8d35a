"""t-tests and t-intervals for means of runs, with the Nadeau–Bengio correction when the runs share training data.

Under k-fold cross-validation every training set holds (k − 2)/(k − 1) of every other one, so the k·r scores of
r seeds × k folds are positively correlated and the plain variance s²/n of their mean is too small: a naive
t-test on them rejects a true null far more often than α. Nadeau & Bengio (2003, *Machine Learning* 52:239–281,
eq. 9) inflate the variance of a mean over J resamples to (1/J + n_test/n_train)·s²; Bouckaert & Frank (2004,
PAKDD, LNCS 3056:3–12) use the same form over all r × k scores of repeated k-fold cross-validation (the
"corrected repeated k-fold cv test"), with J − 1 degrees of freedom. For k folds n_test/n_train = 1/(k − 1).

Without folds the ratio is 0 and everything below is the ordinary one-sample t-test, t-interval and Welch test
(``scipy.stats.ttest_1samp`` / ``ttest_ind(equal_var=False)``), whose coverage stays near nominal at n = 3
under normality, where a bootstrap interval covers far less (docs/statistics.md, simulated tables).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

NO_CV_CORRECTION = "none"
NADEAU_BENGIO = "nadeau_bengio"


@dataclass(frozen=True)
class CrossValidationDesign:
    """k-fold cross-validation: every training set is (k − 1)/k of the data, every held-out fold 1/k."""

    folds: int

    @property
    def test_train_ratio(self) -> float:
        """n_test / n_train = (1/k) / ((k − 1)/k) = 1/(k − 1)."""
        return 1.0 / (self.folds - 1)


@dataclass(frozen=True)
class TResult:
    """A t statistic for a mean (or difference of means) with its interval; ``None`` fields when undefined."""

    statistic: float | None
    pvalue: float | None
    df: float | None
    estimate: float
    standard_error: float | None
    low: float | None
    high: float | None


def _ratio(design: CrossValidationDesign | None) -> float:
    return 0.0 if design is None else design.test_train_ratio


def corrected_one_sample_t(
    values: np.ndarray, *, design: CrossValidationDesign | None, confidence_level: float
) -> TResult:
    """Two-sided t-test of mean = 0 and t-interval of the mean, variance corrected for CV overlap.

    Parameters
    ----------
    values : the n scores (or paired differences), one per (fold, seed).
    design : the cross-validation design, or ``None`` for independent runs (no correction).
    confidence_level : level of the two-sided interval.

    Returns
    -------
    TResult with t = x̄ / SE, SE = √((1/n + n_test/n_train)·s²), df = n − 1, p = 2·P(T_df > |t|) and the
    interval x̄ ± t_{1−α/2, df}·SE. Fewer than 2 values: no test and no interval; s = 0: no test, and the
    interval is the point itself.

    Notes
    -----
    With ``design=None`` this equals ``scipy.stats.ttest_1samp`` and its ``confidence_interval``.

    References
    ----------
    Nadeau, C. & Bengio, Y. (2003). Inference for the generalization error. *Machine Learning* 52:239–281.
    Bouckaert, R. R. & Frank, E. (2004). Evaluating the replicability of significance tests for comparing
    learning algorithms. *PAKDD 2004*, LNCS 3056:3–12.
    """
    values = np.asarray(values, dtype=float)
    n = values.size
    estimate = float(np.mean(values)) if n else float("nan")
    if n < 2:
        return TResult(None, None, None, estimate, None, None, None)
    variance = float(np.var(values, ddof=1))
    df = n - 1
    if variance == 0 or np.ptp(values) <= 1e-12 * max(1.0, abs(estimate)):
        return TResult(None, None, df, estimate, 0.0, estimate, estimate)
    se = float(np.sqrt((1.0 / n + _ratio(design)) * variance))
    t = estimate / se
    quantile = float(stats.t.ppf(0.5 + confidence_level / 2, df))
    pvalue = float(2 * stats.t.sf(abs(t), df))
    return TResult(t, pvalue, df, estimate, se, estimate - quantile * se, estimate + quantile * se)


def corrected_welch_t(
    a: np.ndarray, b: np.ndarray, *, design: CrossValidationDesign | None, confidence_level: float
) -> TResult:
    """Welch's two-sided t-test and interval of mean(a) − mean(b), each group's variance corrected for CV.

    Notes
    -----
    v_i = (1/n_i + n_test/n_train)·s_i², t = (x̄_a − x̄_b)/√(v_a + v_b), Welch–Satterthwaite
    df = (v_a + v_b)² / (v_a²/(n_a − 1) + v_b²/(n_b − 1)) (Welch 1947). With ``design=None`` this is
    ``scipy.stats.ttest_ind(a, b, equal_var=False)``. The CV form applies Nadeau & Bengio's inflation to each
    group separately; it is used only when runs of a CV grid do not pair up (a failed run), and ignores the
    correlation between the groups that share folds, which the paired form would use.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n_a, n_b = a.size, b.size
    estimate = float(np.mean(a) - np.mean(b)) if n_a and n_b else float("nan")
    if n_a < 2 or n_b < 2:
        return TResult(None, None, None, estimate, None, None, None)
    ratio = _ratio(design)
    v_a = (1.0 / n_a + ratio) * float(np.var(a, ddof=1))
    v_b = (1.0 / n_b + ratio) * float(np.var(b, ddof=1))
    if v_a + v_b == 0:
        return TResult(None, None, None, estimate, 0.0, estimate, estimate)
    df = (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    se = float(np.sqrt(v_a + v_b))
    t = estimate / se
    quantile = float(stats.t.ppf(0.5 + confidence_level / 2, df))
    pvalue = float(2 * stats.t.sf(abs(t), df))
    return TResult(t, pvalue, float(df), estimate, se, estimate - quantile * se, estimate + quantile * se)
