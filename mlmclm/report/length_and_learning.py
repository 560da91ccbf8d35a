"""Two optional report parts, each a figure and its markdown section: length generalisation (loss against
evaluation length; ``evaluation.length_multipliers``) and learning over time (probe scores against tokens
seen, with the step where one objective overtakes the other; ``probes.eval_every``).

Both read the run records only; an experiment without those options gets neither figure nor section.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mlmclm.analysis.overtaking import Overtaking, curve_metrics, probe_curves
from mlmclm.grid.records import RunRecord, completed_runs
from mlmclm.report.labels import OBJECTIVE_COLOURS, fmt, line_style_for, metric_label
from mlmclm.report.plots import _empty, _save

LENGTH_FIGURE = "length_generalisation"
PROBE_CURVES_FIGURE = "probe_curves"
FIGURE_SUFFIXES = {LENGTH_FIGURE: "length_generalisation.png", PROBE_CURVES_FIGURE: "probe_curves.png"}


def length_entries(runs: Sequence[RunRecord], objective: str, attention: str) -> dict[int, list[dict]]:
    """Multiplier -> the ``length_generalisation`` entries of one condition's completed runs."""
    entries: dict[int, list[dict]] = {}
    for run in completed_runs(runs, objective, attention):
        for entry in run.length_generalisation or []:
            entries.setdefault(int(entry["multiplier"]), []).append(entry)
    return dict(sorted(entries.items()))


def _mean_sd(values: list[float]) -> tuple[float, float]:
    finite = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if finite.size == 0:
        return np.nan, np.nan
    return float(finite.mean()), float(finite.std(ddof=1)) if finite.size > 1 else 0.0


def has_length_results(runs: Sequence[RunRecord]) -> bool:
    return any(run.length_generalisation for run in runs if run.completed)


def plot_length_generalisation(
    runs: Sequence[RunRecord], objectives: Sequence[str], attentions: Sequence[str], path: Path
) -> Path:
    """Test loss against evaluation length (k x training length), mean ± 1 SD over runs; a panel per
    objective (their losses score different tasks), a line per mechanism; not-applicable lengths are gaps and
    the legend says so."""
    figure = Figure(figsize=(5.5 * max(len(objectives), 1), 4.2))
    for o, objective in enumerate(objectives):
        axes = figure.add_subplot(1, len(objectives), o + 1)
        drawn, ticks = False, {}
        for m, attention in enumerate(attentions):
            entries = length_entries(runs, objective, attention)
            if not entries:
                continue
            multipliers = list(entries)
            stats = [_mean_sd([e["loss"] for e in entries[k]]) for k in multipliers]
            means, sds = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
            for k in multipliers:
                ticks[k] = entries[k][0]["length"]
            refused = [k for k in multipliers if all(e["status"] == "not_applicable" for e in entries[k])]
            label = f"{attention} (n={len(completed_runs(runs, objective, attention))})"
            if refused:
                label += f"; n/a at {', '.join(f'{k}x' for k in refused)}"
            style = line_style_for(m)
            axes.plot(multipliers, means, **style, label=label, markerfacecolor="none")
            axes.fill_between(multipliers, means - sds, means + sds, color=style["color"], alpha=0.15, linewidth=0)
            drawn = True
        axes.set_title(f"{objective.upper()}: test loss by evaluation length, mean ± 1 SD", fontsize=9)
        if not drawn:
            _empty(axes, "no length evaluations recorded")
            continue
        axes.set_xscale("log", base=2)
        axes.set_xticks(list(ticks), [f"{k}x\n({length})" for k, length in ticks.items()])
        axes.minorticks_off()
        axes.set_xlabel("evaluation length: multiple of the training length (tokens)")
        axes.set_ylabel("test loss (nats per predicted token)")
        axes.legend(title="mechanism", fontsize=8)
    return _save(figure, path)


def length_lines(
    runs: Sequence[RunRecord], objectives: Sequence[str], attentions: Sequence[str], figure: str | None
) -> list[str]:
    """The length-generalisation section: a table of loss by length with the mean length actually evaluated."""
    if figure is None:
        return []
    rows = []
    for objective in objectives:
        for attention in attentions:
            for k, entries in length_entries(runs, objective, attention).items():
                if all(e["status"] == "not_applicable" for e in entries):
                    rows.append(f"| {objective} | {attention} | {k}x | {entries[0]['length']} | not applicable | | |")
                    continue
                loss, loss_sd = _mean_sd([e["loss"] for e in entries])
                accuracy, _ = _mean_sd([e["accuracy"] for e in entries])
                mean_length, _ = _mean_sd([e["mean_length"] for e in entries])
                rows.append(
                    f"| {objective} | {attention} | {k}x | {entries[0]['length']} | {fmt(mean_length, 4)} | "
                    f"{fmt(loss)} ± {fmt(loss_sd, 2)} | {fmt(accuracy)} |"
                )
    return [
        "## Length generalisation",
        "",
        "Each run was scored on the test split re-segmented at k x its training length (metrics "
        "`eval_len<k>/loss` and `eval_len<k>/accuracy`; their comparisons are in the sections above). Documents "
        "shorter than k x L stay as they are, so *mean length* is the mean number of tokens per sequence actually "
        "evaluated. A mechanism that cannot represent unseen positions (learned absolute `standard`) is not "
        "applicable beyond 1x. Losses score each objective's own task: compare mechanisms within an objective.",
        "",
        "| objective | mechanism | k | max length | mean length | loss (mean ± SD) | accuracy |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"![Loss against evaluation length]({figure})",
        "",
    ]


