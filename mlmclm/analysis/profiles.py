"""Performance profiles (Agarwal et al. 2021, "rliable", sec. 4.1): the run-score distribution of each condition.

For a threshold τ the profile is the fraction of all runs × tasks scores of a condition above τ,
F̂(τ) = (1/(N·M)) Σ_n Σ_m 1[x_{n,m} > τ] (rliable ``score_distributions``). Plotted over τ it shows the whole
distribution of scores, not one aggregate: where one condition's curve lies above another's everywhere, it is
stochastically better on these tasks. Bands are **stratified percentile bootstraps** (runs resampled within each
task, as for the IQM; :mod:`mlmclm.analysis.aggregate`), pointwise at each τ.

**Rule for "enough runs":** a condition gets a profile only with at least ``MIN_PROFILE_RUNS`` = 3 runs that
recorded every probe task. With 2 runs a task's bootstrap has only 3 distinct resamples and the band says nothing;
3 is also the default number of seeds. Conditions below the rule are left out and named in the report.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_PROFILE_RUNS = 3
PROFILE_POINTS = 41


@dataclass(frozen=True)
class PerformanceProfile:
    """Fraction of one condition's runs × tasks scores above each threshold, with pointwise bootstrap bands."""

    objective: str
    attention: str
    condition: str
    score: str
    tasks: tuple[str, ...]
    n_runs: int
    thresholds: tuple[float, ...]
    fraction_above: tuple[float, ...]
    band_low: tuple[float, ...]
    band_high: tuple[float, ...]
    confidence_level: float
    method: str  # "stratified percentile bootstrap (runs within each task), pointwise"


def fraction_above(*columns: np.ndarray, thresholds: np.ndarray, axis: int = -1) -> np.ndarray:
    """F̂(τ) for every τ: output axis first (thresholds × any leading axes), as ``scipy.stats.bootstrap`` wants."""
    scores = np.moveaxis(np.concatenate(columns, axis=axis), axis, -1)
    return np.moveaxis(np.mean(scores[..., None] > thresholds, axis=-2), -1, 0)


def profile_thresholds(matrices: Sequence[np.ndarray], points: int = PROFILE_POINTS) -> np.ndarray:
    """One τ grid for all conditions, spanning every score observed, so their curves can be compared."""
    scores = np.concatenate([matrix.ravel() for matrix in matrices])
    return np.linspace(scores.min(), scores.max(), points) if scores.size else np.array([])


def performance_profile(
    objective: str, attention: str, condition: str, scores: np.ndarray, tasks: Sequence[str],
    thresholds: np.ndarray, *, score: str, confidence_level: float, n_resamples: int, rng: np.random.Generator,
) -> PerformanceProfile | None:
    """Profile of a runs × tasks score matrix on ``thresholds``; ``None`` below ``MIN_PROFILE_RUNS`` runs."""
    if scores.shape[0] < MIN_PROFILE_RUNS:
        return None
    columns = tuple(scores[:, j] for j in range(scores.shape[1]))

    def statistic(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        return fraction_above(*resampled, thresholds=thresholds, axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)  # τ beyond every score: the band is a point
        result = stats.bootstrap(
            columns, statistic, vectorized=True, method="percentile", n_resamples=n_resamples,
            confidence_level=confidence_level, rng=rng,
        )
    point = statistic(*columns)
    low = np.where(np.isnan(result.confidence_interval.low), point, result.confidence_interval.low)
    high = np.where(np.isnan(result.confidence_interval.high), point, result.confidence_interval.high)
    return PerformanceProfile(
        objective, attention, condition, score, tuple(tasks), int(scores.shape[0]), tuple(map(float, thresholds)),
        tuple(map(float, point)), tuple(map(float, low)), tuple(map(float, high)), confidence_level,
        "stratified percentile bootstrap (runs within each task), pointwise",
    )
