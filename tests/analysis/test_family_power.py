"""Power at the family level α/m: what a comparison can detect once its family is corrected (docs/statistics.md,
Power), the same power machinery as the per-comparison figures, at the level the correction asks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mlmclm.analysis import power
from mlmclm.analysis.compare import compare_samples, correct_families
from mlmclm.analysis.comparison import Comparison
from mlmclm.analysis.conditions import ConditionSample, Observation
from mlmclm.analysis.families import Family
from mlmclm.analysis.hypothesis_tests import SIGN_FLIP, min_runs_for_significance, paired_test
from mlmclm.analysis.multiple_comparisons import adjust_pvalues
from mlmclm.analysis.resampled import CrossValidationDesign
from mlmclm.config import StatisticsConfig

FAST = StatisticsConfig(bootstrap_resamples=1024)  # ≥ 2⁸ and C(12, 6): the tests below are exact
ALPHA, POWER = FAST.significance_level, FAST.power
FAMILY = Family("val_loss", "mlm")
THREE_FOLDS = CrossValidationDesign(3)


def _keys(n: int, first_seed: int, design: CrossValidationDesign | None) -> list[tuple[int | None, int]]:
    """(fold, seed) of n runs: n seeds from ``first_seed``, or every fold × n/k seeds under cross-validation."""
    if design is None:
        return [(None, seed) for seed in range(first_seed, first_seed + n)]
    return [(fold, seed) for fold in range(design.folds) for seed in range(first_seed, first_seed + n // design.folds)]


def _sample(attention: str, values: np.ndarray, keys: list[tuple[int | None, int]]) -> ConditionSample:
    observations = tuple(
        Observation(f"{attention}{i}", fold, seed, float(value)) for i, (value, (fold, seed)) in enumerate(
            zip(values, keys, strict=True))
    )
    return ConditionSample("mlm", attention, "val_loss", observations, ())


def _family(
    n_a: int, n_b: int, *, paired: bool, m: int = 3, design: CrossValidationDesign | None = None,
    settings: StatisticsConfig = FAST, tied: int = 0, shift: float = 1.0,
) -> list[Comparison]:
    """m comparisons of one family (group a shifted by ``shift`` SDs), corrected together; the first ``tied``
    of them compare a group with itself, so they have no p-value and are not part of the correction's m."""
    rng = np.random.default_rng([7, n_a, n_b, m])
    keys_a, keys_b = _keys(n_a, 0, design), _keys(n_b, 0 if paired else n_a, design)
    comparisons = []
    for i in range(m):
        a = shift + rng.standard_normal(n_a)
        b = a if i < tied else rng.standard_normal(n_b)
        comparisons.append(compare_samples(_sample(f"a{i}", a, keys_a), _sample(f"b{i}", b, keys_b),
                                           family=FAMILY, settings=settings, design=design, family_size=m))
    return correct_families(comparisons, settings, design=design)


def _options(c: Comparison, level: float, design: CrossValidationDesign | None) -> dict:
    return {"paired": c.paired, "alpha": level, "power": POWER, "permutation": design is None,
            "cv_ratio": None if design is None else design.test_train_ratio}


@pytest.mark.parametrize(("n_a", "n_b", "paired", "design", "shift"), [
    (8, 8, True, None, 1.0),  # simulated sign-flip test; runs needed beyond it, from the t-test
    (6, 6, False, None, 2.0),  # simulated two-sample permutation test; runs needed near its floor
    (9, 9, True, THREE_FOLDS, 4.0),  # corrected resampled t-test, 3 folds x 3 seeds; large g, so runs needed exist
])
def test_family_figures_are_the_comparisons_power_at_alpha_over_m(n_a, n_b, paired, design, shift):
    for c in _family(n_a, n_b, paired=paired, design=design, shift=shift):
        level = ALPHA / 3
        options = _options(c, level, design)
        assert c.power.family_alpha == pytest.approx(level)
        assert c.power.min_detectable_effect_family == power.minimum_detectable_effect(n_a, n_b, **options)
        assert c.power.min_detectable_effect_family > c.power.min_detectable_effect  # stricter level
        needed = power.runs_needed(c.effect.hedges_g, **options)
        assert needed is not None and c.power.runs_needed_family >= c.power.runs_needed
        floor = min_runs_for_significance(c.test.name, level)
        assert c.power.runs_needed_family == (needed if floor is None else max(needed, floor))
        assert c.power.min_detectable_effect_family_method == c.power.min_detectable_effect_method
        runs = c.power.runs_needed_family
        assert c.power.runs_needed_family_method == (power.NO_POWER if runs is None else power.power_method(
            runs, runs, paired=paired, permutation=design is None, cv_ratio=options["cv_ratio"]))