def _mean_curve(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(curves, axis=0)
        sd = np.nan_to_num(np.nanstd(curves, axis=0, ddof=1)) if len(curves) > 1 else np.zeros_like(mean)
    return mean, sd


def plot_probe_curves(
    runs: Sequence[RunRecord],
    objectives: Sequence[str],
    attentions: Sequence[str],
    overtaking: Sequence[Overtaking],
    path: Path,
    *,
    average_folds: bool = False,
) -> Path:
    """Probe accuracy against training tokens seen: a row per probe task, a column per mechanism, a line per
    objective with a band of ± 1 SD across seeds, and a dotted line where one objective overtakes the other.
    Under cross-validation (``average_folds``) each seed's folds are averaged first, as the overtaking is."""
    metrics = [metric for metric in curve_metrics(runs) if metric.endswith("/accuracy")] or ["probe accuracy"]
    columns = [a for a in attentions if any(probe_curves(runs, o, a, metrics[0]) for o in objectives)] or ["none"]
    figure = Figure(figsize=(4.2 * len(columns), 3.2 * len(metrics)))
    crossings = {(o.metric, o.attention): o for o in overtaking}
    for r, metric in enumerate(metrics):
        for c, attention in enumerate(columns):
            axes = figure.add_subplot(len(metrics), len(columns), r * len(columns) + c + 1)
            drawn = False
            for objective in objectives:
                found = probe_curves(runs, objective, attention, metric, average_folds=average_folds)
                if found is None:
                    continue
                steps, scores, tokens = found
                mean, sd = _mean_curve(scores)
                x = np.nanmean(tokens, axis=0) if np.isfinite(tokens).any() else steps
                colour = OBJECTIVE_COLOURS.get(objective, "0.3")
                n = f"{len(scores)} seeds" if average_folds else f"{len(scores)}"
                axes.plot(x, mean, color=colour, marker="o", ms=3, label=f"{objective.upper()} (n={n})")
                axes.fill_between(x, mean - sd, mean + sd, color=colour, alpha=0.18, linewidth=0)
                drawn = True
            crossing = crossings.get((metric, attention))
            if drawn and crossing is not None and crossing.step is not None:
                steps, _, tokens = probe_curves(runs, objectives[0], attention, metric, average_folds=average_folds)
                at = float(np.interp(crossing.step, steps, np.nanmean(tokens, axis=0)))
                axes.axvline(at, color="0.3", linestyle=":", linewidth=1.2,
                             label=f"{crossing.late_leader.upper()} ahead from step {crossing.step:.0f}")
            axes.set_title(f"{attention}: {metric_label(metric)}", fontsize=8)
            if not drawn:
                _empty(axes, "no probe curves recorded")
                continue
            axes.set_xlabel("training tokens seen")
            axes.set_ylabel("probe accuracy (mean ± 1 SD)")
            axes.legend(fontsize=7)
    return _save(figure, path)


def probe_curve_lines(overtaking: Sequence[Overtaking], figure: str | None) -> list[str]:
    """The learning-over-time section: the figure and a table of who leads early and late, and when."""
    if figure is None:
        return []
    rows = []
    for o in overtaking:
        when = "no overtaking" if o.step is None else f"{o.step:.0f}"
        interval = "" if o.low is None else f"[{o.low:.0f}, {o.high:.0f}]"
        share = "" if o.crossing_share is None else f"{o.crossing_share:.2f}"
        rows.append(
            f"| {o.attention} | `{o.metric}` | {o.early_leader or 'tie'} | {o.late_leader or 'tie'} | {when} | "
            f"{interval} | {share} | {o.n_first}/{o.n_second} |"
        )
    level = f"{overtaking[0].level:.0%}" if overtaking else "95%"
    folds_averaged = any(o.folds_averaged for o in overtaking)
    units = "seeds" if folds_averaged else "runs"
    table = [
        f"| mechanism | probe | ahead first | ahead last | overtaking step | {level} bootstrap interval | "
        f"share of resamples that cross | {units} |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ] if rows else ["Both objectives need probe curves under the same mechanism to find an overtaking step."]
    return [
        "## Learning over time",
        "",
        "Probe accuracy at the checkpoints set by `probes.eval_every`, against training tokens seen; bands are "
        "± 1 SD across seeds. The overtaking step is where the objective that leads at the last checkpoint "
        "overtook the one that led at the first (linear interpolation between checkpoints); its interval is a "
        f"percentile bootstrap over {units}, and the share of resamples showing the same overtaking says how much "
        "of it could be seed noise (docs/probes.md)."
        + (" Under cross-validation each seed's folds are averaged into one curve first and seeds are resampled "
           "(folds share training data, so (fold, seed) runs are not independent)." if folds_averaged else ""),
        "",
        *table,
        "",
        f"![Probe scores over training]({figure})",
        "",
    ]
