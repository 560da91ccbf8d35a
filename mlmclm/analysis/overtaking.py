"""When one objective overtakes the other on a probe during training, with a bootstrap interval.

Pure functions from probe curves (``probes.eval_every``; mlmclm/probes/curves.py) to frozen results, no I/O.
Published MLM-vs-CLM comparisons report a crossing: the causal model's representations ahead early, the
masked model's ahead late. Here the leader at a checkpoint is the objective with the better mean probe score
over its runs, d(t) = mean_a(t) − mean_b(t) (sign flipped when lower is better). When the leader at the
last checkpoint differs from the leader at the first checkpoint where they differ (a tie at the start, both at
chance, says nothing), the overtaking step is where d last changes sign,
linearly interpolated between the two checkpoints around it:

    t* = t_i + (t_{i+1} − t_i) · d_i / (d_i − d_{i+1}),   i the last checkpoint where the early leader leads

so the late leader stays ahead from t* on. The interval is a percentile bootstrap (Efron & Tibshirani 1993,
*An Introduction to the Bootstrap*, ch. 13): runs of each objective are resampled with replacement
independently, t* is recomputed, and the interval spans the central ``confidence_level`` of the resamples
that show the same overtaking (early and late leaders as observed). ``crossing_share`` is the share of
resamples that do: with few seeds it says how much of the crossing is noise.

Under cross-validation the resampled units are seeds, each the mean of its folds' curves (``average_folds``):
folds share training data and a seed's folds share the seed, so resampling (fold, seed) runs independently
would treat correlated runs as independent and narrow the interval (as for the curve bands, curves.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mlmclm.analysis.conditions import is_probe_metric, metric_direction, seed_means
from mlmclm.grid.records import RunRecord, completed_runs

STEP_KEY = "probe_step"  # the curve of the steps at which a run was probed (mlmclm.probes.curves)


@dataclass(frozen=True)
class Overtaking:
    """The overtaking of one probe metric between two objectives under one attention mechanism."""

    metric: str
    attention: str
    first: str  # objective a
    second: str  # objective b
    n_first: int  # resampled units of objective a: runs, or seeds when folds_averaged
    n_second: int
    early_leader: str | None  # better at the first checkpoint (None: tied)
    late_leader: str | None  # better at the last checkpoint
    step: float | None  # t*, None when the late leader was already ahead at the start
    low: float | None  # bootstrap interval of t*; None with fewer than 2 runs per objective
    high: float | None
    level: float
    crossing_share: float | None  # share of bootstrap resamples with the same overtaking
    folds_averaged: bool = False  # cross-validation: each seed's folds averaged into one curve, seeds resampled


def _first_sign(difference: np.ndarray) -> float:
    """The sign of the first checkpoint where the objectives differ (ties at the start, e.g. both at chance,
    say nothing about who leads early); 0 when they never differ."""
    signs = np.sign(difference)
    nonzero = np.flatnonzero(signs)
    return float(signs[nonzero[0]]) if nonzero.size else 0.0


def crossing_step(steps: np.ndarray, difference: np.ndarray) -> float | None:
    """t* of the module docstring for a curve ``difference`` (early leader positive or negative), else None."""
    start, end = _first_sign(difference), np.sign(difference[-1])
    if start == 0 or end == 0 or start == end:
        return None
    behind = np.flatnonzero(np.sign(difference) != end)
    i = int(behind[-1])
    if difference[i] == 0:
        return float(steps[i])
    fraction = difference[i] / (difference[i] - difference[i + 1])
    return float(steps[i] + (steps[i + 1] - steps[i]) * fraction)


def overtaking_step(
    steps: Sequence[float],
    first: np.ndarray,
    second: np.ndarray,
    *,
    names: tuple[str, str] = ("mlm", "clm"),
    higher_is_better: bool = True,
    confidence_level: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator,
    metric: str = "",
    attention: str = "",
    folds_averaged: bool = False,
) -> Overtaking:
    """Overtaking step of ``second`` over ``first`` or vice versa; ``first``/``second`` are [runs, checkpoints].

    Parameters
    ----------
    steps : the checkpoints (optimizer steps), increasing, shared by every run.
    first, second : probe scores of each objective's runs at those checkpoints (under cross-validation its
        seeds, each averaged over its folds: the rows are the units the bootstrap resamples).
    higher_is_better : False for a score where lower is better.
    folds_averaged : recorded in the result: the rows are fold-averaged seeds.

    Returns
    -------
    Overtaking, with ``step`` None when the same objective leads at the first and the last checkpoint.
    """
    steps_array = np.asarray(steps, dtype=float)
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    sign = 1.0 if higher_is_better else -1.0
    difference = sign * (a.mean(axis=0) - b.mean(axis=0))
    leader = {1.0: names[0], -1.0: names[1], 0.0: None}
    early, late = leader[_first_sign(difference)], leader[float(np.sign(difference[-1]))]
    point = crossing_step(steps_array, difference)
    low = high = share = None
    if point is not None and len(a) >= 2 and len(b) >= 2:
        crossings = []
        for _ in range(n_resamples):
            resampled = sign * (
                a[rng.integers(0, len(a), len(a))].mean(axis=0) - b[rng.integers(0, len(b), len(b))].mean(axis=0)
            )
            same = _first_sign(resampled) == _first_sign(difference) and np.sign(resampled[-1]) == np.sign(
                difference[-1]
            )
            crossing = crossing_step(steps_array, resampled) if same else None
            if crossing is not None:
                crossings.append(crossing)
        share = len(crossings) / n_resamples
        if crossings:
            tail = (1 - confidence_level) / 2
            low, high = (float(q) for q in np.quantile(crossings, [tail, 1 - tail]))
    return Overtaking(
        metric, attention, names[0], names[1], len(a), len(b), early, late, point, low, high, confidence_level, share,
        folds_averaged,
    )


def probe_curves(
    runs: Sequence[RunRecord], objective: str, attention: str, metric: str, *, average_folds: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(steps, scores [runs, checkpoints], tokens [runs, checkpoints]) of one condition's completed runs on
    the checkpoints every one of them recorded; None when no run has a probe curve of ``metric``.
    ``average_folds`` (cross-validation): one row per seed, the mean of its folds (conditions.seed_means)."""
    members = [run for run in completed_runs(runs, objective, attention)
               if run.curves.get(STEP_KEY) and len(run.curves.get(metric) or []) == len(run.curves[STEP_KEY])]
    if not members:
        return None
    curves = [run.curves for run in members]
    shared = sorted(set.intersection(*(set(c[STEP_KEY]) for c in curves)))
    if not shared:
        return None
    scores, tokens = [], []
    for c in curves:
        index = [c[STEP_KEY].index(step) for step in shared]
        scores.append([c[metric][i] for i in index])
        tokens.append([(c.get("probe_tokens") or [np.nan] * len(c[STEP_KEY]))[i] for i in index])
    scores, tokens = np.asarray(scores, dtype=float), np.asarray(tokens, dtype=float)
    if average_folds:
        seeds = [run.seed for run in members]
        scores, tokens = seed_means(scores, seeds)[0], seed_means(tokens, seeds)[0]
    return np.asarray(shared, dtype=float), scores, tokens


