"""Four of the six figures of the report (the others: critical_difference.py, performance_profile.py), drawn on
Agg-backed ``Figure`` objects (no pyplot global state).

Each function takes the :class:`~mlmclm.analysis.Analysis` (and runs' curves) and writes one PNG atomically.
All of them cope with one objective, one mechanism, missing intervals and missing curves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mlmclm.analysis import Analysis, Comparison
from mlmclm.analysis.conditions import is_probe_metric, metric_direction
from mlmclm.analysis.curves import condition_band
from mlmclm.atomic import atomic_write
from mlmclm.grid.records import RunRecord, completed_runs
from mlmclm.report.caveats import fmt_spread, is_void_comparison
from mlmclm.report.labels import (
    OBJECTIVE_COLOURS,
    colour_for,
    direction_words,
    fmt,
    like_for_like_words,
    line_style_for,
    metric_label,
)

_DPI = 150


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=_DPI))


def _empty(axes: Any, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="0.3")
    axes.set_xticks([])
    axes.set_yticks([])


def chance_level(metric: str, probe_tasks: Mapping[str, Mapping[str, Any]] | None) -> float | None:
    """The chance accuracy of a ``probe/<task>/...accuracy`` metric, from the raw results' ``probe_tasks``
    (majority-class accuracy on the probe test split); None for other metrics or when it was not recorded."""
    if not is_probe_metric(metric) or not metric.endswith("accuracy"):
        return None
    task = metric.split("/")[1]
    value = ((probe_tasks or {}).get(task) or {}).get("chance_accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def _comparison_panel(axes: Any, analysis: Analysis, metric: str, chance: float | None = None) -> None:
    summaries = {(s.objective, s.attention): s for s in analysis.summaries_for(metric)}
    objectives, attentions = analysis.objectives, analysis.attentions
    width = 0.8 / max(len(objectives), 1)
    for o, objective in enumerate(objectives):
        offset = (o - (len(objectives) - 1) / 2) * width
        colour = OBJECTIVE_COLOURS.get(objective, colour_for(o))
        for m, attention in enumerate(attentions):
            summary = summaries.get((objective, attention))
            if summary is None or summary.mean is None:
                continue
            x = m + offset
            values = [obs.value for obs in summary.observations]
            spread = np.linspace(-width / 4, width / 4, len(values)) if len(values) > 1 else [0.0]
            axes.scatter(x + np.asarray(spread), values, s=14, color=colour, alpha=0.5, zorder=2)
            low, high = summary.ci.low, summary.ci.high
            error = [[summary.mean - low], [high - summary.mean]] if low is not None else None
            axes.errorbar(
                x,
                summary.mean,
                yerr=error,
                fmt="o",
                color=colour,
                capsize=4,
                ms=7,
                zorder=3,
                label=objective.upper() if m == 0 else None,
            )
    if chance is not None:
        axes.axhline(chance, color="0.35", linestyle=":", linewidth=1.5, label=f"chance ({chance:.3g})", zorder=1)
    axes.set_xticks(range(len(attentions)), attentions)
    axes.set_xlabel("attention / position mechanism")
    axes.set_ylabel(metric_label(metric))
    level = int(round(analysis.settings.confidence_level * 100))
    title = f"{metric}: mean ± {level}% t-interval, dots = runs\n({like_for_like_words(metric)})"
    axes.set_title(title, fontsize=9)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(title="objective")


def plot_mlm_vs_clm(
    analysis: Analysis, path: Path, probe_tasks: Mapping[str, Mapping[str, Any]] | None = None
) -> Path:
    """Per mechanism, both objectives: the primary metric, and the first probe metric when there is one.

    A probe accuracy panel draws its task's chance accuracy (``probe_tasks``, as in the raw results) as a
    dotted line: a probe near it has found nothing in the representations."""
    metrics = [analysis.primary_metric]
    metrics += [metric for metric in analysis.metrics if is_probe_metric(metric)][:1]
    figure = Figure(figsize=(max(5.0, 1.6 * len(analysis.attentions) + 2) * len(metrics), 4.5))
    for index, metric in enumerate(metrics):
        axes = figure.add_subplot(1, len(metrics), index + 1)
        if not analysis.summaries_for(metric):
            _empty(axes, f"no values of {metric}")
            continue
        _comparison_panel(axes, analysis, metric, chance_level(metric, probe_tasks))
    return _save(figure, path)


def row_scaled(grid: np.ndarray, direction: str | None) -> np.ndarray:
    """Each row of ``grid`` scaled to [0, 1] on its own: 1 = the row's best (its highest value when higher is
    better or no direction is known, its lowest when lower is better), 0 = its worst, 0.5 when the row has one
    distinct value. Rows are objectives, whose metrics score different tasks, so one colour scale across rows
    would invite exactly the comparison the figure forbids."""
    scaled = np.full(grid.shape, np.nan)
    for i, row in enumerate(grid):
        if np.all(np.isnan(row)):
            continue
        low, high = np.nanmin(row), np.nanmax(row)
        scaled[i] = 0.5 if high - low <= 0 else (row - low) / (high - low)
        if direction == "lower":
            scaled[i] = 1.0 - scaled[i]
    return scaled


def plot_attention_heatmap(analysis: Analysis, path: Path) -> Path:
    """Objective x mechanism grid of the primary metric's mean, annotated with mean ± SD and n; the colour
    scale is per row (:func:`row_scaled`), because rows score different tasks."""
    metric = analysis.primary_metric
    summaries = {(s.objective, s.attention): s for s in analysis.summaries_for(metric)}
    objectives, attentions = analysis.objectives, analysis.attentions
    grid = np.full((len(objectives), len(attentions)), np.nan)
    for i, objective in enumerate(objectives):
        for j, attention in enumerate(attentions):
            summary = summaries.get((objective, attention))
            if summary is not None and summary.mean is not None:
                grid[i, j] = summary.mean
    figure = Figure(figsize=(1.6 * len(attentions) + 3, 1.1 * len(objectives) + 2))
    axes = figure.add_subplot(1, 1, 1)
    if np.all(np.isnan(grid)):
        _empty(axes, f"no values of {metric}")
        return _save(figure, path)
    direction = metric_direction(metric)
    scaled = row_scaled(grid, direction)
    image = axes.imshow(np.ma.masked_invalid(scaled), cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    colourbar = figure.colorbar(image, ax=axes, ticks=[0.0, 1.0])
    colourbar.ax.set_yticklabels(["row's worst", "row's best"] if direction else ["row's lowest", "row's highest"])
    best = "lowest" if direction == "lower" else "highest"
    colourbar.set_label(f"scaled within each row ({best} {metric} = 1)", fontsize=8)
    for i, objective in enumerate(objectives):
        for j, attention in enumerate(attentions):
            summary = summaries.get((objective, attention))
            if summary is None or summary.mean is None:
                axes.text(j, i, "no runs", ha="center", va="center", color="0.4")
                continue
            text = f"{fmt(summary.mean)}\n± {fmt_spread(summary.std, summary.mean, 2)}\nn={summary.n}"
            ink = "black" if scaled[i, j] > 0.5 else "white"
            axes.text(j, i, text, ha="center", va="center", fontsize=8, color=ink)
    axes.set_xticks(range(len(attentions)), attentions)
    axes.set_yticks(range(len(objectives)), [objective.upper() for objective in objectives])
    axes.set_xlabel("attention / position mechanism")
    axes.set_ylabel("objective")
    axes.set_title(
        f"mean {metric} (± SD); compare within a row — rows score different tasks,\n"
        "so each row has its own colour scale",
        fontsize=9,
    )
    return _save(figure, path)


def plot_training_curves(
    analysis: Analysis, runs: Sequence[RunRecord], path: Path, metric: str = "val_loss"
) -> Path:
    """Validation curve per condition: mean over completed runs with its per-point t-interval (the sample-
    efficiency bands of analysis/curves.py, drawn from the same ``condition_band``), one panel per objective.

    Runs are averaged on the steps they all recorded; where their grids differ, each run is interpolated onto
    the first run's grid within its own range. Under cross-validation each seed's folds are averaged first and
    n counts seeds. Objectives get separate panels: their losses differ in kind.
    """
    objectives = analysis.objectives or ("mlm",)
    average_folds = analysis.cross_validation is not None
    figure = Figure(figsize=(5.5 * len(objectives), 4.2))
    for o, objective in enumerate(objectives):
        axes = figure.add_subplot(1, len(objectives), o + 1)
        drawn, x_name = False, "step"
        for m, attention in enumerate(analysis.attentions):
            # training tokens on the x axis (sample efficiency), steps for runs that did not record tokens
            band = condition_band(
                completed_runs(runs, objective, attention), metric, analysis.settings.confidence_level,
                objective, attention, average_folds=average_folds,
            )
            if band is None:
                continue
            grid, mean, x_name = band.x, band.mean, band.axis
            # per-point t-interval of the mean over seeds; none where n < 2
            low = np.where(np.isfinite(band.low), band.low, mean)
            high = np.where(np.isfinite(band.high), band.high, mean)
            style = line_style_for(m)
            label = f"{attention} (n={band.units}{' seeds' if average_folds else ''})"
            # Thick under thin, big hollow markers under small ones: identical curves still show each one.
            under = len(analysis.attentions) - 1 - m
            axes.plot(
                grid, mean, **style, markevery=_mark_every(grid.size, m), label=label, markerfacecolor="none",
                linewidth=1.2 + 0.9 * under, ms=4 + 2 * under, zorder=2 + m,
            )
            axes.fill_between(grid, low, high, color=style["color"], alpha=0.15, linewidth=0)
            drawn = True
        level = round(analysis.settings.confidence_level * 100)
        folds = ", folds averaged per seed" if average_folds else ""
        axes.set_title(f"{objective.upper()}: mean and {level}% t-interval over seeds{folds}", fontsize=9)
        if not drawn:
            _empty(axes, f"no {metric} curves recorded")
            continue
        axes.set_xlabel("optimizer steps" if x_name == "step" else "training tokens")
        axes.set_ylabel(metric_label(metric))
        axes.legend(title="mechanism", fontsize=8)
    return _save(figure, path)


def _mark_every(points: int, index: int) -> tuple[int, int]:
    """About eight markers per curve, each curve's shifted so markers of overlapping curves do not coincide."""
    step = max(points // 8, 1)
    return (index % step, step)


def _family_label(comparison: Comparison) -> str:
    family = comparison.family.scope
    return family if comparison.like_for_like else f"{family} († different tasks: not a ranking)"


def plot_effect_sizes(analysis: Analysis, path: Path) -> Path:
    """Forest plot of Hedges' g with bootstrap CIs for the primary metric's comparisons.

    Filled markers are significant after the family-wise correction, hollow ones are not; MLM-vs-CLM rows of
    an objective-specific metric (a loss) are marked † because they do not rank the objectives.
    """
    metric = analysis.primary_metric
    comparisons = [
        c
        for c in analysis.comparisons
        if c.metric == metric and (c.effect.hedges_g is not None or is_void_comparison(c))
    ]
    figure = Figure(figsize=(10.5, 1.2 + 0.38 * max(len(comparisons), 2)))
    axes = figure.add_subplot(1, 1, 1)
    if not comparisons:
        _empty(axes, f"no comparison of {metric} has a defined effect size")
        return _save(figure, path)
    families = list(dict.fromkeys(c.family for c in comparisons))
    for row, comparison in enumerate(comparisons):
        colour = colour_for(families.index(comparison.family))
        if is_void_comparison(comparison):  # g is rounding over rounding: drawn as no difference
            axes.plot(0.0, row, "x", ms=8, color="0.3", label="no difference (equal up to rounding)")
            continue
        low, high = comparison.effect.effect_size_ci.low, comparison.effect.effect_size_ci.high
        g = comparison.effect.hedges_g
        if low is not None and high is not None:
            axes.plot([low, high], [row, row], color=colour, linewidth=2)
        face = colour if comparison.test.significant else "white"
        axes.plot(g, row, "o", ms=8, color=colour, markerfacecolor=face, label=_family_label(comparison))
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    # Outside the axes, so the legend can never cover an interval.
    axes.legend(unique.values(), unique.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    axes.axvline(0.0, color="0.5", linestyle="--", linewidth=1)
    labels = [f"{c.group_a} − {c.group_b}" + ("" if c.like_for_like else " †") for c in comparisons]
    axes.set_yticks(range(len(comparisons)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("Hedges' g (group a − group b, standardised; d_z-based when paired)")
    correction = analysis.settings.correction
    level = round(analysis.settings.confidence_level * 100)
    axes.set_title(
        f"{metric} ({direction_words(metric)}): Hedges' g with {level}% noncentral-t CIs\n"
        f"filled = significant after {correction} correction",
        fontsize=9,
    )
    return _save(figure, path)
