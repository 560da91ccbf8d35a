"""Planted effect: one arm trained with a learning rate ``planted_lr_factor`` times the preset's (10x too low).

The handicapped arm shares the full arm's seeds, so the comparison is paired exactly as two mechanisms'
are. The verdict reads ``val_loss``, where a 10x too low rate must show (its direction is known: higher loss);
PASS when the difference is significant and in that direction at the preset's n. The primary endpoint's
comparison is reported beside it: whether the preset's probes can see the same handicap is a property of
the preset (docs/validation.md), not of the statistics. Tiny repetitions (the A/A experiments' first label vs
a handicapped twin) say how often the effect is detected, next to the power of the same test at the effect seen.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from mlmclm.analysis.comparison import Comparison
from mlmclm.analysis.conditions import condition_label
from mlmclm.analysis.power import power_at
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
    """How often the tiny planted effect is detected, vs the power of the test used at the observed effect.

    Detections are the comparison's own decisions (its family holds this one comparison, so no correction
    changes them); the power is that of the same test at the repetitions' n (:func:`mlmclm.analysis.power.
    power_at`: the sign-flip test's, simulated), at the mean |Hedges' g|, since |d_z| overstates δ at small n.
    """
    detected, effects, comparison = 0, [], None
    for repetition in range(preset.planted_repetitions):
        seeds = aa_seeds(preset, repetition, 0)
        arms = [Arm(AA, "mlm", "standard", FULL, seeds), Arm(PLANTED_TINY, "mlm", "standard", HANDICAPPED, seeds)]
        analysis = analyze_document(merge_arms(raws, arms), [VERDICT_METRIC])
        comparison = find_comparison(analysis, VERDICT_METRIC, ("mlm", FULL), ("mlm", HANDICAPPED))
        detected += comparison.test.significant and comparison.better_group == condition_label("mlm", FULL)
        if comparison.effect.hedges_g is not None:
            effects.append(abs(comparison.effect.hedges_g))
    reps = preset.planted_repetitions
    interval = binomtest(detected, reps).proportion_ci(0.95, method="exact")
    effect = float(np.mean(effects)) if effects else None
    power = None if effect is None or comparison is None else _power_of_test_used(comparison, effect, preset.alpha)
    mde = None if comparison is None else comparison.power.min_detectable_effect
    agrees = power is not None and interval.low <= power <= interval.high
    return Finding(
        question=f"tiny repetitions ({reps} x n={preset.aa_runs}, {VERDICT_METRIC}): detection rate vs power",
        expected="the detection rate's interval contains the power of the test used at the mean observed |g|",
        concluded=(
            f"detected {detected}/{reps} [{interval.low:.2f}, {interval.high:.2f}]; mean |g| "
            f"{'n/a' if effect is None else f'{effect:.2f}'}, report MDE at n: "
            f"{'n/a' if mde is None else f'{mde:.2f}'}, implied power {'n/a' if power is None else f'{power:.2f}'}"
        ),
        passed=agrees,
        numbers={"detected": detected, "repetitions": reps, "detection_ci": [interval.low, interval.high],
                 "mean_abs_g": effect, "min_detectable_effect": mde, "implied_power": power,
                 "power_method": None if comparison is None else comparison.power.min_detectable_effect_method},
        informational=True,
    )


def _power_of_test_used(comparison: Comparison, effect: float, alpha: float) -> float:
    return power_at(
        effect, comparison.n_a, comparison.n_b, paired=comparison.paired, alpha=alpha,
        cv_ratio=comparison.test.cv_test_train_ratio,
    )