def curve_metrics(runs: Sequence[RunRecord]) -> list[str]:
    """The mean-pooled probe metrics (``probe/<task>/accuracy`` and ``/f1``) that have probe curves."""
    names: dict[str, None] = {}
    for run in runs:
        curves = run.curves
        if not curves.get(STEP_KEY):
            continue
        for name in curves:
            if is_probe_metric(name) and name.rsplit("/", 1)[-1] in ("accuracy", "f1"):
                names.setdefault(name, None)
    return list(names)


def analyze_overtaking(
    runs: Sequence[RunRecord],
    attentions: Sequence[str],
    *,
    objectives: tuple[str, str] = ("mlm", "clm"),
    confidence_level: float,
    n_resamples: int,
    seed: int,
    average_folds: bool = False,
) -> tuple[Overtaking, ...]:
    """Every (probe metric with curves, attention mechanism) where both objectives have probe curves;
    ``average_folds`` under cross-validation (seeds, each averaged over its folds, are resampled)."""
    results = []
    for metric in curve_metrics(runs):
        for attention in attentions:
            first = probe_curves(runs, objectives[0], attention, metric, average_folds=average_folds)
            second = probe_curves(runs, objectives[1], attention, metric, average_folds=average_folds)
            if first is None or second is None:
                continue
            steps = sorted(set(first[0]) & set(second[0]))
            if len(steps) < 2:
                continue
            a = first[1][:, np.isin(first[0], steps)]
            b = second[1][:, np.isin(second[0], steps)]
            keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
            if keep.sum() < 2:
                continue
            rng = np.random.default_rng([seed, len(results)])
            results.append(
                overtaking_step(
                    np.asarray(steps)[keep], a[:, keep], b[:, keep], names=objectives,
                    higher_is_better=metric_direction(metric) != "lower", confidence_level=confidence_level,
                    n_resamples=n_resamples, rng=rng, metric=metric, attention=attention,
                    folds_averaged=average_folds,
                )
            )
    return tuple(results)
