"""The performance-profile figure (Agarwal et al. 2021, fig. 5): fraction of runs × tasks probe scores above τ.

One panel per attention mechanism, one curve per objective (the report's question is MLM vs CLM) with its
pointwise stratified-bootstrap band, all on one τ axis so mechanisms can be compared across panels too. Reads
:class:`~mlmclm.analysis.profiles.PerformanceProfile` fields only. Drawn on an Agg ``Figure`` and written
atomically, like the other figures.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from mlmclm.analysis import Analysis
from mlmclm.analysis.profiles import MIN_PROFILE_RUNS
from mlmclm.report.labels import LINE_STYLES, OBJECTIVE_COLOURS, colour_for
from mlmclm.report.plots import _empty, _save


def plot_performance_profiles(analysis: Analysis, path: Path) -> Path:
    """Score distributions of the probe accuracy per condition; an explanatory empty panel when there are none."""
    profiles = analysis.probe_profiles
    mechanisms = [a for a in analysis.attentions if any(p.attention == a for p in profiles)]
    columns = min(2, max(1, len(mechanisms)))
    rows = max(1, math.ceil(len(mechanisms) / columns))
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows))
    if not profiles:
        _empty(
            figure.add_subplot(1, 1, 1),
            f"no performance profile: needs ≥ 2 probe tasks and ≥ {MIN_PROFILE_RUNS} runs per condition",
        )
        return _save(figure, path)
    level = f"{profiles[0].confidence_level * 100:g}%"
    figure.suptitle(
        f"Performance profiles of probe {profiles[0].score} over {len(profiles[0].tasks)} tasks "
        f"({level} pointwise stratified bootstrap bands)", fontsize=9,
    )
    for index, mechanism in enumerate(mechanisms):
        axes = figure.add_subplot(rows, columns, index + 1)
        for profile in (p for p in profiles if p.attention == mechanism):
            order = analysis.objectives.index(profile.objective) if profile.objective in analysis.objectives else 0
            colour = OBJECTIVE_COLOURS.get(profile.objective, colour_for(order))
            axes.step(profile.thresholds, profile.fraction_above, where="post", color=colour,
                      linestyle=LINE_STYLES[order % len(LINE_STYLES)],
                      label=f"{profile.objective.upper()} ({profile.n_runs} runs)")
            axes.fill_between(profile.thresholds, profile.band_low, profile.band_high, step="post",
                              color=colour, alpha=0.2, lw=0)
        axes.set_ylim(-0.02, 1.02)
        axes.set_xlabel("threshold τ", fontsize=8)
        axes.set_ylabel("fraction of runs × tasks > τ", fontsize=8)
        axes.set_title(mechanism, fontsize=9)
        axes.legend(fontsize=7, loc="lower left")
    return _save(figure, path)
