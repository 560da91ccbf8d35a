"""The fifth figure and the ranking section: cliques from the post-hoc tests, a PNG, the Friedman sentence."""

from __future__ import annotations

from mlmclm.analysis import analyze
from mlmclm.analysis.ranking import MechanismRanking, PairwiseRankTest
from mlmclm.config import StatisticsConfig
from mlmclm.report.critical_difference import not_separated_groups, plot_critical_difference
from mlmclm.report.ranking_section import ranking_section
from tests.analysis.synthetic_results import make_raw_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _ranking(significant_pairs: set[frozenset[str]], omnibus: bool = True) -> MechanismRanking:
    mechanisms = ("a", "b", "c", "d")
    pairs = [(x, y) for i, x in enumerate(mechanisms) for y in mechanisms[i + 1 :]]
    posthoc = tuple(
        PairwiseRankTest(x, y, 0.0, 0.01, 0.03, frozenset((x, y)) in significant_pairs) for x, y in pairs
    )
    return MechanismRanking(
        "val_loss", "mlm", "lower", "seed", 10, mechanisms, (1.2, 2.0, 2.9, 3.9), "Friedman", 20.0, 0.001,
        omnibus, 1.48, posthoc, 0.05,
    )


def test_groups_join_rank_neighbours_that_no_post_hoc_test_separates():
    separated = {frozenset(p) for p in [("a", "c"), ("a", "d"), ("b", "d")]}
    assert not_separated_groups(_ranking(separated)) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert not_separated_groups(_ranking(set())) == [("a", "b", "c", "d")]


def test_critical_difference_figure_and_section_are_written(tmp_path):
    raw = make_raw_results(seeds=tuple(range(42, 50)), failed_run=False)
    analysis = analyze(raw, StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])
    path = plot_critical_difference(analysis, tmp_path / "cd.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    text = "\n".join(ranking_section(analysis, {"critical_difference": "cd.png"}))
    assert "Friedman χ²" in text and "![Critical-difference diagram](cd.png)" in text
    assert "Post-hoc (Wilcoxon signed-rank, Holm)" in text  # 8 seeds separate the synthetic mechanisms


def test_two_mechanisms_draw_an_explanation_instead_of_a_diagram(tmp_path):
    raw = make_raw_results(mechanisms=("rope", "alibi"))
    analysis = analyze(raw, StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])
    assert analysis.rankings == () and ranking_section(analysis, {}) == []
    assert plot_critical_difference(analysis, tmp_path / "cd.png").read_bytes().startswith(PNG_MAGIC)
