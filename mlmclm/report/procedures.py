"""Report lines that say which test and interval every comparison used, and what the design can detect.

Read from the records' fields (``test``, ``cv_correction``, ``cv_test_train_ratio``, ``min_achievable_p``), never
from prose, so the methods section cannot drift from what the analysis did (docs/statistics.md, "Choosing the test").
"""

from __future__ import annotations

import dataclasses

from mlmclm.analysis import Analysis
from mlmclm.analysis.aso import DEFAULT_THRESHOLD
from mlmclm.analysis.attainable import AttainablePValue
from mlmclm.analysis.hypothesis_tests import CORRECTED_T, CORRECTED_WELCH, PERMUTATION, SIGN_FLIP, WILCOXON
from mlmclm.analysis.resampled import NADEAU_BENGIO
from mlmclm.report.labels import CORRECTION_NAMES

_DESCRIPTIONS = {
    SIGN_FLIP: "sign-flip permutation test of the mean paired difference (exact under exchangeability of the "
    "two conditions within pairs, whatever the score distribution)",
    PERMUTATION: "two-sample permutation test of the difference of means (runs not completely paired)",
    CORRECTED_T: "corrected resampled t-test over folds × seeds (Nadeau & Bengio 2003; Bouckaert & Frank 2004)",
    CORRECTED_WELCH: "corrected Welch t-test (a CV grid whose runs do not pair completely)",
}


def _aso_lines(analysis: Analysis) -> list[str]:
    """One bullet naming the pairs with ε_min below Ulmer et al.'s threshold, when ASO was run."""
    scored = [c for c in analysis.comparisons if c.test.aso_min_epsilon is not None]
    if not scored:
        return []
    better = [
        f"`{winner}` over `{loser}` ({c.metric}, ε_min = {epsilon:.2f})"
        for c in scored
        for winner, loser, epsilon in (
            (c.group_a, c.group_b, c.test.aso_min_epsilon), (c.group_b, c.group_a, c.test.aso_min_epsilon_reverse)
        )
        if epsilon is not None and epsilon < DEFAULT_THRESHOLD
    ]
    found = "; ".join(better) if better else "none"
    return [
        f"- Almost Stochastic Order (Dror et al. 2019; τ = {DEFAULT_THRESHOLD}, Bonferroni within each family) over "
        f"{len(scored)} comparisons; almost stochastically better: {found}. ε_min is not a p-value and does not "
        "enter the correction."
    ]


def procedure_lines(analysis: Analysis) -> list[str]:
    """Methods bullets: the tests used (with counts), the intervals, and the CV correction when applied."""
    used: dict[str, int] = {}
    for comparison in analysis.comparisons:
        if comparison.test.p_value is not None:
            used[comparison.test.name] = used.get(comparison.test.name, 0) + 1
    tests = "; ".join(f"{_DESCRIPTIONS.get(test, test)}: {count}" for test, count in used.items()) or "none"
    lines = [
        f"- Tests (fixed by the design, not by a normality pre-test; comparisons per test): {tests}. "
        "Shapiro–Wilk p is shown as a description of the differences only.",
    ]
    design = analysis.cross_validation
    corrected = [c for c in analysis.comparisons if c.test.cv_correction == NADEAU_BENGIO]
    if design is not None and corrected:
        lines.append(
            f"- Cross-validation ({design.folds} folds): runs share training data, so every test and interval "
            "of a mean uses the Nadeau–Bengio corrected variance (1/n + n_test/n_train)·s² with "
            f"n_test/n_train = {design.test_train_ratio:.3g} ({len(corrected)} comparisons); no rank or "
            "permutation test is valid for correlated folds. Effect-size intervals and power are not corrected "
            "and overstate precision."
        )
    tests = [c.test for c in analysis.comparisons]
    floors = [test.min_achievable_p for test in tests if test.p_value is not None and test.min_achievable_p]
    if floors:
        lines.append(
            f"- Permutation p-values have a floor at small n (here {min(floors):.3g} at best; 3 pairs: 0.25): "
            "below 6 pairs or 4 runs per condition nothing can be significant at α = 0.05, whatever the effect."
        )
    lines += _aso_lines(analysis)
    lines.append(
        "- Means and differences have t-intervals (corrected under cross-validation); the rank-biserial r a "
        "bootstrap interval, descriptive at small n."
    )
    return lines


def _floor_sentence(floor: AttainablePValue, families: list[str]) -> str:
    """One group of families with the same floor: what n they have, the floor, and the --num-runs that lifts it."""
    unit = "paired runs" if SIGN_FLIP in floor.tests or WILCOXON in floor.tests else "runs per condition"
    shown = ", ".join(f"`{family}`" for family in families[:3])
    if len(families) > 3:
        shown += f" and {len(families) - 3} more"
    sentence = (
        f"with n = {floor.n} {unit} the smallest attainable p is {floor.min_attainable_p:.3g} "
        f"({', '.join(floor.tests)})"
    )
    if floor.min_attainable_p_adjusted > floor.min_attainable_p:
        sentence += (
            f", {min(floor.min_attainable_p_adjusted, 1.0):.3g} after {CORRECTION_NAMES[floor.correction]} "
            f"correction over {floor.n_comparisons} comparisons"
        )
    advice = f"use --num-runs >= {floor.runs_needed}" if floor.runs_needed else "more runs are needed"
    return (
        f"{sentence} > α = {floor.alpha:g}: no comparison can be significant; {advice} "
        f"({len(families)} famil{'y' if len(families) == 1 else 'ies'}: {shown})"
    )


def attainable_lines(analysis: Analysis) -> list[str]:
    """The opening warning when some families cannot reach α at this n, whatever the effect (attainable.py)."""
    blocked = [floor for floor in analysis.attainable_p if not floor.can_reach_alpha]
    if not blocked:
        return []
    groups: dict[tuple, list[str]] = {}
    first: dict[tuple, AttainablePValue] = {}
    for floor in blocked:
        key = (floor.n, floor.min_attainable_p, floor.min_attainable_p_adjusted, floor.n_comparisons, floor.runs_needed)
        groups.setdefault(key, []).append(floor.family)
        if key in first:  # same floor from other tests (e.g. sign-flip pairs and Wilcoxon post-hoc pairs)
            tests = tuple(dict.fromkeys(first[key].tests + floor.tests))
            first[key] = dataclasses.replace(first[key], tests=tests)
        first.setdefault(key, floor)
    scope = (
        "No comparison in this report can be significant"
        if len(blocked) == len(analysis.attainable_p)
        else f"{len(blocked)} of {len(analysis.attainable_p)} families of comparisons cannot be significant"
    )
    sentences = "; ".join(_floor_sentence(first[key], families) for key, families in groups.items())
    return [
        f"> ⚠ **{scope} at this number of runs, whatever the effect.** Exact permutation tests have a floor on "
        f"their p-value: {sentences}. Non-significant results here are not evidence of no difference.",
        "",
    ]
