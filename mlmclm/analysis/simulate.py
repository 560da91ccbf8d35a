"""Simulations behind the default procedures: interval coverage and type-I error at the n researchers run.

Three questions, each a pure function of a seed and a size (``benchmarks/simulations/small_n.py`` prints the tables
in docs/statistics.md; the test suite runs them at reduced size):

1. :func:`interval_coverage` — how often a nominal 95% interval of a mean covers the true mean at n = 3–10:
   the BCa bootstrap (Efron 1987) against the Student t-interval, under a normal and a skewed (lognormal)
   population.
2. :func:`type_one_error` — how often each paired procedure rejects a true null at α: the old default
   (Shapiro–Wilk, then the paired t-test or Wilcoxon), the t-test alone, and the sign-flip permutation test,
   under three nulls: normal differences, *exchangeable* skewed scores (each run's score lognormal, both
   conditions alike, so the differences are symmetric), and skewed differences with mean 0 (not symmetric).
3. :func:`cv_null_rejection` — the Nadeau & Bengio (2003) setting: two learners of equal expected accuracy
   (each a nearest-centroid classifier on one of two equally informative features, so the null holds by
   symmetry) scored by r repetitions of k-fold cross-validation on one data set; how often the naive paired
   t-test and the corrected resampled t-test reject.

Every rate comes with its Clopper–Pearson interval (``scipy.stats.binomtest``), so "at α" means "α inside the
interval" and "above α" means "the interval above α".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.model_selection import KFold
from sklearn.neighbors import NearestCentroid

from mlmclm.analysis.resampled import CrossValidationDesign, corrected_one_sample_t

POPULATIONS = ("normal", "lognormal")
NULLS = ("normal differences", "exchangeable skewed scores", "skewed differences, mean 0")
PROCEDURES = ("Shapiro -> t or Wilcoxon (old default)", "paired t-test", "sign-flip permutation (default)")
_LOGNORMAL_MEAN = float(np.exp(0.5))  # mean of lognormal(0, 1)


@dataclass(frozen=True)
class Rate:
    """k events in ``reps`` trials, with the rate and its 95% Clopper–Pearson interval."""

    label: str
    n: int
    setting: str
    events: int
    reps: int

    @property
    def rate(self) -> float:
        return self.events / self.reps

    @property
    def interval(self) -> tuple[float, float]:
        ci = stats.binomtest(self.events, self.reps).proportion_ci(0.95, method="exact")
        return float(ci.low), float(ci.high)


def _population(name: str, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, float]:
    if name == "normal":
        return rng.normal(size=size), 0.0
    return rng.lognormal(size=size), _LOGNORMAL_MEAN


def interval_coverage(
    n: int, population: str, *, reps: int, rng: np.random.Generator, confidence_level: float = 0.95,
    bootstrap_resamples: int = 999,
) -> list[Rate]:
    """Coverage of the true mean by the BCa bootstrap and the t-interval over ``reps`` samples of size n."""
    data, truth = _population(population, (reps, n), rng)
    boot = stats.bootstrap(
        (data,), np.mean, axis=-1, vectorized=True, method="BCa", n_resamples=bootstrap_resamples,
        confidence_level=confidence_level, rng=rng,
    ).confidence_interval
    t = stats.ttest_1samp(data, 0.0, axis=-1).confidence_interval(confidence_level)
    covered = {
        "BCa bootstrap": (boot.low <= truth) & (truth <= boot.high),
        "t-interval": (t.low <= truth) & (truth <= t.high),
    }
    return [Rate(label, n, population, int(np.sum(hit)), reps) for label, hit in covered.items()]


def _null_differences(null: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    if null == "normal differences":
        return rng.normal(size=size)
    if null == "exchangeable skewed scores":
        return rng.lognormal(size=size) - rng.lognormal(size=size)
    return rng.lognormal(size=size) - _LOGNORMAL_MEAN


def _mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis)


def paired_pvalues(differences: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """p-values of each paired procedure for every row of ``differences`` (rows are replications)."""
    t = stats.ttest_1samp(differences, 0.0, axis=-1).pvalue
    normal = stats.shapiro(differences, axis=-1).pvalue > alpha
    wilcoxon = stats.wilcoxon(differences, axis=-1, method="exact").pvalue
    sign_flip = stats.permutation_test(
        (differences,), _mean, permutation_type="samples", vectorized=True, n_resamples=np.inf, axis=-1
    ).pvalue
    return {PROCEDURES[0]: np.where(normal, t, wilcoxon), PROCEDURES[1]: t, PROCEDURES[2]: sign_flip}


def type_one_error(n: int, null: str, *, reps: int, rng: np.random.Generator, alpha: float = 0.05) -> list[Rate]:
    """How often each paired procedure rejects at ``alpha`` when the null is true (n pairs, ``reps`` times)."""
    differences = _null_differences(null, (reps, n), rng)
    rejections = paired_pvalues(differences, alpha)
    return [Rate(label, n, null, int(np.sum(p <= alpha)), reps) for label, p in rejections.items()]


def _accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray, column: int) -> float:
    learner = NearestCentroid().fit(features[train][:, [column]], labels[train])
    return float(learner.score(features[test][:, [column]], labels[test]))


def _fold_differences(
    features: np.ndarray, labels: np.ndarray, folds: int, repetitions: int, rng: np.random.Generator
) -> np.ndarray:
    """Accuracy of the feature-0 learner minus the feature-1 learner on every held-out fold of every repetition."""
    differences = []
    for _ in range(repetitions):
        splitter = KFold(n_splits=folds, shuffle=True, random_state=int(rng.integers(2**31)))
        for train, test in splitter.split(features):
            differences.append(
                _accuracy(features, labels, train, test, 0) - _accuracy(features, labels, train, test, 1)
            )
    return np.array(differences)


def cv_null_rejection(
    *, reps: int, folds: int = 3, repetitions: int = 5, n_samples: int = 60, alpha: float = 0.05, seed: int = 0
) -> list[Rate]:
    """Rejection rates of the naive and the corrected paired t-test for r × k cross-validated differences.

    Each replication draws a fresh data set: two standard-normal features and a label y = 1[x₀ + x₁ + ε > 0],
    ε ~ N(0, 1), so both features are equally informative and the two learners have equal expected accuracy.
    """
    rng = np.random.default_rng(seed)
    design = CrossValidationDesign(folds)
    naive = corrected = 0
    for _ in range(reps):
        features = rng.normal(size=(n_samples, 2))
        labels = (features.sum(axis=1) + rng.normal(size=n_samples) > 0).astype(int)
        differences = _fold_differences(features, labels, folds, repetitions, rng)
        if np.ptp(differences) == 0:
            continue  # both t-tests undefined and neither rejects
        naive += bool(stats.ttest_1samp(differences, 0.0).pvalue <= alpha)
        result = corrected_one_sample_t(differences, design=design, confidence_level=1 - alpha)
        corrected += bool(result.pvalue is not None and result.pvalue <= alpha)
    setting, n = f"{repetitions} x {folds}-fold CV", folds * repetitions
    return [
        Rate("naive paired t-test", n, setting, naive, reps),
        Rate("corrected resampled t-test", n, setting, corrected, reps),
    ]


def markdown_table(rates: Sequence[Rate], value: str) -> list[str]:
    """Rows ``| setting | procedure | n | value [95% CI] |`` for docs/statistics.md."""
    lines = [f"| setting | procedure | n | {value} [95% CI] | reps |", "|---|---|---|---|---|"]
    for rate in rates:
        low, high = rate.interval
        lines.append(
            f"| {rate.setting} | {rate.label} | {rate.n} | {rate.rate:.3f} [{low:.3f}, {high:.3f}] | {rate.reps} |"
        )
    return lines
