"""What the figures say, read from the matplotlib Figure before it is saved."""

from __future__ import annotations

from pathlib import Path

from mlmclm.analysis import analyze
from mlmclm.config import StatisticsConfig
from mlmclm.report import plots
from tests.analysis.synthetic_results import make_raw_results


def test_forest_plot_marks_cross_objective_loss_rows_as_not_a_ranking_and_shows_intervals(monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure) or path)
    analysis = analyze(make_raw_results(), StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])
    plots.plot_effect_sizes(analysis, Path("unused.png"))
    axes = drawn[0].axes[0]
    labels = [tick.get_text() for tick in axes.get_yticklabels()]
    cross = [label for label in labels if label.startswith("rope_mlm − rope_clm")]
    assert cross and all(label.endswith("†") for label in cross)
    assert not any(label.endswith("†") for label in labels if "mlm −" in label and "_clm" not in label)
    assert "different tasks" in " ".join(text.get_text() for text in axes.get_legend().get_texts())
    assert "lower is better" in axes.get_title()
    interval_lines = [line for line in axes.get_lines() if len(line.get_xdata()) == 2 and line.get_linestyle() == "-"]
    assert len(interval_lines) == len(analysis.comparisons)  # every comparison has its CI drawn