@pytest.mark.parametrize(("m", "correction"), [(1, "holm"), (3, "none")])
def test_one_comparison_or_no_correction_keeps_the_per_comparison_figures(m, correction):
    settings = dataclasses.replace(FAST, correction=correction)
    for c in _family(8, 8, paired=True, m=m, settings=settings):
        assert c.power.family_alpha == ALPHA
        assert (c.power.min_detectable_effect_family, c.power.runs_needed_family) == (
            c.power.min_detectable_effect, c.power.runs_needed)
        assert c.power.min_detectable_effect_family_method == c.power.min_detectable_effect_method


@pytest.mark.parametrize("correction", ["holm", "bonferroni", "fdr_bh"])
def test_m_is_the_number_of_comparisons_with_a_p_value(correction):
    """The correction leaves out a comparison without a p-value (identical groups); so does the family level."""
    family = _family(8, 8, paired=True, m=3, settings=dataclasses.replace(FAST, correction=correction), tied=1)
    assert family[0].test.p_value is None and all(c.test.p_value is not None for c in family[1:])
    assert [c.power.family_alpha for c in family] == pytest.approx([ALPHA / 2] * 3)


def test_below_the_p_value_floor_at_alpha_over_m_no_effect_is_detectable():
    """6 pairs reach 2/2⁶ = 0.031 ≤ 0.05, but not 0.05/3: no MDE at the family level, and plan ≥ 7 pairs."""
    for c in _family(6, 6, paired=True):
        assert c.power.min_detectable_effect == pytest.approx(1.786, abs=0.005)
        assert c.power.min_detectable_effect_family is None
        assert c.power.min_detectable_effect_family_method == power.NO_POWER
        assert c.power.runs_needed_family >= min_runs_for_significance(SIGN_FLIP, ALPHA / 3) == 7
    assert power.minimum_detectable_effect(6, 6, paired=True, alpha=ALPHA / 3, power=POWER) is None


def _holm_detection_rate(effect: float, n: int, m: int, simulations: int, rng: np.random.Generator) -> float:
    """Share of families of m paired comparisons, only the first shifted by ``effect`` (d_z), in which Holm
    calls the first significant (the project's sign-flip test and correction)."""
    hits = 0
    for _ in range(simulations):
        pvalues = [paired_test(rng.standard_normal(n) + (effect if i == 0 else 0.0), np.zeros(n), alpha=ALPHA,
                               n_resamples=1024, rng=rng).pvalue for i in range(m)]
        hits += adjust_pvalues(pvalues, method="holm", alpha=ALPHA).reject[0]
    return hits / simulations


def test_holm_detects_one_true_effect_at_the_family_mde_with_the_planned_power():
    """8 pairs, m = 3: at the recorded family MDE (1.56) Holm finds the one real effect ≥ 80% of the time (up to
    Monte Carlo error); at the per-comparison MDE (1.21) it finds it only ~57% of the time."""
    record = _family(8, 8, paired=True)[0].power
    simulations = 400
    tolerance = 3 * math.sqrt(POWER * (1 - POWER) * (1 / simulations + 1 / power.DRAWS))  # ≈ 0.063
    rng = np.random.default_rng(20_261_207)
    assert _holm_detection_rate(record.min_detectable_effect_family, 8, 3, simulations, rng) >= POWER - tolerance
    assert _holm_detection_rate(record.min_detectable_effect, 8, 3, simulations, rng) < POWER - tolerance
