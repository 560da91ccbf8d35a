"""From raw runs to per-condition samples of one metric: which runs count, which are excluded and why.

A *condition* is one (objective, attention) cell of the grid. Only runs with status ``"completed"`` and a
finite value of the metric count; every other run is kept as an :class:`ExcludedRun` so the report names it.
Runs of two conditions that share ``(fold, seed)`` saw the same data split and seed, so they pair up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlmclm.analysis.metrics import metric_info
from mlmclm.grid.records import RunRecord


def metric_direction(metric: str) -> str | None:
    """``"higher"`` or ``"lower"`` when the metric name says which is better, else ``None`` (metrics.py)."""
    return metric_info(metric).direction


def is_probe_metric(metric: str) -> bool:
    return metric_info(metric).probe


def is_probe_baseline(metric: str) -> bool:
    """True for ``probe/<task>/<baseline>``: shown beside the scores, not tested as outcomes by default."""
    return metric_info(metric).probe_baseline


def is_length_metric(metric: str) -> bool:
    """``eval_len<k>/loss`` and ``eval_len<k>/accuracy``: scores at k x the training length (docs/training.md)."""
    return metric_info(metric).length


def is_like_for_like(metric: str) -> bool:
    """True when MLM and CLM runs are scored on the same task (probes, cost), so a cross-objective
    difference can be read as a ranking; losses and token accuracies score different prediction tasks."""
    return metric_info(metric).like_for_like


@dataclass(frozen=True)
class Observation:
    """One usable value of a metric from one run."""

    run_id: str
    fold: int | None
    seed: int | None
    value: float

    @property
    def pair_key(self) -> tuple[int | None, int | None]:
        return (self.fold, self.seed)


@dataclass(frozen=True)
class ExcludedRun:
    """A run that does not count for a metric, with the reason the report prints."""

    run_id: str
    status: str
    reason: str


@dataclass(frozen=True)
class ConditionSample:
    """All usable values of one metric for one (objective, attention) condition."""

    objective: str
    attention: str
    metric: str
    observations: tuple[Observation, ...]
    excluded: tuple[ExcludedRun, ...]

    @property
    def label(self) -> str:
        return condition_label(self.objective, self.attention)

    @property
    def values(self) -> np.ndarray:
        return np.array([obs.value for obs in self.observations], dtype=float)

    @property
    def n(self) -> int:
        return len(self.observations)


def seed_means(rows: np.ndarray, seeds: Sequence[int | None]) -> tuple[np.ndarray, tuple[int | None, ...]]:
    """One row per seed (first-seen order): the mean of that seed's rows, i.e. of its folds under
    cross-validation. Folds share training data and a seed's folds share the seed, so under CV the seeds, not
    the (fold, seed) runs, are the independent units (as the ranking's blocks, ranking.py). A point missing
    from any of a seed's rows (NaN) is missing for the seed: it is averaged only where all its folds have it.
    """
    rows = np.asarray(rows, dtype=float)
    order = tuple(dict.fromkeys(seeds))
    means = [rows[[i for i, seed in enumerate(seeds) if seed == key]].mean(axis=0) for key in order]
    return np.array(means, dtype=float).reshape(len(order), *rows.shape[1:]), order


def condition_label(objective: str, attention: str) -> str:
    """The name of a condition as run ids spell it, e.g. ``rope_mlm``."""
    return f"{attention}_{objective}"


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def collect_samples(runs: Iterable[RunRecord], metric: str) -> dict[tuple[str, str], ConditionSample]:
    """Group runs by (objective, attention) and split them into usable observations and exclusions."""
    observations: dict[tuple[str, str], list[Observation]] = {}
    excluded: dict[tuple[str, str], list[ExcludedRun]] = {}
    for run in runs:
        key = (run.objective, run.attention)
        observations.setdefault(key, [])
        excluded.setdefault(key, [])
        if not run.completed:
            reason = f"status {run.status}" + (f": {run.error}" if run.error else "")
            excluded[key].append(ExcludedRun(run.run_id, run.status, reason))
            continue
        raw = run.metrics.get(metric)
        value = _finite_number(raw)
        if value is None:
            reason = f"{metric} not recorded" if raw is None else f"{metric} is not a finite number ({raw!r})"
            excluded[key].append(ExcludedRun(run.run_id, run.status, reason))
            continue
        observations[key].append(Observation(run.run_id, run.fold, run.seed, value))
    return {
        key: ConditionSample(key[0], key[1], metric, tuple(observations[key]), tuple(excluded[key]))
        for key in observations
    }


def paired_values(a: ConditionSample, b: ConditionSample) -> tuple[np.ndarray, np.ndarray] | None:
    """Values of ``a`` and ``b`` aligned by (fold, seed) when *every* run of each has exactly one partner.

    Incomplete pairing returns ``None`` so the comparison falls back to independent tests on all valid runs,
    rather than silently dropping the unmatched ones.
    """
    keys_a = [obs.pair_key for obs in a.observations]
    keys_b = [obs.pair_key for obs in b.observations]
    if not keys_a or len(set(keys_a)) != len(keys_a) or len(set(keys_b)) != len(keys_b):
        return None
    if set(keys_a) != set(keys_b):
        return None
    by_key_b = {obs.pair_key: obs.value for obs in b.observations}
    order = sorted(keys_a, key=lambda key: (key[0] is None, key[0] or 0, key[1] is None, key[1] or 0))
    by_key_a = {obs.pair_key: obs.value for obs in a.observations}
    return (
        np.array([by_key_a[key] for key in order], dtype=float),
        np.array([by_key_b[key] for key in order], dtype=float),
    )


def recorded_metrics(runs: Sequence[RunRecord]) -> list[str]:
    """Every metric name with a numeric value in at least one completed run, in first-seen order."""
    names: dict[str, None] = {}
    for run in runs:
        if not run.completed:
            continue
        for name, value in run.metrics.items():
            if _finite_number(value) is not None:
                names.setdefault(name, None)
    return list(names)
