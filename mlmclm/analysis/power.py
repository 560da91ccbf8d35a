"""Power of the comparison's test: what effect the design could detect, and what it would take.

The effect size is Cohen's d for independent groups and d_z for paired differences, matching the effect sizes
reported. Without cross-validation the comparisons are decided by exact permutation tests (the sign-flip test of
paired differences, the two-sample permutation test otherwise; :mod:`mlmclm.analysis.hypothesis_tests`), whose
p-value has a floor; near it their power is well below the t-test's (6 pairs at d_z = 1.435: 0.64, not 0.81).
Where the rearrangements are few enough to enumerate, power is therefore that of the permutation test itself,
simulated under a normal shift; beyond, it is the t-test's (statsmodels ``TTestPower`` / ``TTestIndPower``),
which there is within Monte Carlo error of the permutation test's. Cross-validation grids are decided by the
corrected resampled t-test, so their power is that test's (:func:`corrected_t_power`), whose variance floor
more seeds cannot remove (docs/statistics.md, Power).
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings

import numpy as np
from statsmodels.stats.power import TTestIndPower, TTestPower, ttest_power

_MIN_RUNS = 2  # a t-test needs at least two runs per group (or two pairs)
DRAWS = 4000  # normal samples per design: Monte Carlo SE of a power near 0.8 is √(0.16/4000) ≈ 0.006
SEED = 20_261_201  # fixed, so the same design always gets the same draws (and the same numbers)
# 13 pairs, or e.g. 7 vs 7 runs (3,432): the sizes whose test the default 10,000 resamples make exact. Beyond,
# the permutation test's simulated power at the t-test's MDE is 0.79-0.81 (14, 15 pairs; 8 vs 8): t figures.
MAX_REARRANGEMENTS = 2**13
# How a power figure was obtained (PowerEstimate's *_method fields).
SIMULATED_SIGN_FLIP = f"simulated sign-flip permutation test ({DRAWS} normal draws)"
SIMULATED_PERMUTATION = f"simulated two-sample permutation test ({DRAWS} normal draws)"
T_TEST_POWER = "t-test (statsmodels)"
CORRECTED_T_POWER = "corrected resampled t-test (Nadeau & Bengio 2003; statsmodels ttest_power)"
NO_POWER = "none"


def _solver(paired: bool) -> TTestPower | TTestIndPower:
    return TTestPower() if paired else TTestIndPower()


def _size_kwargs(paired: bool, n_a: int, n_b: int) -> dict[str, float]:
    return {"nobs": n_a} if paired else {"nobs1": n_a, "ratio": n_b / n_a}


def _t_power(effect: float, n_a: int, n_b: int, *, paired: bool, alpha: float) -> float:
    """statsmodels' two-sided power, guarded against its nan at large effects.

    scipy's noncentral t cdf returns nan far in the lower tail, i.e. for the probability of rejecting in the
    wrong direction when the noncentrality is large; that probability is negligible there, so the one-sided
    power at α/2 (the same critical value) is then the two-sided power.
    """
    solver, kwargs = _solver(paired), _size_kwargs(paired, n_a, n_b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(solver.power(effect_size=effect, alpha=alpha, **kwargs))
        if math.isnan(value):
            value = float(solver.power(effect_size=effect, alpha=alpha / 2, alternative="larger", **kwargs))
    return value


def _t_minimum_detectable_effect(n_a: int, n_b: int, *, paired: bool, alpha: float, power: float) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            effect = _solver(paired).solve_power(
                effect_size=None, alpha=alpha, power=power, **_size_kwargs(paired, n_a, n_b)
            )
        except (ValueError, RuntimeError):
            return None
    effect = float(effect)
    return effect if math.isfinite(effect) else None


def rearrangements(n_a: int, n_b: int, *, paired: bool) -> int:
    """How many sign patterns (2ⁿ pairs) or splits (C(n_a + n_b, n_a)) the permutation test enumerates."""
    return 2**n_a if paired else math.comb(n_a + n_b, n_a)


def is_simulated(n_a: int, n_b: int, *, paired: bool, permutation: bool = True) -> bool:
    """Whether power at this design is the permutation test's, simulated (else the t-test's)."""
    return permutation and min(n_a, n_b) >= _MIN_RUNS and rearrangements(n_a, n_b, paired=paired) <= MAX_REARRANGEMENTS


def power_method(
    n_a: int, n_b: int, *, paired: bool, permutation: bool = True, cv_ratio: float | None = None
) -> str:
    """Which power the figures for this design come from, in the words the analysis JSON records."""
    if cv_ratio is not None:
        return CORRECTED_T_POWER
    if not is_simulated(n_a, n_b, paired=paired, permutation=permutation):
        return T_TEST_POWER
    return SIMULATED_SIGN_FLIP if paired else SIMULATED_PERMUTATION


def _extreme_count(count: int, alpha: float) -> int:
    """Most rearrangements as extreme as the observed one (itself included) with p = 2·c/count ≤ α.

    The p-value is computed as scipy's exact ``permutation_test`` computes it, (c / count) · 2; 0 when even the
    observed rearrangement alone, the p-value floor, exceeds α.
    """
    extreme = math.floor(alpha * count / 2) + 1
    while extreme > 0 and (extreme / count) * 2 > alpha:
        extreme -= 1
    return extreme


def _contrasts(n_a: int, n_b: int, *, paired: bool) -> np.ndarray:
    """Rows: each rearrangement's statistic minus the observed one, as coefficients on the values (identity left out).

    Paired (statistic mean d): flipping the pairs in F changes it by −(2/n)·Σ_F d. Unpaired (mean(a) − mean(b)):
    a split into a', b' has coefficients 1/n_a on a' and −1/n_b on b'; the first split is the observed one.
    """
    if paired:
        flipped = (np.arange(1, 2**n_a)[:, None] >> np.arange(n_a)) & 1
        return -2.0 * flipped / n_a
    statistics = np.full((math.comb(n_a + n_b, n_a), n_a + n_b), -1.0 / n_b)
    for row, chosen in enumerate(itertools.combinations(range(n_a + n_b), n_a)):
        statistics[row, list(chosen)] = 1.0 / n_a
    return statistics[1:] - statistics[0]


def normal_draws(n_a: int, n_b: int, *, paired: bool) -> np.ndarray:
    """The design's fixed standard-normal draws, one row per simulated experiment (paired differences, or
    group a's runs then group b's)."""
    size = n_a if paired else n_a + n_b
    return np.random.default_rng([SEED, n_a, n_b, int(paired)]).standard_normal((DRAWS, size))


@functools.cache
def _rejection_bounds(n_a: int, n_b: int, paired: bool, alpha: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Per normal draw Z, the shifts δ of group a (a = δ + Z) at which the exact test rejects: δ < low or δ > high.

    Each rearrangement's statistic minus the observed is c·Z + δ·(c·e), affine in δ with slope c·e < 0 (e: 1 on
    group a), so it crosses zero at t = c·Z / −(c·e). The test counts the rearrangements at least as large as
    the observed one (itself included) and those at most as large; it rejects when either count is ≤ k, i.e.
    when δ exceeds the k-th largest crossing or is below the k-th smallest. One matrix product over all draws
    then gives power at every δ with the same draws (common random numbers): no jitter between δs to bisect.
    ``None`` when the test cannot reach α at this size (k = 0).
    """
    count = rearrangements(n_a, n_b, paired=paired)
    extreme = _extreme_count(count, alpha)
    if extreme == 0:
        return None
    contrasts = _contrasts(n_a, n_b, paired=paired)
    shift = np.ones(n_a) if paired else np.r_[np.ones(n_a), np.zeros(n_b)]
    slope = contrasts @ shift
    draws = normal_draws(n_a, n_b, paired=paired)
    low, high = [], []
    for chunk in np.array_split(draws, max(1, DRAWS * count // 2**22)):  # ≤ 32 MiB of crossings at a time
        crossings = np.partition(chunk @ contrasts.T / -slope, (extreme - 1, count - 1 - extreme), axis=1)
        low.append(crossings[:, extreme - 1])
        high.append(crossings[:, count - 1 - extreme])
    return np.concatenate(low), np.concatenate(high)


def simulated_power(effect: float, n_a: int, n_b: int, *, paired: bool, alpha: float) -> float:
    """Share of the normal draws shifted by |effect| (in SD units) whose exact two-sided permutation p is ≤ α.

    Parameters are those of :func:`minimum_detectable_effect`; ``n_b`` is ignored when paired. The draws are
    fixed (``SEED``, ``DRAWS``), so the same call gives the same number.

    Notes
    -----
    The p-value is scipy's (``permutation_test``, exact enumeration, two-sided p = 2·min(P(T ≤ t), P(T ≥ t))),
    the one :func:`mlmclm.analysis.hypothesis_tests.paired_test` and ``independent_test`` report; its relative
    tolerance for ties only matters on a set of draws of probability zero.
    """
    bounds = _rejection_bounds(n_a, n_b, paired, alpha)
    if bounds is None:
        return 0.0
    low, high = bounds
    shift = abs(effect)
    return float(np.mean((shift < low) | (shift > high)))


def power_at(
    effect: float, n_a: int, n_b: int, *, paired: bool, alpha: float, permutation: bool = True,
    cv_ratio: float | None = None,
) -> float:
    """Two-sided power at |effect| of the comparison's test: the corrected t-test's with ``cv_ratio`` (a CV
    grid's n_test/n_train, :func:`corrected_t_power`), the permutation test's where it is simulated
    (:func:`is_simulated`), else the t-test's (``permutation=False`` asks for the t-test's figure)."""
    if cv_ratio is not None:
        return corrected_t_power(effect, n_a, n_b, paired=paired, alpha=alpha, cv_ratio=cv_ratio)
    if is_simulated(n_a, n_b, paired=paired, permutation=permutation):
        return simulated_power(effect, n_a, n_b, paired=paired, alpha=alpha)
    return _t_power(abs(effect), n_a, n_b, paired=paired, alpha=alpha)


def corrected_t_power(effect: float, n_a: int, n_b: int, *, paired: bool, alpha: float, cv_ratio: float) -> float:
    """Two-sided power of the corrected resampled t-test of cross-validation grids (resampled.py).

    Its variance (1/n + ρ)·s², ρ = n_test/n_train, keeps the floor ρ·s² however many seeds are added, so at a
    shift δ (in SDs) the statistic is noncentral t with λ = δ/√(1/n + ρ) (paired) or δ/√(1/n_a + 1/n_b + 2ρ)
    (the corrected Welch test at equal spreads) on the test's own degrees of freedom: statsmodels'
    ``ttest_power`` with nobs = 1/(1/n + ρ) and that df. Plain t-test power would ignore the floor.
    """
    if paired:
        spread, df = 1 / n_a + cv_ratio, n_a - 1
    else:
        v_a, v_b = 1 / n_a + cv_ratio, 1 / n_b + cv_ratio
        spread, df = v_a + v_b, (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(ttest_power(abs(effect), nobs=1 / spread, alpha=alpha, df=df, alternative="two-sided"))
    return value if math.isfinite(value) else 1.0  # nan only far in the tail, where power is 1


def _smallest_powered_effect(powered) -> float | None:
    """Bisection for the smallest effect that is ``powered``, which holds from some effect on."""
    low, high = 0.0, 1.0
    while not powered(high):
        low, high = high, 2 * high
        if high > 1e6:
            return None
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if powered(middle) else (middle, high)
    return high


def minimum_detectable_effect(
    n_a: int, n_b: int, *, paired: bool, alpha: float, power: float, permutation: bool = True,
    cv_ratio: float | None = None,
) -> float | None:
    """Smallest |d| (|d_z| when paired) detected with probability ``power`` at two-sided level ``alpha``.

    The permutation test's power where it is simulated (:func:`is_simulated`), found by bisection on δ; the
    corrected t-test's with ``cv_ratio`` (n_test/n_train of a CV grid, :func:`corrected_t_power`); else the
    t-test's (statsmodels ``solve_power``). ``None`` below two runs per group, or when the test cannot reach α
    at this n at all (the p-value floor, e.g. 5 pairs: 2/2⁵ > 0.05).
    """
    if min(n_a, n_b) < _MIN_RUNS:
        return None
    if cv_ratio is not None:
        return _smallest_powered_effect(
            lambda effect: power_at(effect, n_a, n_b, paired=paired, alpha=alpha, cv_ratio=cv_ratio) >= power
        )
    if not is_simulated(n_a, n_b, paired=paired, permutation=permutation):
        return _t_minimum_detectable_effect(n_a, n_b, paired=paired, alpha=alpha, power=power)
    if _rejection_bounds(n_a, n_b, paired, alpha) is None:
        return None
    return _smallest_powered_effect(
        lambda effect: simulated_power(effect, n_a, n_b, paired=paired, alpha=alpha) >= power
    )


def _smallest_powered_n(powered, max_runs: int) -> int | None:
    """Integer doubling-then-bisection on a power function that rises with n, where ``solve_power``'s
    continuous root finder fails for very large or very small effects; None beyond ``max_runs``."""
    low, high = _MIN_RUNS, _MIN_RUNS
    while not powered(high):
        if high >= max_runs:
            return None
        low, high = high + 1, min(2 * high, max_runs)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if powered(middle) else (middle + 1, high)
    return high


def _normal_power_limit(effect: float, alpha: float, cv_ratio: float, paired: bool) -> float:
    """The corrected t-test's power as n → ∞: a z-test with noncentrality δ/√ρ (δ/√(2ρ) unpaired)."""
    spread = cv_ratio if paired else 2 * cv_ratio
    if spread <= 0:
        return 1.0
    return float(ttest_power(effect, nobs=1 / spread, alpha=alpha, df=np.inf, alternative="two-sided"))


def runs_needed(
    effect_size: float | None,
    *,
    paired: bool,
    alpha: float,
    power: float,
    permutation: bool = True,
    cv_ratio: float | None = None,
    max_runs: int = 100_000,
) -> int | None:
    """Smallest runs per condition (pairs when paired) that detect ``effect_size`` with probability ``power``.

    Under normality the t-test is uniformly most powerful unbiased (Lehmann & Romano 2005, ch. 5), so no n
    below the t-test's answer suffices for the permutation test either: the search starts there and steps up
    while the permutation test's power is simulated (:func:`power_at`). ``None`` when the effect is
    zero/undefined or needs more than ``max_runs``. With ``cv_ratio`` (a CV grid) it is the (fold, seed)
    pairs the corrected t-test needs, or None when even infinitely many cannot reach ``power``: its variance
    floor ρ·s² (:func:`corrected_t_power`) caps the power that more seeds can buy.
    """
    if effect_size is None or not math.isfinite(effect_size) or effect_size == 0:
        return None
    effect = abs(effect_size)
    if cv_ratio is not None:
        if _normal_power_limit(effect, alpha, cv_ratio, paired) < power:
            return None
        return _smallest_powered_n(
            lambda n: power_at(effect, n, n, paired=paired, alpha=alpha, cv_ratio=cv_ratio) >= power, max_runs
        )
    n = _smallest_powered_n(lambda n: _t_power(effect, n, n, paired=paired, alpha=alpha) >= power, max_runs)
    if n is None or not permutation:
        return n
    while is_simulated(n, n, paired=paired) and simulated_power(effect, n, n, paired=paired, alpha=alpha) < power:
        n += 1
    return n
