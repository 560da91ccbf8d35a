"""The record of one comparison of two conditions: design and means, then its test, effect sizes and power.

The parts are nested so that the report reads what it needs by name (the test's symbol, how its p-value was
obtained) instead of parsing the test's prose reason. :meth:`Comparison.to_json` writes the flat record of
``docs/statistical_analysis.schema.json`` (``comparisons`` items), key for key as before the split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mlmclm.analysis.families import Family
from mlmclm.analysis.hypothesis_tests import NormalityResult
from mlmclm.analysis.intervals import ConfidenceInterval
from mlmclm.analysis.power import NO_POWER
from mlmclm.analysis.resampled import NO_CV_CORRECTION

# Relative tolerance below which two means (or all runs' values) count as equal: float64 rounding of a mean of
# a few runs is ~1e-16 relative, float32-accumulated metrics ~1e-7 absolute; real differences between
# differently seeded models are orders of magnitude larger.
NOISE_RTOL = 1e-9


@dataclass(frozen=True)
class ComparisonTest:
    """The two-sided test of a − b = 0 and its decision after the family's correction."""

    name: str  # e.g. "sign-flip permutation" (hypothesis_tests.py); "none" when no test is defined
    symbol: str | None  # how the report names the statistic: "mean d", "Δ mean", "t"; None without a test
    p_value_method: str  # "exact permutation" | "Monte Carlo permutation" | "t distribution" | "none"
    reason: str  # why this test, in words, for the reader (never parsed)
    statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool  # p_adjusted ≤ alpha and the difference is more than rounding (docs/statistics.md)
    correction: str
    alpha: float
    normality: tuple[NormalityResult, ...]
    can_reach_significance: bool
    min_achievable_p: float | None
    min_runs_for_significance: int | None
    cv_correction: str = NO_CV_CORRECTION  # "nadeau_bengio" when the variance was inflated for CV overlap
    cv_test_train_ratio: float | None = None  # n_test/n_train behind that inflation, 1/(folds − 1)
    aso_min_epsilon: float | None = None  # statistics.test "aso": ε_min that a is almost stochastically better
    aso_min_epsilon_reverse: float | None = None  # ... that b is (both oriented by the metric's direction)


@dataclass(frozen=True)
class EffectSizes:
    """Standardized and rank effect sizes of a − b with their intervals."""

    cohens_d: float | None  # d_z when paired
    hedges_g: float | None
    effect_size_ci: ConfidenceInterval  # of δ, the population effect d and g estimate (noncentral t)
    rank_biserial: float | None
    rank_biserial_ci: ConfidenceInterval


@dataclass(frozen=True)
class PowerEstimate:
    """What this n can detect, and the n the observed effect would need, each with the power it rests on."""

    min_detectable_effect: float | None
    runs_needed: int | None
    # power.SIMULATED_SIGN_FLIP | SIMULATED_PERMUTATION (the test used, simulated) | CORRECTED_T_POWER (CV)
    # | T_TEST_POWER | NO_POWER
    min_detectable_effect_method: str = NO_POWER
    runs_needed_method: str = NO_POWER
    # The same at the family level α/m (m: the family's comparisons with a p-value; α without correction), the
    # level a comparison must reach once its family is corrected (docs/statistics.md, Power); None before then.
    family_alpha: float | None = None
    min_detectable_effect_family: float | None = None
    runs_needed_family: int | None = None
    min_detectable_effect_family_method: str = NO_POWER
    runs_needed_family_method: str = NO_POWER


@dataclass(frozen=True)
class Comparison:
    """One two-sided comparison of group a with group b on one metric (group a minus group b throughout)."""

    family: Family
    group_a: str
    group_b: str
    n_a: int
    n_b: int
    paired: bool
    direction: str | None
    mean_a: float | None
    mean_b: float | None
    mean_difference: float | None
    mean_difference_ci: ConfidenceInterval
    test: ComparisonTest
    effect: EffectSizes
    power: PowerEstimate
    better_group: str | None
    like_for_like: bool
    caveat: str | None

    @property
    def metric(self) -> str:
        return self.family.metric

    @property
    def noise_level(self) -> bool:
        """True when a − b is at the floating-point rounding level of the means: no difference at all."""
        a, b, difference = self.mean_a, self.mean_b, self.mean_difference
        if a is None or b is None or difference is None:
            return False
        return abs(difference) <= NOISE_RTOL * max(abs(a), abs(b), 1e-300)

    def to_json(self) -> dict[str, Any]:
        """The flat record of the analysis JSON (nested values are plain dicts; NaN is left to the writer)."""
        test, effect, power = self.test, self.effect, self.power
        return {
            "metric": self.metric, "family": self.family.name, "group_a": self.group_a, "group_b": self.group_b,
            "n_a": self.n_a, "n_b": self.n_b, "paired": self.paired, "direction": self.direction,
            "mean_a": self.mean_a, "mean_b": self.mean_b, "mean_difference": self.mean_difference,
            "mean_difference_ci": dataclasses.asdict(self.mean_difference_ci),
            "normality": [dataclasses.asdict(result) for result in test.normality],
            "test": test.name, "test_reason": test.reason, "statistic": test.statistic, "p_value": test.p_value,
            "p_adjusted": test.p_adjusted, "significant": test.significant, "correction": test.correction,
            "alpha": test.alpha, "cohens_d": effect.cohens_d, "hedges_g": effect.hedges_g,
            "effect_size_ci": dataclasses.asdict(effect.effect_size_ci), "rank_biserial": effect.rank_biserial,
            "rank_biserial_ci": dataclasses.asdict(effect.rank_biserial_ci),
            "min_detectable_effect": power.min_detectable_effect, "runs_needed": power.runs_needed,
            "min_detectable_effect_method": power.min_detectable_effect_method,
            "runs_needed_method": power.runs_needed_method, "family_alpha": power.family_alpha,
            "min_detectable_effect_family": power.min_detectable_effect_family,
            "runs_needed_family": power.runs_needed_family,
            "min_detectable_effect_family_method": power.min_detectable_effect_family_method,
            "runs_needed_family_method": power.runs_needed_family_method,
            "can_reach_significance": test.can_reach_significance, "min_achievable_p": test.min_achievable_p,
            "min_runs_for_significance": test.min_runs_for_significance, "better_group": self.better_group,
            "like_for_like": self.like_for_like, "caveat": self.caveat, "cv_correction": test.cv_correction,
            "cv_test_train_ratio": test.cv_test_train_ratio, "aso_min_epsilon": test.aso_min_epsilon,
            "aso_min_epsilon_reverse": test.aso_min_epsilon_reverse,
        }
