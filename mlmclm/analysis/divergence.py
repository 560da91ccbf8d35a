"""Divergence as an outcome: the rate of diverged runs per condition and Fisher's exact test between conditions.

The metric analyses can only use runs that produced a value, so a diverged run drops out of them; on its own
that favours unstable conditions (their surviving runs are the lucky ones). Rather than inventing a metric
value for a diverged run, divergence is analysed as what it is, a binary outcome per run: each condition's
divergence rate k/n with an exact (Clopper–Pearson) interval, and for the same pairs of conditions as the
metric comparisons a two-sided Fisher's exact test on the 2×2 table (diverged, not diverged) × (a, b), with
the configured correction within each family. ``n`` counts the runs that finished (completed or diverged);
a failed run (a crash) says nothing about stability and is not counted. Fisher's test treats the runs as
independent; it does not use the (fold, seed) pairing, which makes it conservative for paired designs.

References: Fisher, R. A. (1935), The Design of Experiments, Section 2; Clopper, C. J. & Pearson, E. S.
(1934), Biometrika 26:404. Implementations: :func:`scipy.stats.fisher_exact`, :func:`scipy.stats.binomtest`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import stats

from mlmclm.analysis.conditions import condition_label
from mlmclm.analysis.intervals import ConfidenceInterval
from mlmclm.analysis.multiple_comparisons import adjust_pvalues
from mlmclm.grid.records import RunRecord

DIVERGENCE = "divergence"
FINISHED = ("completed", "diverged")


@dataclass(frozen=True)
class DivergenceRate:
    """How many of one condition's finished runs diverged, with an exact interval of the rate."""

    objective: str
    attention: str
    condition: str
    diverged: int
    finished: int
    rate: float | None
    ci: ConfidenceInterval
    diverged_runs: tuple[str, ...]


@dataclass(frozen=True)
class DivergenceComparison:
    """Fisher's exact test of the divergence rates of group a and group b (two-sided)."""

    family: str
    group_a: str
    group_b: str
    diverged_a: int
    finished_a: int
    diverged_b: int
    finished_b: int
    rate_a: float | None
    rate_b: float | None
    test: str
    odds_ratio: float | None
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    correction: str
    alpha: float

    @property
    def scope(self) -> str:
        """``mlm_vs_clm`` or ``attention_within_<objective>``: the family without this module's prefix."""
        return self.family.removeprefix(f"{DIVERGENCE}/")


def divergence_rate(
    objective: str, attention: str, runs: Iterable[RunRecord], confidence_level: float
) -> DivergenceRate:
    """k diverged of n finished runs of one condition; Clopper–Pearson interval of k/n (none when n = 0)."""
    finished = [run for run in runs if run.status in FINISHED]
    diverged = tuple(run.run_id for run in finished if run.status == "diverged")
    k, n = len(diverged), len(finished)
    if n == 0:
        ci = ConfidenceInterval(None, None, confidence_level, "none", "no finished runs")
        return DivergenceRate(objective, attention, condition_label(objective, attention), 0, 0, None, ci, ())
    interval = stats.binomtest(k, n).proportion_ci(confidence_level=confidence_level, method="exact")
    ci = ConfidenceInterval(float(interval.low), float(interval.high), confidence_level, "Clopper-Pearson")
    return DivergenceRate(objective, attention, condition_label(objective, attention), k, n, k / n, ci, diverged)


def compare_divergence(a: DivergenceRate, b: DivergenceRate, *, family: str, correction: str,
                       alpha: float) -> DivergenceComparison:
    """Two-sided Fisher's exact test on [[k_a, n_a − k_a], [k_b, n_b − k_b]] (before the family correction)."""
    odds_ratio: float | None = None
    p_value: float | None = None
    if a.finished and b.finished:
        table = [[a.diverged, a.finished - a.diverged], [b.diverged, b.finished - b.diverged]]
        result = stats.fisher_exact(table, alternative="two-sided")
        odds_ratio = float(result.statistic) if math.isfinite(result.statistic) else None
        p_value = float(result.pvalue)
    return DivergenceComparison(
        family=family,
        group_a=a.condition,
        group_b=b.condition,
        diverged_a=a.diverged,
        finished_a=a.finished,
        diverged_b=b.diverged,
        finished_b=b.finished,
        rate_a=a.rate,
        rate_b=b.rate,
        test="Fisher's exact",
        odds_ratio=odds_ratio,
        p_value=p_value,
        p_adjusted=None,
        significant=False,
        correction=correction,
        alpha=alpha,
    )


def analyze_divergence(
    runs: Sequence[RunRecord],
    objectives: Sequence[str],
    attentions: Sequence[str],
    *,
    confidence_level: float,
    correction: str,
    alpha: float,
) -> tuple[tuple[DivergenceRate, ...], tuple[DivergenceComparison, ...]]:
    """Rates for every condition with runs; every pair of objectives per mechanism and mechanism pairs within
    each objective (families ``divergence/mlm_vs_clm`` and ``divergence/attention_within_<objective>``),
    p-values adjusted within each family."""
    by_condition: dict[tuple[str, str], list[RunRecord]] = {}
    for run in runs:
        by_condition.setdefault((run.objective, run.attention), []).append(run)
    rates = {
        key: divergence_rate(key[0], key[1], by_condition[key], confidence_level)
        for key in itertools.product(objectives, attentions)
        if key in by_condition
    }
    settings = {"correction": correction, "alpha": alpha}
    comparisons = []
    for attention in attentions:
        present = [objective for objective in objectives if (objective, attention) in rates]
        for first, second in itertools.combinations(present, 2):
            comparisons.append(compare_divergence(
                rates[first, attention], rates[second, attention], family=f"{DIVERGENCE}/mlm_vs_clm", **settings
            ))
    for objective in objectives:
        present = [attention for attention in attentions if (objective, attention) in rates]
        for first, second in itertools.combinations(present, 2):
            comparisons.append(compare_divergence(
                rates[objective, first], rates[objective, second],
                family=f"{DIVERGENCE}/attention_within_{objective}", **settings,
            ))
    return tuple(rates.values()), tuple(_correct(comparisons, correction, alpha))


def _correct(comparisons: list[DivergenceComparison], correction: str, alpha: float) -> list[DivergenceComparison]:
    corrected = list(comparisons)
    for family in dict.fromkeys(comparison.family for comparison in comparisons):
        index = [i for i, comparison in enumerate(comparisons) if comparison.family == family]
        adjusted = adjust_pvalues([comparisons[i].p_value for i in index], method=correction, alpha=alpha)
        for position, i in enumerate(index):
            corrected[i] = dataclasses.replace(
                comparisons[i], p_adjusted=adjusted.p_adjusted[position], significant=adjusted.reject[position]
            )
    return corrected
