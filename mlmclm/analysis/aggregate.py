"""Aggregate and probabilistic summaries across probe tasks (Agarwal et al. 2021, "rliable").

A condition's probe scores form a runs × tasks matrix. Two summaries that stay meaningful with few runs:

- **Interquartile mean (IQM)**: the mean of the middle 50% of all runs × tasks scores,
  ``scipy.stats.trim_mean(scores, 0.25, axis=None)`` — robust to one outlying run or task, less noisy than the
  median (Agarwal et al. 2021, sec. 4.2).
- **Probability of improvement** P(X > Y): for each task the probability that a run of X scores above a run of Y
  (ties count ½), i.e. the Mann–Whitney U of X over Y divided by n_X·n_Y, averaged over tasks (sec. 4.3).

Intervals are **stratified percentile bootstraps**: runs are resampled independently within each task (each task's
column is its own sample in ``scipy.stats.bootstrap``), as rliable's ``StratifiedBootstrap`` does. With 3 runs per
condition a bootstrap interval is coarse (it under-covers; docs/statistics.md), so these are descriptive summaries;
the tests of record stay the per-metric comparisons.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mlmclm.analysis.conditions import seed_means
from mlmclm.analysis.intervals import ConfidenceInterval
from mlmclm.grid.records import RunRecord

IQM_TRIM = 0.25


@dataclass(frozen=True)
class AggregateScore:
    """IQM of one condition's probe scores over runs × tasks, with its stratified bootstrap interval."""

    condition: str
    score: str  # e.g. "accuracy": the probe score aggregated
    tasks: tuple[str, ...]
    n_runs: int
    iqm: float | None
    ci: ConfidenceInterval


@dataclass(frozen=True)
class ImprovementProbability:
    """P(X > Y) averaged over probe tasks, with its stratified bootstrap interval."""

    group_x: str
    group_y: str
    score: str
    tasks: tuple[str, ...]
    n_x: int
    n_y: int
    probability: float | None
    ci: ConfidenceInterval


def iqm_statistic(*columns: np.ndarray, axis: int = -1) -> np.ndarray:
    """IQM over the concatenation of every task's runs (vectorised over leading axes for the bootstrap)."""
    return stats.trim_mean(np.concatenate(columns, axis=axis), IQM_TRIM, axis=axis)


def improvement_statistic(*columns: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over tasks of P(x > y) + ½P(x = y); the first half of ``columns`` are X's tasks, the second Y's."""
    half = len(columns) // 2
    per_task = []
    for x, y in zip(columns[:half], columns[half:], strict=True):
        x, y = np.moveaxis(x, axis, -1), np.moveaxis(y, axis, -1)
        greater = x[..., :, None] > y[..., None, :]
        equal = x[..., :, None] == y[..., None, :]
        per_task.append(np.mean(greater + 0.5 * equal, axis=(-2, -1)))
    return np.mean(per_task, axis=0)


def _stratified_interval(
    columns: Sequence[np.ndarray], statistic, *, confidence_level: float, n_resamples: int, rng: np.random.Generator
) -> ConfidenceInterval:
    if min(column.size for column in columns) < 2:
        return ConfidenceInterval(None, None, confidence_level, "none", "fewer than 2 runs: no interval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            tuple(columns), statistic, vectorized=True, method="percentile", n_resamples=n_resamples,
            confidence_level=confidence_level, rng=rng,
        )
    if np.ptp(result.bootstrap_distribution) == 0:  # e.g. P(X > Y) = 1 in every resample
        note = "every resample gives the same value, so the bootstrap cannot measure uncertainty: no interval"
        return ConfidenceInterval(None, None, confidence_level, "none", note)
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    note = "stratified bootstrap (runs resampled within each task), percentile; descriptive at small n"
    return ConfidenceInterval(low, high, confidence_level, "stratified percentile", note)


def aggregate_iqm(
    condition: str, scores: np.ndarray, tasks: Sequence[str], *, score: str, confidence_level: float,
    n_resamples: int, rng: np.random.Generator,
) -> AggregateScore:
    """IQM of a runs × tasks score matrix with a stratified bootstrap interval (rliable ``aggregate_iqm``)."""
    n_runs = int(scores.shape[0])
    if n_runs == 0:
        none = ConfidenceInterval(None, None, confidence_level, "none", "no runs with every probe task")
        return AggregateScore(condition, score, tuple(tasks), 0, None, none)
    columns = [scores[:, j] for j in range(scores.shape[1])]
    ci = _stratified_interval(
        columns, iqm_statistic, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng
    )
    return AggregateScore(condition, score, tuple(tasks), n_runs, float(iqm_statistic(*columns)), ci)


def probability_of_improvement(
    group_x: str, scores_x: np.ndarray, group_y: str, scores_y: np.ndarray, tasks: Sequence[str], *, score: str,
    confidence_level: float, n_resamples: int, rng: np.random.Generator,
) -> ImprovementProbability:
    """P(X > Y) over tasks (rliable ``probability_of_improvement``) with a stratified bootstrap interval."""
    n_x, n_y = int(scores_x.shape[0]), int(scores_y.shape[0])
    if n_x == 0 or n_y == 0:
        none = ConfidenceInterval(None, None, confidence_level, "none", "a group has no runs with every probe task")
        return ImprovementProbability(group_x, group_y, score, tuple(tasks), n_x, n_y, None, none)
    columns = [scores_x[:, j] for j in range(len(tasks))] + [scores_y[:, j] for j in range(len(tasks))]
    ci = _stratified_interval(
        columns, improvement_statistic, confidence_level=confidence_level, n_resamples=n_resamples, rng=rng
    )
    value = float(improvement_statistic(*columns))
    return ImprovementProbability(group_x, group_y, score, tuple(tasks), n_x, n_y, value, ci)


def probe_score_matrix(
    runs: Sequence[RunRecord], objective: str, attention: str, tasks: Sequence[str], score: str,
    *, average_folds: bool = False,
) -> np.ndarray:
    """Runs × tasks matrix of ``probe/<task>/<score>`` for the completed runs of a condition that have every task.

    ``average_folds`` (cross-validation): one row per seed, the mean over its folds. Folds share training data, so
    a bootstrap over (fold, seed) runs would treat correlated runs as independent; seeds are independent given the
    fixed folds (the blocks of the ranking, ranking.py).
    """
    rows, seeds = [], []
    for run in runs:
        if not run.completed or (run.objective, run.attention) != (objective, attention):
            continue
        values = [run.metrics.get(f"probe/{task}/{score}") for task in tasks]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values):
            rows.append([float(v) for v in values])
            seeds.append(run.seed)
    matrix = np.array(rows, dtype=float).reshape(len(rows), len(tasks))
    if not average_folds:
        return matrix
    return seed_means(matrix, seeds)[0]


def probe_tasks(runs: Sequence[RunRecord], score: str) -> tuple[str, ...]:
    """Probe tasks whose ``probe/<task>/<score>`` every completed run recorded, in first-seen order."""
    completed = [run.metrics for run in runs if run.completed]
    names: dict[str, None] = {}
    for metrics in completed:
        for name in metrics:
            parts = name.split("/")
            if len(parts) == 3 and parts[0] == "probe" and parts[2] == score:
                names.setdefault(parts[1], None)
    return tuple(task for task in names if all(f"probe/{task}/{score}" in m for m in completed))
