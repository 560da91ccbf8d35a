"""Sample efficiency: validation curves across seeds with per-point t-intervals, and where two arms separate.

At every recorded point (training tokens, or steps when tokens were not recorded) the runs of a condition
give n values; the band is the two-sided t-interval of their mean, mean ± t_{1−α/2, n−1} · s / √n (Student,
1908). Two arms *separate* from the first point after which their bands never overlap again, the "first
token count from which they no longer overlap"; a pointwise criterion, descriptive rather than a test with
family-wise error control over points (docs/statistics.md).

Under cross-validation the n values are seeds, each the mean of its folds' curves: folds share training data
and a seed's folds share the seed, so (fold, seed) runs are not independent and a band over them is too narrow
(coverage 0.64-0.75 for a nominal 0.95 at 3 seeds x 3 folds, benchmarks/simulations/curve_band_coverage.py).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mlmclm.analysis.conditions import seed_means
from mlmclm.grid.records import RunRecord, completed_runs


@dataclass(frozen=True)
class CurveBand:
    """Mean curve of one condition with its per-point t-interval (NaN where fewer than 2 runs have a value)."""

    objective: str
    attention: str
    axis: str  # "tokens" | "step"
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int
    units: int  # independent curves the band is over: runs, or seeds when folds_averaged
    folds_averaged: bool = False  # cross-validation: each seed's folds averaged into one curve first


@dataclass(frozen=True)
class BandSeparation:
    """Where the bands of two conditions of one objective stop overlapping (``None``: never)."""

    objective: str
    group_a: str
    group_b: str
    axis: str
    separated_from: float | None
    better_group: str | None  # the lower curve after separation (lower loss is better)
    units_a: int = 0  # independent curves behind each band: runs, or seeds when folds_averaged
    units_b: int = 0
    folds_averaged: bool = False  # cross-validation: each seed's folds averaged before the band


def curve_arrays(run: RunRecord, metric: str, axes: Sequence[str] = ("tokens", "step")):
    """(x, y, axis name) of a run's recorded curve, on the first axis in ``axes`` it has; None without one."""
    curves = run.curves
    values = curves.get(metric)
    for axis_name in axes:
        axis = curves.get(axis_name)
        if values and axis and len(axis) == len(values):
            x, y = np.asarray(axis, dtype=float), np.asarray(values, dtype=float)
            keep = np.isfinite(x) & np.isfinite(y)
            if keep.any():
                return x[keep], y[keep], axis_name
    return None


def t_band(stacked: np.ndarray, confidence_level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of a [runs, points] array (NaN = missing): mean and the two-sided t-interval of the mean."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        n = np.sum(np.isfinite(stacked), axis=0)
        mean = np.nanmean(stacked, axis=0)
        sem = np.nanstd(stacked, axis=0, ddof=1) / np.sqrt(n)
    half = np.where(n >= 2, stats.t.ppf(0.5 + confidence_level / 2, np.maximum(n - 1, 1)) * sem, np.nan)
    return mean, mean - half, mean + half


def condition_band(
    runs: Sequence[RunRecord], metric: str, confidence_level: float, objective: str, attention: str,
    *, average_folds: bool = False,
) -> CurveBand | None:
    """The band of one condition's completed runs, each interpolated onto the first run's grid in its range.

    ``average_folds`` (cross-validation): the band is over seeds, each seed's folds averaged per point first
    (where all of them have a value), since (fold, seed) runs are not independent replicates.
    """
    curves = [(run, arrays) for run in runs if (arrays := curve_arrays(run, metric)) is not None]
    if not curves:
        return None
    grid, _, axis = curves[0][1]
    curves = [(run, c) for run, c in curves if c[2] == axis]
    stacked = np.array([np.interp(grid, x, y, left=np.nan, right=np.nan) for _, (x, y, _) in curves])
    if average_folds:
        stacked, _ = seed_means(stacked, [run.seed for run, _ in curves])
    mean, low, high = t_band(stacked, confidence_level)
    return CurveBand(objective, attention, axis, grid, mean, low, high, len(curves), len(stacked), average_folds)


def separation_point(x: np.ndarray, a: CurveBand, b: CurveBand) -> tuple[float | None, str | None]:
    """First x from which the bands of ``a`` and ``b`` (on the same grid) never overlap again.

    Points where either band is undefined are skipped. Returns (x, the lower arm's attention) or (None, None).
    """
    defined = np.isfinite(a.low) & np.isfinite(b.low) & np.isfinite(a.high) & np.isfinite(b.high)
    apart = (a.high < b.low) | (b.high < a.low)
    index = np.flatnonzero(defined)
    if index.size == 0 or not apart[index[-1]]:
        return None, None
    overlapping = index[~apart[index]]
    first = index[index > overlapping[-1]][0] if overlapping.size else index[0]
    lower = a.attention if a.mean[index[-1]] < b.mean[index[-1]] else b.attention
    return float(x[first]), lower


def band_separations(
    runs: Sequence[RunRecord],
    objectives: Sequence[str],
    attentions: Sequence[str],
    confidence_level: float,
    metric: str = "val_loss",
    *,
    average_folds: bool = False,
) -> tuple[BandSeparation, ...]:
    """For every pair of mechanisms within an objective (losses of different objectives are not comparable);
    ``average_folds`` under cross-validation (bands over seeds, see :func:`condition_band`)."""
    found = []
    for objective in objectives:
        bands = {}
        for attention in attentions:
            members = completed_runs(runs, objective, attention)
            band = condition_band(
                members, metric, confidence_level, objective, attention, average_folds=average_folds
            )
            if band is not None:
                bands[attention] = band
        for first, second in itertools.combinations(bands, 2):
            a, b = bands[first], bands[second]
            if a.axis != b.axis:
                continue
            # compare on a's grid: b's band interpolated pointwise
            b_on_a = CurveBand(
                objective, second, a.axis, a.x,
                *(np.interp(a.x, b.x, values, left=np.nan, right=np.nan) for values in (b.mean, b.low, b.high)),
                b.runs, b.units, b.folds_averaged,
            )
            point, lower = separation_point(a.x, a, b_on_a)
            found.append(
                BandSeparation(objective, f"{first}_{objective}", f"{second}_{objective}", a.axis, point,
                               None if lower is None else f"{lower}_{objective}", a.units, b.units, average_folds)
            )
    return tuple(found)
