"""Standardised effect sizes, vectorised over ``axis`` so they can be bootstrapped.

Sign convention everywhere: group a minus group b, so a positive effect means a has the larger values.
A spread below floating-point resolution of the data counts as no spread, so the standardised effect is
undefined (nan) rather than astronomically large when resampled values happen to coincide.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

_RESOLUTION = 1e-12  # relative to the data's magnitude


def hedges_correction(df: float) -> float:
    """Exact small-sample bias factor J(df) = Γ(df/2) / (√(df/2) Γ((df−1)/2)) (Hedges & Olkin 1985, ch. 5)."""
    if df <= 1:
        return float("nan")
    return float(np.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / np.sqrt(df / 2))


def _standardise(difference: np.ndarray, sd: np.ndarray, scale: np.ndarray) -> np.ndarray:
    no_spread = sd <= _RESOLUTION * np.maximum(scale, np.finfo(float).tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(no_spread, np.nan, difference / np.where(no_spread, 1.0, sd))


def cohens_d(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cohen's d for independent groups: (mean_a − mean_b) / pooled SD (Cohen 1988, ch. 2)."""
    n_a, n_b = np.shape(a)[axis], np.shape(b)[axis]
    pooled_var = ((n_a - 1) * np.var(a, axis=axis, ddof=1) + (n_b - 1) * np.var(b, axis=axis, ddof=1)) / (
        n_a + n_b - 2
    )
    scale = np.maximum(np.max(np.abs(a), axis=axis), np.max(np.abs(b), axis=axis))
    return _standardise(np.mean(a, axis=axis) - np.mean(b, axis=axis), np.sqrt(pooled_var), scale)


def cohens_dz(differences: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cohen's d_z for paired data: mean difference / SD of the differences (Cohen 1988, ch. 2)."""
    sd = np.std(differences, axis=axis, ddof=1)
    return _standardise(np.mean(differences, axis=axis), sd, np.max(np.abs(differences), axis=axis))


def hedges_g(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Hedges' g: Cohen's d times J(n_a + n_b − 2)."""
    df = np.shape(a)[axis] + np.shape(b)[axis] - 2
    return hedges_correction(df) * cohens_d(a, b, axis=axis)


def hedges_gz(differences: np.ndarray, axis: int = -1) -> np.ndarray:
    """Paired Hedges' g: d_z times J(n − 1)."""
    return hedges_correction(np.shape(differences)[axis] - 1) * cohens_dz(differences, axis=axis)


def rank_biserial_independent(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rank-biserial r = 2·U_a/(n_a·n_b) − 1 = P(a > b) − P(a < b) (Kerby 2014, simple difference formula).

    U_a is the Mann–Whitney U of sample a from :func:`scipy.stats.mannwhitneyu`; r lies in [−1, 1].
    """
    n_a, n_b = np.shape(a)[axis], np.shape(b)[axis]
    u_a = stats.mannwhitneyu(a, b, axis=axis, method="asymptotic").statistic
    return 2.0 * u_a / (n_a * n_b) - 1.0


def rank_biserial_paired(differences: np.ndarray, axis: int = -1) -> np.ndarray:
    """Matched-pairs rank-biserial r = (R₊ − R₋) / (R₊ + R₋) over the ranks of |d| (Kerby 2014).

    Zero differences take their ranks but count on neither side (Pratt's treatment), which keeps the
    statistic vectorisable; r is undefined (nan) when every difference is zero.
    """
    differences = np.moveaxis(np.asarray(differences, dtype=float), axis, -1)
    ranks = stats.rankdata(np.abs(differences), axis=-1)
    r_plus = np.sum(np.where(differences > 0, ranks, 0.0), axis=-1)
    r_minus = np.sum(np.where(differences < 0, ranks, 0.0), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (r_plus - r_minus) / (r_plus + r_minus)
