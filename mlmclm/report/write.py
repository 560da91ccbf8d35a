"""The one entry point the CLI and ``train`` call: analyse raw results and write every file atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlmclm.analysis import analyze
from mlmclm.atomic import atomic_write_json, atomic_write_text
from mlmclm.config import StatisticsConfig
from mlmclm.report import plots
from mlmclm.report.critical_difference import plot_critical_difference
from mlmclm.report.documents import analysis_document, summary_document
from mlmclm.report.markdown import FIGURE_SUFFIXES, render_report


def write_analysis(
    raw_results: Mapping[str, Any],
    stats_cfg: StatisticsConfig,
    output_dir: str | Path,
    experiment_name: str | None = None,
    metrics: Sequence[str] | None = None,
    file_prefix: str | None = None,
    analyze_command: str | None = None,
) -> dict[str, Path]:
    """Write ``<prefix>_summary.json``, ``<prefix>_statistical_analysis.json``, ``<prefix>_report.md`` and five
    PNGs; the prefix is the experiment name unless ``file_prefix`` is given.

    Returns the written paths by kind. ``metrics`` defaults to the primary and secondary metrics plus every
    recorded probe metric; naming a metric that no completed run recorded raises :class:`UserError`.
    ``analyze_command`` marks a re-analysis (``mlmclm analyze``): the report then names it next to the
    training command, so the report says how it was made.
    """
    output_dir = Path(output_dir)
    name = experiment_name or str(raw_results.get("experiment_name") or "experiment")
    prefix = file_prefix or name
    analysis = analyze(raw_results, stats_cfg, metrics)
    runs = raw_results["runs"]
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
    }
    figure_names = {kind: path.name for kind, path in figures.items()}
    report = render_report(analysis, raw_results, name, figure_names, analyze_command=analyze_command)
    written["report"] = atomic_write_text(output_dir / f"{prefix}_report.md", report)
    return written
