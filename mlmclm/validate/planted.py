"""Planted effect: one arm trained with a learning rate ``planted_lr_factor`` times the preset's (10x too low).

The handicapped arm shares the full arm's seeds, so the comparison is paired exactly as two mechanisms'
are. The verdict reads ``val_loss``, where a 10x too low rate must show (its direction is known: higher loss);
PASS when the difference is significant and in that direction at the preset's n. The primary endpoint's
comparison is reported beside it: whether the preset's probes can see the same handicap is a property of
the preset (docs/validation.md), not of the statistics. Tiny repetitions (the A/A experiments' first label vs
a handicapped twin) say how often the effect is detected, next to the power the report's MDE line implies.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest
from statsmodels.stats.power import TTestPower

from mlmclm.analysis.conditions import condition_label
from mlmclm.validate.arms import Arm, merge_arms
from mlmclm.validate.grids import AA, PLANTED, PLANTED_TINY, STANDARD, aa_seeds
from mlmclm.validate.reading import analyze_document, comparison_numbers, describe_comparison, find_comparison
from mlmclm.validate.records import Finding, ValidationPreset

NAME = "planted"
QUESTION = "Would the pipeline find a difference that is really there, in the right direction?"
GRIDS = (STANDARD, PLANTED, AA, PLANTED_TINY)
FULL, HANDICAPPED = "full", "handicapped"
VERDICT_METRIC = "val_loss"  # a 10x too low learning rate must raise it; probes of small models may not move


def evaluate(raws: dict, preset: ValidationPreset) -> list[Finding]:
    arms = [Arm(STANDARD, "mlm", "standard", FULL), Arm(PLANTED, "mlm", "standard", HANDICAPPED)]
    analysis = analyze_document(merge_arms(raws, arms))
    return [
        detection_finding(analysis, VERDICT_METRIC, preset),
        detection_finding(analysis, analysis.primary_metric, preset, informational=True),
        repetition_finding(raws, preset),
    ]


def detection_finding(analysis, metric: str, preset: ValidationPreset, informational: bool = False) -> Finding:
    comparison = find_comparison(analysis, metric, ("mlm", FULL), ("mlm", HANDICAPPED))
    right_way = comparison.better_group == condition_label("mlm", FULL)
    return Finding(
        question=f"{metric}: full vs learning rate x{preset.planted_lr_factor:g} (paired, n={comparison.n_a})",
        expected="significant after correction, the full arm better",
        concluded=describe_comparison(comparison) + f"; better: {comparison.better_group}",
        passed=comparison.test.significant and right_way,
        numbers=comparison_numbers(comparison),
        informational=informational,
    )


def repetition_finding(raws: dict, preset: ValidationPreset) -> Finding:
    """How often the tiny planted effect is detected, vs the power implied by the report's MDE at that n."""
    detected, effects, mde = 0, [], None
    for repetition in range(preset.planted_repetitions):
        seeds = aa_seeds(preset, repetition, 0)
        arms = [Arm(AA, "mlm", "standard", FULL, seeds), Arm(PLANTED_TINY, "mlm", "standard", HANDICAPPED, seeds)]
        analysis = analyze_document(merge_arms(raws, arms), [VERDICT_METRIC])
        comparison = find_comparison(analysis, VERDICT_METRIC, ("mlm", FULL), ("mlm", HANDICAPPED))
        detected += comparison.test.significant and comparison.better_group == condition_label("mlm", FULL)
        if comparison.effect.cohens_d is not None:
            effects.append(abs(comparison.effect.cohens_d))
        mde = comparison.power.min_detectable_effect
    reps = preset.planted_repetitions
    interval = binomtest(detected, reps).proportion_ci(0.95, method="exact")
    effect = float(np.mean(effects)) if effects else None
    power = None if effect is None else float(
        TTestPower().power(effect_size=effect, nobs=preset.aa_runs, alpha=preset.alpha)
    )
    power = power if power is not None and np.isfinite(power) else None  # statsmodels: nan for huge effects
    agrees = power is not None and interval.low <= power <= interval.high
    return Finding(
        question=f"tiny repetitions ({reps} x n={preset.aa_runs}, {VERDICT_METRIC}): detection rate vs power",
        expected="the detection rate's interval contains the power the mean observed |d_z| implies",
        concluded=(
            f"detected {detected}/{reps} [{interval.low:.2f}, {interval.high:.2f}]; mean |d_z| "
            f"{'n/a' if effect is None else f'{effect:.2f}'}, report MDE at n: "
            f"{'n/a' if mde is None else f'{mde:.2f}'}, implied power {'n/a' if power is None else f'{power:.2f}'}"
        ),
        passed=agrees,
        numbers={"detected": detected, "repetitions": reps, "detection_ci": [interval.low, interval.high],
                 "mean_abs_d": effect, "min_detectable_effect": mde, "implied_power": power},
        informational=True,
    )


