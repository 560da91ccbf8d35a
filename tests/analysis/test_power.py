"""Power: the permutation tests' simulated power near their p-value floor, statsmodels' t-test power beyond."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import TTestIndPower, TTestPower

from mlmclm.analysis import hypothesis_tests, power
from mlmclm.analysis.power import minimum_detectable_effect, power_at, runs_needed

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "statistical_analysis.schema.json"


def test_large_designs_keep_the_statsmodels_t_test_figures():
    paired = minimum_detectable_effect(20, 20, paired=True, alpha=0.05, power=0.8)
    assert paired == pytest.approx(TTestPower().solve_power(nobs=20, alpha=0.05, power=0.8))
    independent = minimum_detectable_effect(10, 10, paired=False, alpha=0.05, power=0.8)
    assert independent == pytest.approx(TTestIndPower().solve_power(nobs1=10, ratio=1, alpha=0.05, power=0.8))
    assert independent > paired  # the same n detects less without pairing
    assert power.power_method(20, 20, paired=True) == power.T_TEST_POWER


def test_the_corrected_t_tests_of_cross_validation_get_t_test_figures():
    mde = minimum_detectable_effect(6, 6, paired=True, alpha=0.05, power=0.8, permutation=False)
    assert mde == pytest.approx(TTestPower().solve_power(nobs=6, alpha=0.05, power=0.8))
    assert power.power_method(6, 6, paired=True, permutation=False) == power.T_TEST_POWER


def test_near_the_floor_the_permutation_tests_detect_less_than_the_t_test_says():
    # The reviewer's simulation: at the t-test's MDE (6 pairs: 1.435; 4 vs 4: 2.381) the sign-flip and
    # two-sample permutation tests have power 0.64 and 0.65, not 0.8.
    assert minimum_detectable_effect(6, 6, paired=True, alpha=0.05, power=0.8) > 1.435 + 0.2
    assert minimum_detectable_effect(4, 4, paired=False, alpha=0.05, power=0.8) > 2.381 + 0.2
    assert power.power_method(6, 6, paired=True) == power.SIMULATED_SIGN_FLIP
    assert power.power_method(4, 4, paired=False) == power.SIMULATED_PERMUTATION


@pytest.mark.parametrize("n_a,n_b,paired", [(5, 5, True), (3, 3, False), (1, 5, False)])
def test_no_effect_is_detectable_below_the_p_value_floor(n_a, n_b, paired):
    # 5 pairs: p ≥ 2/2⁵ = 0.0625; 3 vs 3: p ≥ 2/20 = 0.1; one run: no effect size at all
    assert minimum_detectable_effect(n_a, n_b, paired=paired, alpha=0.05, power=0.8) is None
    assert power_at(50.0, n_a, n_b, paired=paired, alpha=0.05) == 0.0 or min(n_a, n_b) < 2


@pytest.mark.parametrize("n_a,n_b,paired", [(6, 6, True), (8, 8, True), (4, 4, False), (4, 6, False)])
def test_simulated_rejections_are_the_project_tests_rejections(n_a, n_b, paired):
    # The same draws through hypothesis_tests.paired_test / independent_test (scipy's exact permutation_test)
    # reject exactly where the simulation says they do.
    effect = minimum_detectable_effect(n_a, n_b, paired=paired, alpha=0.05, power=0.8)
    draws = power.normal_draws(n_a, n_b, paired=paired)[:150]
    low, high = power._rejection_bounds(n_a, n_b, paired, 0.05)
    rng = np.random.default_rng(0)
    for shift in (effect, effect / 2):
        if paired:
            tests = [hypothesis_tests.paired_test(z + shift, np.zeros(n_a), alpha=0.05, n_resamples=10_000, rng=rng)
                     for z in draws]
        else:
            tests = [hypothesis_tests.independent_test(z[:n_a] + shift, z[n_a:], labels=("a", "b"), alpha=0.05,
                                                       n_resamples=10_000, rng=rng) for z in draws]
        rejected = [test.pvalue <= 0.05 for test in tests]
        assert rejected == list((shift < low[:150]) | (shift > high[:150]))


def test_power_figures_are_deterministic():
    first = minimum_detectable_effect(7, 7, paired=True, alpha=0.05, power=0.8)
    power._rejection_bounds.cache_clear()
    assert minimum_detectable_effect(7, 7, paired=True, alpha=0.05, power=0.8) == first
    assert power_at(first, 7, 7, paired=True, alpha=0.05) >= 0.8


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("effect", [0.9, 1.3, 1.8, 2.5, 4.0])
def test_runs_needed_is_consistent_with_the_minimum_detectable_effect(paired, effect):
    n = runs_needed(effect, paired=paired, alpha=0.05, power=0.8)
    assert minimum_detectable_effect(n, n, paired=paired, alpha=0.05, power=0.8) <= effect
    fewer = minimum_detectable_effect(n - 1, n - 1, paired=paired, alpha=0.05, power=0.8)
    assert fewer is None or fewer > effect


@pytest.mark.parametrize("paired,effect", [(True, 0.5), (False, 0.5), (False, 1.2), (True, 3.0)])
def test_t_test_runs_needed_is_the_smallest_n_with_enough_t_test_power(paired, effect):
    n = runs_needed(effect, paired=paired, alpha=0.05, power=0.8, permutation=False)
    solver = TTestPower() if paired else TTestIndPower()

    def t_power(k):
        return solver.power(effect, k, 0.05) if paired else solver.power(effect, k, 0.05, ratio=1)

    assert t_power(n) >= 0.8
    assert n == 2 or t_power(n - 1) < 0.8


def test_runs_needed_for_textbook_effect():
    # Cohen (1988) table 2.4.1: d = 0.5, two-sided alpha 0.05, power 0.8 needs 64 per group.
    assert runs_needed(0.5, paired=False, alpha=0.05, power=0.8) == 64


def test_runs_needed_handles_huge_and_zero_effects():
    assert runs_needed(40.0, paired=False, alpha=0.05, power=0.8, permutation=False) == 2
    assert runs_needed(40.0, paired=False, alpha=0.05, power=0.8) == 4  # 2/C(8, 4) = 0.029 is the first p ≤ 0.05
    assert runs_needed(40.0, paired=True, alpha=0.05, power=0.8) == 6  # 2/2⁶ = 0.031
    assert runs_needed(0.0, paired=True, alpha=0.05, power=0.8) is None
    assert runs_needed(None, paired=False, alpha=0.05, power=0.8) is None


@pytest.mark.parametrize("permutation", [True, False])
@pytest.mark.parametrize("paired", [True, False])
def test_runs_needed_never_grows_with_the_effect(paired, permutation):
    # statsmodels' two-sided power is nan for large effects (scipy's noncentral t lower tail); a search that
    # reads nan as "not enough power" asked for 7 pairs where 3 have t-test power 0.89 (g = 3.83).
    effects = np.linspace(0.3, 12.0, 60)
    needed = [runs_needed(e, paired=paired, alpha=0.05, power=0.8, permutation=permutation) for e in effects]
    assert all(later <= earlier for earlier, later in zip(needed, needed[1:], strict=False))
    assert runs_needed(3.83, paired=True, alpha=0.05, power=0.8, permutation=False) == 3


def test_the_schema_lists_every_power_method():
    properties = json.loads(SCHEMA.read_text())["properties"]["comparisons"]["items"]["properties"]
    methods = {power.SIMULATED_SIGN_FLIP, power.SIMULATED_PERMUTATION, power.T_TEST_POWER, power.CORRECTED_T_POWER,
               power.NO_POWER}
    for field in ("min_detectable_effect_method", "runs_needed_method", "min_detectable_effect_family_method",
                  "runs_needed_family_method"):
        assert set(properties[field]["enum"]) == methods


@pytest.mark.parametrize(("n_a", "n_b", "paired"), [(9, 9, True), (6, 6, False), (6, 9, False)])
def test_corrected_t_power_is_the_noncentral_t_of_the_corrected_statistic(n_a, n_b, paired):
    """3-fold CV (ρ = 0.5): λ = δ/√(1/n + ρ) paired, δ/√(1/n_a + 1/n_b + 2ρ) with Welch's df unpaired (scipy)."""
    rho, alpha, delta = 0.5, 0.05, 1.7
    if paired:
        spread, df = 1 / n_a + rho, n_a - 1
    else:
        v_a, v_b = 1 / n_a + rho, 1 / n_b + rho
        spread, df = v_a + v_b, (v_a + v_b) ** 2 / (v_a**2 / (n_a - 1) + v_b**2 / (n_b - 1))
    critical, noncentrality = stats.t.ppf(1 - alpha / 2, df), delta / np.sqrt(spread)
    expected = stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    got = power.corrected_t_power(delta, n_a, n_b, paired=paired, alpha=alpha, cv_ratio=rho)
    assert got == pytest.approx(expected, rel=1e-9)


