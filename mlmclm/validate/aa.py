"""A/A: the same condition under several labels, on disjoint seeds, compared as mechanisms are.

No difference exists, so every significant comparison is a false positive. Over R independent A/A experiments
the observed family-wise false-positive rate of the *whole pipeline* (training noise, test choice, Holm within
the primary family) is compared with alpha through its Clopper-Pearson interval
(``scipy.stats.binomtest(...).proportion_ci(method="exact")``). PASS when that interval's lower bound is not
above alpha, i.e. the data do not show a rate above alpha beyond sampling error.
"""

from __future__ import annotations

from scipy.stats import binomtest

from mlmclm.analysis.families import Family
from mlmclm.validate.arms import Arm, merge_arms
from mlmclm.validate.grids import AA, aa_seeds
from mlmclm.validate.reading import analyze_document, comparison_numbers, describe_comparison
from mlmclm.validate.records import Finding, ValidationPreset

NAME = "aa"
QUESTION = "Would the pipeline tell me there is a difference when there is none?"
GRIDS = (AA,)


def repetition_arms(preset: ValidationPreset, repetition: int, grid: str = AA) -> list[Arm]:
    return [
        Arm(grid, "mlm", "standard", f"aa{label}", aa_seeds(preset, repetition, label))
        for label in range(preset.aa_labels)
    ]


def evaluate(raws: dict, preset: ValidationPreset) -> list[Finding]:
    false_positives, min_adjusted, example = 0, [], None
    for repetition in range(preset.aa_repetitions):
        analysis = analyze_document(merge_arms(raws, repetition_arms(preset, repetition)))
        family = analysis.comparisons_in(Family(analysis.primary_metric, "mlm"))
        false_positives += any(comparison.test.significant for comparison in family)
        adjusted = [c.test.p_adjusted for c in family if c.test.p_adjusted is not None]
        min_adjusted.append(min(adjusted) if adjusted else None)
        example = example or (family[0] if family else None)
    return [fwer_finding(false_positives, preset.aa_repetitions, preset.alpha, min_adjusted, example)]


def fwer_finding(false_positives: int, repetitions: int, alpha: float, min_adjusted: list, example) -> Finding:
    """The verdict on R A/A experiments: the family-wise false-positive rate's exact binomial interval vs alpha."""
    interval = binomtest(false_positives, repetitions, alpha).proportion_ci(0.95, method="exact")
    rate = false_positives / repetitions
    passed = interval.low <= alpha
    numbers = {
        "repetitions": repetitions, "false_positives": false_positives, "rate": rate,
        "clopper_pearson_95": [interval.low, interval.high], "alpha": alpha,
        "min_adjusted_p_per_repetition": min_adjusted,
    }
    if example is not None:
        numbers["first_comparison"] = comparison_numbers(example)
    concluded = (
        f"{false_positives}/{repetitions} A/A experiments had a significant primary-family comparison: rate "
        f"{rate:.3f}, 95% Clopper-Pearson [{interval.low:.3f}, {interval.high:.3f}]"
        + (f"; e.g. {describe_comparison(example)}" if example is not None else "")
    )
    return Finding(
        question="family-wise false-positive rate of the primary family, labels of one condition",
        expected=f"not above alpha = {alpha} beyond sampling error (interval's lower bound <= alpha)",
        concluded=concluded, passed=passed, numbers=numbers,
    )
