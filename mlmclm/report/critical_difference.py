"""The critical-difference diagram (Demšar 2006, fig. 1–2): average ranks of the mechanisms within each objective.

One panel per objective for the primary metric. Mechanisms sit on a rank axis (1 = best, on the left); the bar
above the axis is the Nemenyi critical difference; a thick line joins mechanisms that the Holm-corrected post-hoc
tests do not separate (when the Friedman test does not reject, one line joins them all). Drawn on an Agg
``Figure`` and written atomically, like the other figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mlmclm.analysis import Analysis
from mlmclm.analysis.ranking import MechanismRanking
from mlmclm.report.plots import _empty, _save


def not_separated_groups(ranking: MechanismRanking) -> list[tuple[str, ...]]:
    """Maximal runs of rank-adjacent mechanisms in which no pair is significant (the diagram's thick lines)."""
    order = [m for _, m in sorted(zip(ranking.average_ranks, ranking.mechanisms, strict=True))]
    separated = {frozenset((p.mechanism_a, p.mechanism_b)) for p in ranking.posthoc if p.significant}
    groups: list[tuple[str, ...]] = []
    for start in range(len(order)):
        end = start
        while end + 1 < len(order) and all(
            frozenset((order[i], order[end + 1])) not in separated for i in range(start, end + 1)
        ):
            end += 1
        group = tuple(order[start : end + 1])
        if len(group) > 1 and not any(set(group) <= set(other) for other in groups):
            groups.append(group)
    return groups


def _panel(axes: Any, ranking: MechanismRanking) -> None:
    k = len(ranking.mechanisms)
    axes.set_xlim(0.5, k + 0.5)
    axes.set_ylim(-1.6 - 0.35 * k, 1.4)
    axes.hlines(0, 1, k, color="black", lw=1)
    for rank in range(1, k + 1):
        axes.vlines(rank, 0, 0.12, color="black", lw=1)
        axes.text(rank, 0.22, str(rank), ha="center", va="bottom", fontsize=8)
    if ranking.critical_difference is not None:
        axes.hlines(1.0, 1, 1 + ranking.critical_difference, color="0.2", lw=2)
        axes.text(1 + ranking.critical_difference / 2, 1.08, f"CD = {ranking.critical_difference:.2f}",
                  ha="center", va="bottom", fontsize=8)
    order = sorted(zip(ranking.average_ranks, ranking.mechanisms, strict=True))
    for row, (rank, mechanism) in enumerate(order):
        y = -0.45 - 0.35 * row
        axes.plot([rank, rank], [0, y], color="0.3", lw=0.8)
        axes.text(rank + 0.05, y, f"{mechanism} ({rank:.2f})", va="center", fontsize=8)
    for offset, group in enumerate(not_separated_groups(ranking)):
        ranks = [rank for rank, mechanism in order if mechanism in group]
        axes.hlines(-0.2 - 0.12 * offset, min(ranks) - 0.03, max(ranks) + 0.03, color="black", lw=3)
    p = "n/a" if ranking.p_value is None else f"{ranking.p_value:.3g}"
    axes.set_title(
        f"{ranking.objective.upper()} `{ranking.metric}`: average rank (1 = best), Friedman p = {p}, "
        f"{ranking.n_blocks} blocks\nthick lines join mechanisms the Holm-corrected post-hoc tests do not separate",
        fontsize=8,
    )
    axes.axis("off")


def plot_critical_difference(analysis: Analysis, path: Path) -> Path:
    """Critical-difference diagram of the primary metric, one panel per objective with ≥ 3 ranked mechanisms."""
    rankings = [
        r for r in analysis.rankings if r.metric == analysis.primary_metric and r.average_ranks
    ]
    figure = Figure(figsize=(6.4, 2.2 * max(1, len(rankings))))
    if not rankings:
        _empty(figure.add_subplot(1, 1, 1), "fewer than 3 mechanisms (or 2 complete blocks): no ranking")
        return _save(figure, path)
    for index, ranking in enumerate(rankings):
        _panel(figure.add_subplot(len(rankings), 1, index + 1), ranking)
    return _save(figure, path)
