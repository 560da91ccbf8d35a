"""The smallest p-value each family of comparisons can reach at its n, after the family's correction.

Exact permutation tests have a floor: with n independent pairs the sign-flip test's two-sided p is at least
2/2ⁿ (3 pairs: 0.25), and a two-sample permutation test's at least 2/C(n_a + n_b, n_a)
(:func:`~mlmclm.analysis.hypothesis_tests.min_achievable_pvalue`). The correction raises it further: Holm's smallest
adjusted p is m times the smallest raw p. Adjusted p-values of Holm, Bonferroni and Benjamini–Hochberg do not
decrease when a raw p grows, so adjusting the vector of per-comparison floors gives the smallest adjusted p the
family can produce at best. When that exceeds α, no comparison in the family can be significant whatever the
effect, and the report says so before any result (docs/statistics.md, "What the design can reach").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlmclm.analysis.hypothesis_tests import WILCOXON, min_achievable_pvalue, min_runs_for_significance
from mlmclm.analysis.multiple_comparisons import adjust_pvalues

MAX_RUNS_SEARCHED = 64


@dataclass(frozen=True)
class AttainablePValue:
    """One family's p-value floor: raw (best comparison) and after the family's correction, at the present n."""

    family: str
    tests: tuple[str, ...]
    n_comparisons: int  # comparisons with a p-value (the correction's m)
    n: int  # smallest sample behind the floor: pairs for paired tests, runs per condition otherwise
    min_attainable_p: float
    min_attainable_p_adjusted: float
    correction: str
    alpha: float
    can_reach_alpha: bool
    runs_needed: int | None  # smallest balanced n at which the adjusted floor is ≤ α; None when no floor applies


def _adjusted_floor(floors: Sequence[float], correction: str, alpha: float) -> float:
    adjusted = adjust_pvalues(list(floors), method=correction, alpha=alpha).p_adjusted
    return min(p for p in adjusted if p is not None)


def runs_needed(tests: Sequence[str], correction: str, alpha: float) -> int | None:
    """Smallest n (pairs, or runs per condition) at which a family of these tests can reach α after correction."""
    if all(min_runs_for_significance(test, alpha) is None for test in tests):
        return None  # t-tests: no floor
    for n in range(1, MAX_RUNS_SEARCHED + 1):
        if _adjusted_floor([min_achievable_pvalue(test, n, n) for test in tests], correction, alpha) <= alpha:
            return n
    return None


def family_floor(
    family: str, tests: Sequence[str], floors: Sequence[float], sizes: Sequence[int], *, correction: str, alpha: float
) -> AttainablePValue:
    """The floor of one family from its comparisons' tests, raw floors and sample sizes (all of equal length)."""
    adjusted = _adjusted_floor(floors, correction, alpha)
    return AttainablePValue(
        family=family,
        tests=tuple(dict.fromkeys(tests)),
        n_comparisons=len(floors),
        n=min(sizes),
        min_attainable_p=min(floors),
        min_attainable_p_adjusted=adjusted,
        correction=correction,
        alpha=alpha,
        can_reach_alpha=adjusted <= alpha,
        runs_needed=runs_needed(tests, correction, alpha),
    )


def comparison_floors(comparisons: Sequence, correction: str, alpha: float) -> list[AttainablePValue]:
    """One record per family of :class:`~mlmclm.analysis.compare.Comparison` records that have a p-value."""
    families: dict[str, list] = {}
    for comparison in comparisons:
        if comparison.test.p_value is not None and comparison.test.min_achievable_p is not None:
            families.setdefault(comparison.family.name, []).append(comparison)
    return [
        family_floor(
            family, [c.test.name for c in members], [c.test.min_achievable_p for c in members],
            [c.n_a if c.paired else min(c.n_a, c.n_b) for c in members], correction=correction, alpha=alpha,
        )
        for family, members in families.items()
    ]


def ranking_floors(rankings: Sequence, alpha: float) -> list[AttainablePValue]:
    """The Holm-corrected Wilcoxon post-hoc pairs of each mechanism ranking (ranking.py) as one family each."""
    found = []
    for ranking in rankings:
        tested = [pair for pair in ranking.posthoc if pair.p_value is not None]
        if tested:
            # Each pair's floor is that of its non-zero differences, which scipy's Wilcoxon keeps.
            sizes = [ranking.n_blocks if pair.n_nonzero is None else pair.n_nonzero for pair in tested]
            found.append(
                family_floor(
                    f"posthoc_within_{ranking.objective}/{ranking.metric}", [WILCOXON] * len(tested),
                    [min_achievable_pvalue(WILCOXON, n) for n in sizes], sizes, correction="holm", alpha=alpha,
                )
            )
    return found
