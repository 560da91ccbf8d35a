"""What the figures say, read from the matplotlib Figure before it is saved."""

from __future__ import annotations

from pathlib import Path

from mlmclm.analysis import analyze
from mlmclm.config import StatisticsConfig
from mlmclm.report import plots
from mlmclm.report.markdown import FIGURE_SUFFIXES, render_report
from mlmclm.report.write import run_records
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


def _drawn_figure(monkeypatch, plot, *args):
    """Run ``plot`` and return its Figure, laid out and drawn as it would be saved."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure) or path)
    plot(*args)
    figure = drawn[0]
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.canvas.draw()
    return figure


def _analysis(metrics):
    return analyze(make_raw_results(), StatisticsConfig(bootstrap_resamples=200), metrics=metrics)


def test_probe_accuracy_panel_draws_the_chance_line_and_the_loss_panel_does_not(monkeypatch):
    analysis = _analysis(["val_loss", "probe/bigram_shift/accuracy"])
    probe_tasks = {"bigram_shift": {"labels": 2, "train_examples": 84, "test_examples": 36, "chance_accuracy": 0.5}}
    figure = _drawn_figure(monkeypatch, plots.plot_mlm_vs_clm, analysis, Path("unused.png"), probe_tasks)
    loss_axes, probe_axes = figure.axes

    def chance_lines(axes):
        return [line for line in axes.get_lines() if line.get_label().startswith("chance")]

    (line,) = chance_lines(probe_axes)
    assert list(line.get_ydata()) == [0.5, 0.5] and line.get_xdata()[0] == 0  # spans the axes (axhline)
    assert probe_axes.get_ylim()[0] <= 0.5  # visible even though every probe scores well above it
    assert not chance_lines(loss_axes)


def test_chance_level_is_read_only_for_probe_accuracies():
    probe_tasks = {"sentiment": {"chance_accuracy": 0.6}}
    assert plots.chance_level("probe/sentiment/accuracy", probe_tasks) == 0.6
    assert plots.chance_level("probe/sentiment/last_token_accuracy", probe_tasks) == 0.6
    assert plots.chance_level("probe/sentiment/f1", probe_tasks) is None
    assert plots.chance_level("val_accuracy", probe_tasks) is None
    assert plots.chance_level("probe/other/accuracy", probe_tasks) is None  # older raw results: no line


def test_forest_plot_legend_lies_outside_the_axes_so_it_covers_no_interval(monkeypatch):
    figure = _drawn_figure(monkeypatch, plots.plot_effect_sizes, _analysis(["val_loss"]), Path("unused.png"))
    axes = figure.axes[0]
    legend_box = axes.get_legend().get_window_extent()
    axes_box = axes.get_window_extent()
    assert legend_box.x0 >= axes_box.x1  # entirely to the right of the data area
    assert figure.bbox.contains(legend_box.x1 - 1, legend_box.y0 + 1)  # and not cut off by the figure edge


def test_training_curves_differ_in_line_style_and_marker_not_only_colour(monkeypatch):
    raw = make_raw_results()
    runs = run_records(raw)
    figure = _drawn_figure(monkeypatch, plots.plot_training_curves, _analysis(["val_loss"]), runs, Path("x"))
    for axes in figure.axes:
        looks = [(line.get_linestyle(), line.get_marker()) for line in axes.get_lines()]
        assert len(looks) == 3 and len(set(looks)) == 3
        assert len({style for style, _ in looks}) == 3 and len({marker for _, marker in looks}) == 3
        # Identical curves: each later one is drawn thinner, on top, with smaller hollow markers.
        lines = axes.get_lines()
        widths, sizes = [line.get_linewidth() for line in lines], [line.get_markersize() for line in lines]
        assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3 and len(set(sizes)) == 3
        assert all(line.get_markerfacecolor() == "none" for line in lines)


def test_heatmap_gives_each_objective_row_its_own_colour_scale(monkeypatch):
    analysis = _analysis(["val_loss"])  # MLM losses ~3.0, CLM ~3.6: one shared scale would flatten each row
    figure = _drawn_figure(monkeypatch, plots.plot_attention_heatmap, analysis, Path("unused.png"))
    colours = figure.axes[0].get_images()[0].get_array()
    for row, objective in enumerate(analysis.objectives):
        summaries = [s for s in analysis.summaries_for("val_loss") if s.objective == objective]
        best = min(summaries, key=lambda summary: summary.mean)  # lower loss is better
        assert colours[row].min() == 0.0 and colours[row].max() == 1.0
        assert colours[row][analysis.attentions.index(best.attention)] == 1.0


def test_the_plot_titles_and_the_report_agree_on_which_metrics_are_like_for_like():
    """One metric table (analysis/metrics.py): a panel titled "like for like" is exactly a metric the report
    lists under its like-for-like MLM-vs-CLM section (probes and cost, e.g. train time), and vice versa."""
    metrics = ["probe_accuracy_gain", "train_time_s", "val_loss", "probe/bigram_shift/accuracy"]
    raw = make_raw_results(baselines=True)
    analysis = analyze(raw, StatisticsConfig(bootstrap_resamples=200), metrics=metrics)
    report = render_report(analysis, raw, "synthetic", {kind: "x.png" for kind in FIGURE_SUFFIXES})
    like_section = report.split("### Like for like")[1].split("### Pre-training metrics")[0]
    for metric in metrics:
        figure = plots.Figure()
        plots._comparison_panel(figure.add_subplot(), analysis, metric)
        title = figure.axes[0].get_title()
        in_like_section = f"#### {plots.metric_label(metric)} —" in like_section
        assert ("(like for like)" in title) == in_like_section, (metric, title)
        assert in_like_section == (metric != "val_loss")