def test_under_cross_validation_the_mde_is_larger_and_seeds_cannot_buy_every_effect():
    """The corrected test's variance floor ρ·s²: 9 (fold, seed) pairs of 3-fold CV detect 2.50, not the plain
    t-test's 1.07, and δ = 1 stays below 80% power however many seeds are added (limit 0.29)."""
    options = {"paired": True, "alpha": 0.05, "power": 0.8}
    corrected = power.minimum_detectable_effect(9, 9, cv_ratio=0.5, **options)
    plain = power.minimum_detectable_effect(9, 9, permutation=False, **options)
    assert corrected == pytest.approx(2.502, abs=0.005) and plain == pytest.approx(1.067, abs=0.005)
    assert power.corrected_t_power(corrected, 9, 9, paired=True, alpha=0.05, cv_ratio=0.5) == pytest.approx(0.8)
    assert power.runs_needed(1.0, cv_ratio=0.5, **options) is None
    needed = power.runs_needed(2.5, cv_ratio=0.5, **options)
    assert power.minimum_detectable_effect(needed, needed, cv_ratio=0.5, **options) <= 2.5
    assert power.minimum_detectable_effect(needed - 1, needed - 1, cv_ratio=0.5, **options) > 2.5
    assert power.power_method(9, 9, paired=True, cv_ratio=0.5) == power.CORRECTED_T_POWER
