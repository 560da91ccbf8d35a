"""The sixth figure and its report lines: one panel per mechanism, conditions below the runs rule named."""

from __future__ import annotations

import dataclasses

import pytest

from mlmclm.analysis import analyze
from mlmclm.config import StatisticsConfig
from mlmclm.report.aggregate_section import probe_aggregate_section
from mlmclm.report.performance_profile import plot_performance_profiles
from tests.analysis.synthetic_results import make_raw_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def analysis():
    return analyze(make_raw_results(), StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])


def test_profile_figure_is_a_png_with_a_panel_per_mechanism(analysis, tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(
        "mlmclm.report.performance_profile._save", lambda figure, path: drawn.setdefault("figure", figure) and path
    )
    plot_performance_profiles(analysis, tmp_path / "pp.png")
    titles = [axes.get_title() for axes in drawn["figure"].axes]
    assert titles == ["standard", "rope", "alibi"]
    labels = [text.get_text() for text in drawn["figure"].axes[2].get_legend().get_texts()]
    assert labels == ["MLM (3 runs)"]  # alibi CLM has 2 runs: below the rule
    monkeypatch.undo()
    assert plot_performance_profiles(analysis, tmp_path / "pp.png").read_bytes().startswith(PNG_MAGIC)


def test_section_names_the_rule_the_conditions_left_out_and_the_figure(analysis):
    text = "\n".join(probe_aggregate_section(analysis, {"performance_profile": "pp.png"}))
    assert "≥ 3 runs" in text and "Too few runs for a profile: `alibi_clm`." in text
    assert "![Performance profiles](pp.png)" in text


def test_no_profiles_give_an_empty_panel_and_say_so(analysis, tmp_path):
    empty = dataclasses.replace(analysis, probe_profiles=())
    assert plot_performance_profiles(empty, tmp_path / "pp.png").read_bytes().startswith(PNG_MAGIC)
    assert "No condition has enough runs for a profile." in "\n".join(probe_aggregate_section(empty, {}))
