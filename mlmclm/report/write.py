"""The one entry point the CLI and ``train`` call: analyse raw results and write every file atomically."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlmclm.analysis import Analysis, analyze
from mlmclm.analysis.analysis_log import AnalysisLogEntry, new_log_entry
from mlmclm.analysis.compare import final_runs
from mlmclm.analysis.overtaking import analyze_overtaking, curve_metrics
from mlmclm.atomic import atomic_write_dir, atomic_write_json, atomic_write_text
from mlmclm.config import StatisticsConfig
from mlmclm.errors import UserError
from mlmclm.grid.records import RunRecord
from mlmclm.report import length_and_learning, plots
from mlmclm.report.critical_difference import plot_critical_difference
from mlmclm.report.documents import analysis_document, plain, summary_document
from mlmclm.report.markdown import FIGURE_SUFFIXES, render_report
from mlmclm.report.performance_profile import plot_performance_profiles


def write_analysis(
    raw_results: Mapping[str, Any],
    stats_cfg: StatisticsConfig,
    output_dir: str | Path,
    experiment_name: str | None = None,
    metrics: Sequence[str] | None = None,
    file_prefix: str | None = None,
    analyze_command: str | None = None,
    log_path: str | Path | None = None,
) -> dict[str, Path]:
    """Write ``<prefix>_summary.json``, ``<prefix>_statistical_analysis.json``, ``<prefix>_report.md`` and six
    PNGs; the prefix is the experiment name unless ``file_prefix`` is given.

    Returns the written paths by kind. ``metrics`` defaults to the primary and secondary metrics plus every
    recorded probe metric; naming a metric that no completed run recorded raises :class:`UserError`.
    ``analyze_command`` marks a re-analysis (``mlmclm analyze``): the report then names it next to the
    training command, so the report says how it was made. ``log_path`` is the experiment's analysis log
    (``<experiment>_analysis_log.json`` beside the raw results): this analysis is appended to it, and the
    whole log goes into the analysis JSON and the report.

    All or nothing: every file is written into a temporary sibling directory and moved into ``output_dir``
    only once the report is rendered (:func:`~mlmclm.atomic.atomic_write_dir`), so a failure half-way (a
    figure, the report) leaves the previous outputs as they were and no mix of old and new.
    """
    output_dir = Path(output_dir)
    name = experiment_name or str(raw_results.get("experiment_name") or "experiment")
    analysis = analyze(raw_results, stats_cfg, metrics)
    if log_path is not None:
        log = extended_analysis_log(Path(log_path), raw_results, analysis, metrics, analyze_command)
        analysis = dataclasses.replace(analysis, analysis_log=log)
    staged: dict[str, Path] = {}
    atomic_write_dir(output_dir, lambda stage: staged.update(
        _write_outputs(stage, analysis, raw_results, stats_cfg, name, file_prefix or name, analyze_command)
    ))
    written = {kind: output_dir / path.name for kind, path in staged.items() if path is not None}
    if log_path is not None:  # last: an analysis that failed half-way is not logged as made
        atomic_write_json(Path(log_path), {"schema_version": 1, "entries": plain(analysis.analysis_log)})
    return written


def _write_outputs(
    output_dir: Path, analysis: Analysis, raw_results: Mapping[str, Any], stats_cfg: StatisticsConfig, name: str,
    prefix: str, analyze_command: str | None,
) -> dict[str, Path]:
    """The JSON documents, the figures and the report, in ``output_dir`` (the staging directory)."""
    runs = run_records(raw_results)
    figures = {kind: output_dir / f"{prefix}_{suffix}" for kind, suffix in FIGURE_SUFFIXES.items()}
    written = {
        "summary": atomic_write_json(output_dir / f"{prefix}_summary.json", summary_document(analysis, name)),
        "statistical_analysis": atomic_write_json(
            output_dir / f"{prefix}_statistical_analysis.json", analysis_document(analysis, name)
        ),
        "mlm_vs_clm_plot": plots.plot_mlm_vs_clm(
            analysis, figures["mlm_vs_clm_plot"], raw_results.get("probe_tasks")
        ),
        "attention_heatmap": plots.plot_attention_heatmap(analysis, figures["attention_heatmap"]),
        "training_curves": plots.plot_training_curves(analysis, runs, figures["training_curves"]),
        "effect_size_plot": plots.plot_effect_sizes(analysis, figures["effect_size_plot"]),
        "critical_difference": plot_critical_difference(analysis, figures["critical_difference"]),
        "performance_profile": plot_performance_profiles(analysis, figures["performance_profile"]),
    }
    figure_names = {kind: path.name for kind, path in figures.items()}
    sections = _length_and_learning(analysis, raw_results, stats_cfg, output_dir, prefix, written)
    report = render_report(
        analysis, raw_results, name, figure_names, analyze_command=analyze_command, optional_sections=sections
    )
    written["report"] = atomic_write_text(output_dir / f"{prefix}_report.md", report)
    return written


def analysis_log_path(raw_results_path: str | Path, experiment_name: str) -> Path:
    """Where an experiment's analysis log lives: beside its raw-results file."""
    return Path(raw_results_path).resolve().parent / f"{experiment_name}_analysis_log.json"


