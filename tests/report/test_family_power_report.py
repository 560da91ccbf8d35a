"""The report gives the MDE and runs at the family level α/m beside the per-comparison ones when m > 1, and says
which is which (docs/statistics.md, Power)."""

from __future__ import annotations

import dataclasses

import pytest

from mlmclm.analysis import analyze
from mlmclm.config import StatisticsConfig
from mlmclm.report.markdown import FIGURE_SUFFIXES, render_report
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=500)
RAW = make_raw_results(seeds=tuple(range(8)), failed_run=False)  # 8 pairs: an MDE exists at α and at α/3


def _report(settings: StatisticsConfig) -> tuple[str, list]:
    analysis = analyze(RAW, settings, metrics=["val_loss"])
    figures = {kind: f"{kind}.png" for kind in FIGURE_SUFFIXES}
    return render_report(analysis, RAW, "synthetic", figures), list(analysis.comparisons)


@pytest.fixture(scope="module")
def holm():
    return _report(FAST)


def test_each_row_shows_the_family_figures_beside_its_own(holm):
    report, comparisons = holm
    for c in comparisons:  # three comparisons per family: α/3
        own = f"{c.power.min_detectable_effect:.3g} / {c.power.runs_needed}"
        family = f"family {c.power.min_detectable_effect_family:.3g} / {c.power.runs_needed_family}"
        assert f"| {own}; {family} |" in report
    assert "*family* gives both at α/m" in report


def test_the_power_line_names_both_levels(holm):
    report, _ = holm
    line = next(line for line in report.splitlines() if line.startswith("- Power:"))
    assert "|d| = 1.21 for a comparison alone (α = 0.05)" in line
    assert "within its family, at α/m after Holm correction, |d| = 1.56 (plan runs on this)" in line


def test_without_correction_there_is_no_family_figure():
    report, comparisons = _report(dataclasses.replace(FAST, correction="none"))
    assert "; family " not in report and "within its family" not in report
    assert all(c.power.family_alpha == FAST.significance_level for c in comparisons)


def test_a_comparison_that_can_reach_alpha_but_not_its_family_level_says_so():
    """6 pairs: the sign-flip floor 2/64 = 0.031 is below α = 0.05 but above α/3 = 0.0167, so after Holm over
    three comparisons none can be significant; the row said nothing before."""
    raw = make_raw_results(seeds=tuple(range(6)), failed_run=False)
    analysis = analyze(raw, FAST, metrics=["val_loss"])
    report = render_report(analysis, raw, "synthetic", {kind: f"{kind}.png" for kind in FIGURE_SUFFIXES})
    paired = [c for c in analysis.comparisons if c.paired and c.test.p_value is not None]
    assert paired and all(c.test.can_reach_significance for c in paired)
    note = ("⚠ cannot reach significance after correction: the smallest possible p at this n is 0.0312, above "
            "α/m = 0.0167 (≥ 7 pairs within this family of comparisons)")
    assert report.count(note) == len(paired)


def test_below_the_floor_at_alpha_the_family_runs_are_named_too():
    raw = make_raw_results(seeds=tuple(range(3)), failed_run=False)
    analysis = analyze(raw, FAST, metrics=["val_loss"])
    report = render_report(analysis, raw, "synthetic", {kind: f"{kind}.png" for kind in FIGURE_SUFFIXES})
    assert "≥ 6 pairs needed (≥ 7 pairs within this family of comparisons)" in report
