"""The length-generalisation and probe-over-time figures and report sections, on fabricated run records."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mlmclm.config import StatisticsConfig
from mlmclm.report import length_and_learning, write_analysis
from mlmclm.report.write import run_records
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=300)
STEPS = [20, 40, 60, 80, 100]


def with_length_and_probe_curves() -> dict:
    """Synthetic results plus length evaluations at 1x/2x/4x of L = 64 and coherence probe curves in which
    CLM leads early and MLM overtakes it between steps 40 and 60 (known crossing: step 50)."""
    raw = make_raw_results(failed_run=False)
    for i, run in enumerate(raw["runs"]):
        offset = (i % 3 - 1) * 0.01
        entries = []
        for k in (1, 2, 4):
            refused = run["attention"] == "standard" and k > 1
            loss = math.nan if refused else 3.0 + 0.2 * k * (run["attention"] == "rope") + offset
            entries.append({
                "multiplier": k, "length": 64 * k, "status": "not_applicable" if refused else "evaluated",
                "loss": loss, "accuracy": math.nan if refused else 0.3,
                "mean_length": math.nan if refused else 40.0 * k,
                "sequences": 0 if refused else 10, "reason": "no positions" if refused else None,
            })
            run["metrics"][f"eval_len{k}/loss"] = loss
        run["length_generalisation"] = entries
        slope, intercept = (0.004, 0.5) if run["objective"] == "mlm" else (0.002, 0.6)
        run["curves"]["probe_step"] = STEPS
        run["curves"]["probe_tokens"] = [s * 1000 for s in STEPS]
        run["curves"]["probe/coherence/accuracy"] = [intercept + slope * s + offset for s in STEPS]
    return raw


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_analysis(with_length_and_probe_curves(), FAST, tmp_path_factory.mktemp("out"), "synthetic")


@pytest.mark.slow
def test_both_figures_and_sections_are_written(written):
    assert written["length_generalisation"].name == "synthetic_length_generalisation.png"
    assert written["probe_curves"].read_bytes().startswith(b"\x89PNG")
    report = written["report"].read_text()
    assert "## Length generalisation" in report and "![Loss against evaluation length](synthetic_length" in report
    assert "| mlm | standard | 2x | 128 | not applicable |" in report
    assert "| mlm | rope | 4x | 256 | 160 |" in report  # the mean length actually evaluated
    assert "## Learning over time" in report
    row = next(line for line in report.splitlines() if line.startswith("| rope | `probe/coherence/accuracy`"))
    assert "| clm | mlm | 50 |" in row
    # the length metrics are analysed like every other metric
    assert "eval_len2/loss" in report


@pytest.mark.slow
def test_without_those_options_there_is_neither_figure_nor_section(tmp_path):
    written = write_analysis(make_raw_results(), FAST, tmp_path, "plain")
    assert "length_generalisation" not in written and "probe_curves" not in written
    report = written["report"].read_text()
    assert "## Length generalisation" not in report and "## Learning over time" not in report


def _capture(monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = []

    def keep(figure, path):
        FigureCanvasAgg(figure)
        figure.canvas.draw()
        drawn.append(figure)
        return path

    monkeypatch.setattr(length_and_learning, "_save", keep)
    return drawn


def test_length_figure_has_a_panel_per_objective_and_a_gap_where_standard_is_not_applicable(monkeypatch):
    drawn = _capture(monkeypatch)
    raw = with_length_and_probe_curves()
    length_and_learning.plot_length_generalisation(run_records(raw), ["mlm", "clm"], ["standard", "rope", "alibi"],
                                                   Path("unused.png"))
    mlm, clm = drawn[0].axes
    assert "MLM" in mlm.get_title() and "CLM" in clm.get_title()
    assert "training length" in mlm.get_xlabel() and "loss" in mlm.get_ylabel()
    assert [t.get_text() for t in mlm.get_xticklabels()] == ["1x\n(64)", "2x\n(128)", "4x\n(256)"]
    legend = [t.get_text() for t in mlm.get_legend().get_texts()]
    assert any(text.startswith("standard") and "n/a at 2x, 4x" in text for text in legend)
    standard, rope = mlm.get_lines()[0], mlm.get_lines()[1]
    assert np.isnan(standard.get_ydata()[1:]).all() and np.isfinite(standard.get_ydata()[0])
    assert rope.get_ydata() == pytest.approx([3.2, 3.4, 3.8])


def test_probe_figure_plots_each_objective_against_tokens_and_marks_the_overtaking(monkeypatch):
    from mlmclm.analysis.overtaking import analyze_overtaking

    drawn = _capture(monkeypatch)
    runs = run_records(with_length_and_probe_curves())
    overtaking = analyze_overtaking(runs, ["standard", "rope", "alibi"], confidence_level=0.95, n_resamples=200,
                                    seed=0)
    length_and_learning.plot_probe_curves(runs, ["mlm", "clm"], ["standard", "rope", "alibi"], overtaking,
                                          Path("unused.png"))
    axes = drawn[0].axes
    assert len(axes) == 3  # one task x three mechanisms
    first = axes[0]
    assert first.get_xlabel() == "training tokens seen" and "probe" in first.get_ylabel()
    mlm = next(line for line in first.get_lines() if line.get_label().startswith("MLM"))
    assert list(mlm.get_xdata()) == [s * 1000 for s in STEPS]
    assert mlm.get_ydata() == pytest.approx([0.5 + 0.004 * s for s in STEPS])
    marker = next(line for line in first.get_lines() if "ahead from step 50" in line.get_label())
    assert marker.get_xdata()[0] == pytest.approx(50_000)
