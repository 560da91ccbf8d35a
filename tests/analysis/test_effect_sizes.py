"""Effect sizes against hand-computed values and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from statsmodels.stats.meta_analysis import effectsize_smd

from mlmclm.analysis import effect_sizes as es


def test_cohens_d_hand_computed():
    # means 3 and 5, both SDs sqrt(2.5): d = -2 / sqrt(2.5) = -1.2649
    assert es.cohens_d(np.arange(1.0, 6.0), np.arange(3.0, 8.0)) == pytest.approx(-2 / np.sqrt(2.5))


def test_cohens_dz_hand_computed():
    differences = np.array([1.0, 2.0, 3.0])  # mean 2, SD 1
    assert es.cohens_dz(differences) == pytest.approx(2.0)


def test_hedges_correction_is_the_exact_gamma_ratio():
    # J(8) = Γ(4) / (√4 · Γ(3.5)) = 6 / (2 · 3.32335) = 0.90270
    assert es.hedges_correction(8) == pytest.approx(special.gamma(4) / (2 * special.gamma(3.5)))
    assert es.hedges_correction(8) == pytest.approx(0.90270, abs=1e-5)


def test_hedges_g_agrees_with_statsmodels_approximation():
    rng = np.random.default_rng(3)
    a, b = rng.normal(1, 1, 10), rng.normal(0, 1.5, 12)
    approx, _ = effectsize_smd(a.mean(), a.std(ddof=1), a.size, b.mean(), b.std(ddof=1), b.size)
    # statsmodels uses J ≈ 1 − 3/(4N − 9); the exact gamma form differs by < 0.1 % at this size.
    assert es.hedges_g(a, b) == pytest.approx(approx, rel=1e-3)


def test_rank_biserial_independent_matches_kerby_formula():
    # Conover's example: U = 17 of n_a · n_b = 20, so r = 2 · 17 / 20 − 1 = 0.7
    males, females = np.array([19, 22, 16, 29, 24.0]), np.array([20, 11, 17, 12.0])
    assert es.rank_biserial_independent(males, females) == pytest.approx(0.7)
    assert es.rank_biserial_independent(np.arange(3.0), np.arange(3.0) + 10) == pytest.approx(-1.0)


def test_rank_biserial_paired_hand_computed():
    # |d| ranks 1, 2, 3, 4 with signs -, +, +, +: (9 − 1) / 10 = 0.8
    assert es.rank_biserial_paired(np.array([-1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.8)
    assert es.rank_biserial_paired(np.array([1.0, 2.0, -3.0])) == pytest.approx(0.0)


def test_effect_sizes_vectorise_over_resamples():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(7, 6))
    batched = es.hedges_g(a, b, axis=-1)
    assert batched == pytest.approx([es.hedges_g(a[i], b[i]) for i in range(7)])
    diffs = rng.normal(size=(7, 5))
    assert es.rank_biserial_paired(diffs) == pytest.approx([es.rank_biserial_paired(d) for d in diffs])


def test_no_spread_gives_undefined_effect_not_a_huge_number():
    assert np.isnan(es.cohens_d(np.full(3, 3.1), np.full(3, 3.2)))
    assert np.isnan(es.cohens_dz(np.full(3, 0.1) * 3))