def read_analysis_log(path: Path) -> list[AnalysisLogEntry]:
    if not path.is_file():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [AnalysisLogEntry.from_json(entry) for entry in document["entries"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read the analysis log {path}: {exc}; move it away to start a new log") from exc


def extended_analysis_log(
    path: Path,
    raw_results: Mapping[str, Any],
    analysis: Analysis,
    metrics: Sequence[str] | None,
    command: str | None,
) -> tuple[AnalysisLogEntry, ...]:
    """The log file's entries with this analysis appended last; :func:`write_analysis` writes it back once
    every other file is written."""
    previous = read_analysis_log(path)
    entry = new_log_entry(
        previous,
        final_runs(raw_results.get("runs") or []),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=command or raw_results.get("command"),
        metrics_requested=metrics,
        primary_metric=analysis.primary_metric,
        correction=analysis.settings.correction,
        alpha=analysis.settings.significance_level,
    )
    return (*previous, entry)


def run_records(raw_results: Mapping[str, Any]) -> list[RunRecord]:
    """The final runs as typed records, read once for every figure (sweep runs never enter a figure)."""
    return [RunRecord.from_json(run) for run in final_runs(raw_results["runs"])]


def _length_and_learning(
    analysis, raw_results: Mapping[str, Any], stats_cfg: StatisticsConfig, output_dir: Path, prefix: str,
    written: dict[str, Path],
) -> list[str]:
    """Draw the length and probe-over-time figures when the runs recorded them; return their report sections."""
    runs = run_records(raw_results)
    objectives, attentions = analysis.objectives, analysis.attentions
    average_folds = analysis.cross_validation is not None  # seeds, each averaged over its folds, are the units
    lines: list[str] = []
    if length_and_learning.has_length_results(runs):
        path = output_dir / f"{prefix}_{length_and_learning.FIGURE_SUFFIXES[length_and_learning.LENGTH_FIGURE]}"
        written[length_and_learning.LENGTH_FIGURE] = length_and_learning.plot_length_generalisation(
            runs, objectives, attentions, path
        )
        lines += length_and_learning.length_lines(runs, objectives, attentions, path.name)
    if curve_metrics(runs):
        overtaking = analyze_overtaking(
            runs, attentions, confidence_level=stats_cfg.confidence_level,
            n_resamples=stats_cfg.bootstrap_resamples, seed=stats_cfg.seed, average_folds=average_folds,
        )
        path = output_dir / f"{prefix}_{length_and_learning.FIGURE_SUFFIXES[length_and_learning.PROBE_CURVES_FIGURE]}"
        written[length_and_learning.PROBE_CURVES_FIGURE] = length_and_learning.plot_probe_curves(
            runs, objectives, attentions, overtaking, path, average_folds=average_folds
        )
        lines += length_and_learning.probe_curve_lines(overtaking, path.name)
    return lines
