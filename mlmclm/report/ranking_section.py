"""The report's "Ranking the mechanisms" section: Friedman omnibus, average ranks, post-hoc pairs, CD diagram.

Reads :class:`~mlmclm.analysis.ranking.MechanismRanking` fields only (docs/statistics.md, "Ranking mechanisms").
"""

from __future__ import annotations

from collections.abc import Mapping

from mlmclm.analysis import Analysis
from mlmclm.analysis.ranking import MechanismRanking
from mlmclm.report.labels import fmt, fmt_p


def _ranking_lines(ranking: MechanismRanking) -> list[str]:
    if not ranking.average_ranks or ranking.p_value is None:
        return [f"- {ranking.objective.upper()}, `{ranking.metric}`: {ranking.note}", ""]
    order = sorted(zip(ranking.average_ranks, ranking.mechanisms, strict=True))
    ranks = ", ".join(f"`{mechanism}` {rank:.2f}" for rank, mechanism in order)
    verdict = "the mechanisms differ" if ranking.omnibus_significant else "no evidence that the mechanisms differ"
    lines = [
        f"**{ranking.objective.upper()}, `{ranking.metric}`** — average rank (1 = best, {ranking.n_blocks} blocks of "
        f"one {ranking.block}): {ranks}. Friedman χ² = {fmt(ranking.statistic, 3)}, p = {fmt_p(ranking.p_value)}: "
        f"{verdict} at α = {ranking.alpha:g}; Nemenyi CD = {fmt(ranking.critical_difference, 3)}.",
        "",
    ]
    if ranking.note:
        lines[-2] += f" Note: {ranking.note}."
    if ranking.cv_statement:
        lines[-2] += f" Blocks under {ranking.cv_statement}."
    significant = [p for p in ranking.posthoc if p.significant]
    if significant:
        pairs = "; ".join(
            f"`{p.mechanism_a}` vs `{p.mechanism_b}` (p adj = {fmt_p(p.p_adjusted)})" for p in significant
        )
        lines += [f"Post-hoc (Wilcoxon signed-rank, Holm): {pairs}.", ""]
    elif ranking.omnibus_significant:
        lines += ["Post-hoc (Wilcoxon signed-rank, Holm): no single pair is significant.", ""]
    return lines


def ranking_section(analysis: Analysis, figures: Mapping[str, str]) -> list[str]:
    """Markdown for the primary metric's rankings (the JSON has every metric's), with the critical-difference
    diagram when there is one."""
    if not analysis.rankings:
        return []
    lines = [
        "## Ranking the mechanisms",
        "",
        "Within each objective, the Friedman test on the blocks every mechanism shares comes first; pairs are "
        "tested post hoc (Wilcoxon signed-rank, Holm-adjusted) and count only when the Friedman test rejects "
        "(Demšar 2006; Benavoli et al. 2016).",
        "",
    ]
    for ranking in analysis.rankings:
        if ranking.metric == analysis.primary_metric:
            lines += _ranking_lines(ranking)
    lines += ["Rankings of every other metric are in the analysis JSON (`rankings`).", ""]
    if "critical_difference" in figures:
        lines += [f"![Critical-difference diagram]({figures['critical_difference']})", ""]
    return lines
