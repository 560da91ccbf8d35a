"""Structural position blindness (Haviv et al. 2022, "Transformer Language Models without Positional
Encodings Still Learn Positional Information").

A bidirectional encoder without position information is permutation-equivariant, so its mean-pooled features
are the same for a sentence and its bigram-swapped twin: MLM-``nope`` cannot tell them apart. The causal mask
leaks order, so CLM-``nope`` can; MLM-``standard`` has positions. Expected: MLM-``nope``'s interval contains
chance; CLM-``nope`` and MLM-``standard`` are above chance and significantly above MLM-``nope``.

The check reads the paired probe ``word_order`` (a sentence and its twin, features pooled(first) -
pooled(second)), not the single-sentence ``bigram_shift``: the difference cancels the sentence content both
share, which otherwise swamps the small order signal (at cpu scale ``bigram_shift`` was at chance for all
three arms), and for MLM-``nope`` it is zero, so chance there is structural.
"""

from __future__ import annotations

from mlmclm.analysis.conditions import condition_label
from mlmclm.validate.arms import Arm, merge_arms
from mlmclm.validate.grids import NOPE, STANDARD
from mlmclm.validate.reading import (
    analyze_document,
    chance_of,
    comparison_numbers,
    describe_comparison,
    describe_summary,
    find_comparison,
    find_summary,
    summary_numbers,
)
from mlmclm.validate.records import Finding, ValidationPreset

NAME = "nope_structure"
QUESTION = "Does the pipeline recover a published structural fact about position information?"
GRIDS = (NOPE, STANDARD)
ARMS = (
    Arm(NOPE, "mlm", "nope", "nope"), Arm(NOPE, "clm", "nope", "nope"), Arm(STANDARD, "mlm", "standard", "standard"),
)
TASK = "word_order"
METRIC = f"probe/{TASK}/accuracy"


def evaluate(raws: dict, preset: ValidationPreset) -> list[Finding]:
    raw = merge_arms(raws, ARMS)
    chance = chance_of(raw, TASK)
    analysis = analyze_document(raw, [METRIC])
    findings = [_interval_finding(analysis, "mlm", "nope", chance, expect_chance=True)]
    findings += [_interval_finding(analysis, o, a, chance, expect_chance=False) for o, a in (("clm", "nope"),
                                                                                         ("mlm", "standard"))]
    findings += [_above_finding(analysis, better) for better in (("clm", "nope"), ("mlm", "standard"))]
    return findings


def _interval_finding(analysis, objective: str, attention: str, chance: float, expect_chance: bool) -> Finding:
    summary = find_summary(analysis, METRIC, objective, attention)
    low, high = summary.ci.low, summary.ci.high
    if expect_chance:
        passed = low is not None and high is not None and low <= chance <= high
        expected = f"interval contains chance ({chance:.3f})"
    else:
        passed = low is not None and low > chance
        expected = f"interval above chance ({chance:.3f})"
    return Finding(
        question=f"{METRIC} of {summary.condition}", expected=expected, concluded=describe_summary(summary),
        passed=passed, numbers={**summary_numbers(summary), "chance": chance},
    )


def _above_finding(analysis, better: tuple[str, str]) -> Finding:
    comparison = find_comparison(analysis, METRIC, better, ("mlm", "nope"))
    label = condition_label(*better)
    return Finding(
        question=f"{METRIC}: {label} vs nope_mlm ({comparison.family})",
        expected=f"significant after correction, {label} higher",
        concluded=describe_comparison(comparison) + f"; better: {comparison.better_group}",
        passed=comparison.test.significant and comparison.better_group == label,
        numbers=comparison_numbers(comparison),
    )
