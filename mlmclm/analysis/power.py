"""Power analysis for t-tests with statsmodels: what effect the design could detect, and what it would take.

The effect size is Cohen's d for independent groups (``TTestIndPower``) and d_z for paired differences
(``TTestPower``), matching the effect sizes reported. For rank tests these are the t-test numbers; the
asymptotic relative efficiency of Wilcoxon/Mann–Whitney to the t-test is ≥ 0.864 (0.955 under normality),
so they are a close, slightly optimistic guide.
"""

from __future__ import annotations

import math
import warnings

from statsmodels.stats.power import TTestIndPower, TTestPower

_MIN_RUNS = 2  # a t-test needs at least two runs per group (or two pairs)


def _solver(paired: bool) -> TTestPower | TTestIndPower:
    return TTestPower() if paired else TTestIndPower()


def _size_kwargs(paired: bool, n: int) -> dict[str, float]:
    return {"nobs": n} if paired else {"nobs1": n, "ratio": 1.0}


def _two_sided_power(solver: TTestPower | TTestIndPower, effect: float, alpha: float, paired: bool, n: int) -> float:
    """statsmodels' two-sided power, guarded against its nan at large effects.

    scipy's noncentral t cdf returns nan far in the lower tail, i.e. for the probability of rejecting in the
    wrong direction when the noncentrality is large; that probability is negligible there, so the one-sided
    power at α/2 (the same critical value) is then the two-sided power.
    """
    kwargs = _size_kwargs(paired, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(solver.power(effect_size=effect, alpha=alpha, **kwargs))
        if math.isnan(value):
            value = float(solver.power(effect_size=effect, alpha=alpha / 2, alternative="larger", **kwargs))
    return value


def minimum_detectable_effect(n_a: int, n_b: int, *, paired: bool, alpha: float, power: float) -> float | None:
    """Smallest |d| (|d_z| when paired) detected with probability ``power`` at two-sided level ``alpha``."""
    if min(n_a, n_b) < _MIN_RUNS:
        return None
    kwargs = {"nobs": n_a} if paired else {"nobs1": n_a, "ratio": n_b / n_a}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            effect = _solver(paired).solve_power(effect_size=None, alpha=alpha, power=power, **kwargs)
        except (ValueError, RuntimeError):
            return None
    effect = float(effect)
    return effect if math.isfinite(effect) else None


def runs_needed(
    effect_size: float | None, *, paired: bool, alpha: float, power: float, max_runs: int = 100_000
) -> int | None:
    """Smallest runs per condition (pairs when paired) that detect ``effect_size`` with probability ``power``.

    Power rises with n, so an integer doubling-then-bisection search on statsmodels' ``power`` finds it
    exactly, where ``solve_power``'s continuous root finder fails for very large or very small effects.
    ``None`` when the effect is zero/undefined or needs more than ``max_runs``.
    """
    if effect_size is None or not math.isfinite(effect_size) or effect_size == 0:
        return None
    effect = abs(effect_size)
    solver = _solver(paired)

    def powered(n: int) -> bool:
        return _two_sided_power(solver, effect, alpha, paired, n) >= power

    low, high = _MIN_RUNS, _MIN_RUNS
    while not powered(high):
        if high >= max_runs:
            return None
        low, high = high + 1, min(2 * high, max_runs)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if powered(middle) else (middle + 1, high)
    return high
