"""Fold-to-fold and seed-to-seed variability of one condition under cross-validation.

Two summaries: the sample variance of the fold means (averaged over seeds) and of the seed means (averaged
over folds), available with ≥ 2 folds or seeds; and, for a complete fold × seed grid, the variance components
of the additive random-effects model y = μ + F_fold + S_seed + ε, estimated from the two-way ANOVA mean
squares (one run per cell, so no interaction term): σ²_fold = (MS_fold − MS_res)/n_seeds,
σ²_seed = (MS_seed − MS_res)/n_folds, σ²_res = MS_res, negative estimates truncated at 0
(Searle, Casella & McCulloch 1992, *Variance Components*, ch. 4).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm

from mlmclm.analysis.conditions import Observation


@dataclass(frozen=True)
class VarianceComponents:
    """Variability across folds and seeds; fields are ``None`` where the layout does not identify them."""

    n_folds: int
    n_seeds: int
    fold_mean_variance: float | None
    seed_mean_variance: float | None
    fold_component: float | None
    seed_component: float | None
    residual_component: float | None
    note: str | None = None


def _variance_of_means(frame: pd.DataFrame, by: str) -> float | None:
    means = frame.groupby(by)["value"].mean()
    return float(np.var(means.to_numpy(), ddof=1)) if len(means) >= 2 else None


def fold_seed_variance(observations: Sequence[Observation]) -> VarianceComponents | None:
    """Variance decomposition for runs with fold labels; ``None`` when the runs carry no folds."""
    rows = [(obs.fold, obs.seed, obs.value) for obs in observations if obs.fold is not None]
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["fold", "seed", "value"])
    n_folds, n_seeds = frame["fold"].nunique(), frame["seed"].nunique()
    fold_var, seed_var = _variance_of_means(frame, "fold"), _variance_of_means(frame, "seed")
    complete = len(frame) == n_folds * n_seeds and not frame.duplicated(["fold", "seed"]).any()
    if not complete or n_folds < 2 or n_seeds < 2:
        note = "ANOVA components need a complete fold x seed grid with >= 2 of each"
        return VarianceComponents(n_folds, n_seeds, fold_var, seed_var, None, None, None, note)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = anova_lm(ols("value ~ C(fold) + C(seed)", data=frame).fit())
    mean_square = table["sum_sq"] / table["df"]
    residual = float(mean_square["Residual"])
    fold_component = max(0.0, (float(mean_square["C(fold)"]) - residual) / n_seeds)
    seed_component = max(0.0, (float(mean_square["C(seed)"]) - residual) / n_folds)
    return VarianceComponents(n_folds, n_seeds, fold_var, seed_var, fold_component, seed_component, residual)
