"""Power: minimum detectable effects and sample sizes against statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import TTestIndPower, TTestPower

from mlmclm.analysis.power import minimum_detectable_effect, runs_needed


def test_minimum_detectable_effect_matches_statsmodels():
    paired = minimum_detectable_effect(10, 10, paired=True, alpha=0.05, power=0.8)
    assert paired == pytest.approx(TTestPower().solve_power(nobs=10, alpha=0.05, power=0.8))
    independent = minimum_detectable_effect(10, 10, paired=False, alpha=0.05, power=0.8)
    assert independent == pytest.approx(TTestIndPower().solve_power(nobs1=10, ratio=1, alpha=0.05, power=0.8))
    assert independent > paired  # the same n detects less without pairing


def test_minimum_detectable_effect_needs_two_runs():
    assert minimum_detectable_effect(1, 5, paired=False, alpha=0.05, power=0.8) is None


@pytest.mark.parametrize("paired,effect", [(True, 0.5), (False, 0.5), (False, 1.2), (True, 3.0)])
def test_runs_needed_is_the_smallest_n_with_enough_power(paired, effect):
    n = runs_needed(effect, paired=paired, alpha=0.05, power=0.8)
    solver = TTestPower() if paired else TTestIndPower()

    def power(k):
        return solver.power(effect, k, 0.05) if paired else solver.power(effect, k, 0.05, ratio=1)

    assert power(n) >= 0.8
    assert n == 2 or power(n - 1) < 0.8


def test_runs_needed_for_textbook_effect():
    # Cohen (1988) table 2.4.1: d = 0.5, two-sided alpha 0.05, power 0.8 needs 64 per group.
    assert runs_needed(0.5, paired=False, alpha=0.05, power=0.8) == 64


def test_runs_needed_handles_huge_and_zero_effects():
    assert runs_needed(40.0, paired=False, alpha=0.05, power=0.8) == 2
    assert runs_needed(0.0, paired=True, alpha=0.05, power=0.8) is None
    assert runs_needed(None, paired=False, alpha=0.05, power=0.8) is None


@pytest.mark.parametrize("paired", [True, False])
def test_runs_needed_never_grows_with_the_effect(paired):
    # statsmodels' two-sided power is nan for large effects (scipy's noncentral t lower tail); a search that
    # reads nan as "not enough power" asked for 7 pairs where 3 have power 0.89 (g = 3.83).
    effects = np.linspace(0.3, 12.0, 60)
    needed = [runs_needed(effect, paired=paired, alpha=0.05, power=0.8) for effect in effects]
    assert all(later <= earlier for earlier, later in zip(needed, needed[1:], strict=False))
    assert runs_needed(3.83, paired=True, alpha=0.05, power=0.8) == 3
