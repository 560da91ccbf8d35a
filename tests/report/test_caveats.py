"""The report says when its numbers cannot support conclusions: smoke tests, models that learned nothing,
differences at floating-point noise, and better/worse read from the metric's direction."""

from __future__ import annotations

import pytest

from mlmclm.analysis import analyze
from mlmclm.components import resolve_config
from mlmclm.config import QUICK_TEST_CONFIG_PATH, StatisticsConfig, load_yaml
from mlmclm.report.caveats import constant_metrics, is_noise_level, smoke_test_reasons, unigram_level_objectives
from mlmclm.report.markdown import render_report
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=200)
FIGURES = {
    kind: f"{kind}.png" for kind in ("mlm_vs_clm_plot", "attention_heatmap", "training_curves", "effect_size_plot")
}
BANNER = "Smoke test: these numbers support no conclusion"


def _report(raw, metrics=("val_accuracy",)) -> str:
    return render_report(analyze(raw, FAST, metrics=list(metrics)), raw, "synthetic", FIGURES)


def _quick_test_raw():
    raw = make_raw_results()
    raw["config"] = {**raw["config"], **resolve_config(quick_test=True).to_dict()}
    raw["budget"] = {**raw["budget"], "optimizer_steps": 80}
    return raw


def test_quick_test_preset_marks_itself_as_a_smoke_test():
    assert load_yaml(QUICK_TEST_CONFIG_PATH)["smoke_test"] is True
    assert resolve_config(quick_test=True).smoke_test is True
    assert resolve_config().smoke_test is False


def test_quick_test_report_opens_with_the_smoke_test_banner():
    report = _report(_quick_test_raw())
    assert BANNER in report
    assert report.index(BANNER) < report.index("## Setup") and report.index(BANNER) < report.index("Created from")
    reasons = smoke_test_reasons(_quick_test_raw())
    assert any("smoke_test: true" in reason for reason in reasons)
    assert any("hidden size 64" in reason for reason in reasons)
    assert any("80 optimizer steps" in reason for reason in reasons)


def test_tiny_model_or_short_budget_alone_triggers_the_banner():
    tiny = make_raw_results()
    tiny["config"] = {**tiny["config"], "model": {"hidden_size": 32, "num_layers": 1}}
    short = make_raw_results()
    short["budget"] = {**short["budget"], "optimizer_steps": 200}
    assert BANNER in _report(tiny) and BANNER in _report(short)
    assert smoke_test_reasons(make_raw_results()) == ()
    assert BANNER not in _report(make_raw_results())  # 1000 steps, no tiny model: a real experiment


def _constant_mlm_accuracy_raw():
    raw = make_raw_results()
    for run in raw["runs"]:
        if run["objective"] == "mlm":
            # Identical predictions in every run; the sum order differs, as it does on real hardware.
            run["metrics"]["val_accuracy"] = 0.1 + 0.2 if (run["attention"], run["seed"]) == ("rope", 43) else 0.3
    return raw


def test_identical_mlm_accuracy_in_every_run_is_reported_as_nothing_learned():
    raw = _constant_mlm_accuracy_raw()
    analysis = analyze(raw, FAST, metrics=["val_loss", "val_accuracy"])
    found = constant_metrics(analysis)
    assert [(c.metric, c.objective, c.n_runs, c.n_conditions) for c in found] == [("val_accuracy", "mlm", 9, 3)]
    report = render_report(analysis, raw, "synthetic", FIGURES)
    assert "MLM `val_accuracy` is identical in all 9" in report
    assert "learned nothing beyond token frequencies" in report
    assert "learned nothing" not in _report(make_raw_results())  # real spread: no warning


def test_noise_level_differences_are_shown_as_no_difference():
    raw = _constant_mlm_accuracy_raw()
    analysis = analyze(raw, FAST, metrics=["val_accuracy"])
    within = [c for c in analysis.comparisons if c.family.name == "attention_within_mlm/val_accuracy"]
    noisy = [c for c in within if c.mean_difference != 0]
    assert noisy and all(is_noise_level(c) for c in within)  # e.g. a − b = 1.8e-17 from summation order
    assert not any(is_noise_level(c) for c in analysis.comparisons if c.family.objective == "clm")
    assert not any(c.test.significant for c in within)  # the JSON's significant agrees with the report
    report = render_report(analysis, raw, "synthetic", FIGURES)
    rows = [line for line in report.splitlines() if line.startswith("| `") and "_mlm` vs `" in line]
    mlm_rows = [row for row in rows if row.count("_mlm`") == 2]
    assert len(mlm_rows) == 3 and any(row.split(" | ")[4].startswith("sign-flip permutation") for row in mlm_rows)
    for row in mlm_rows:
        cells = row.split(" | ")
        assert cells[3] == "0 (no difference)", row
        assert cells[4] == "none" or cells[4].endswith(" (no difference)"), row  # none: all values equal
        assert "e-1" not in row and "**" not in row and "better" not in row and "void" in cells[-1]
        assert cells[8] == cells[9] == cells[10] == "—"  # d, g and r of rounding over rounding
        assert cells[11].endswith("/ n/a")  # no runs can detect a difference that is not there
    assert "No difference: in 3 of" in report
    summary_rows = report.split("## Per-condition summaries")[1].splitlines()
    (rope,) = [row for row in summary_rows if row.startswith("| `rope_mlm` |")]
    assert rope.split(" | ")[3] == "0"  # SD 2.6e-17 around 0.3 is no spread


def test_forest_plot_draws_noise_level_comparisons_as_no_difference(monkeypatch):
    from pathlib import Path

    from mlmclm.report import plots

    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure) or path)
    settings = StatisticsConfig(bootstrap_resamples=200, primary_metric="val_accuracy")
    plots.plot_effect_sizes(analyze(_constant_mlm_accuracy_raw(), settings, metrics=["val_accuracy"]), Path("x"))
    axes = drawn[0].axes[0]
    crosses = [line for line in axes.get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 3 and all(list(line.get_xdata()) == [0.0] for line in crosses)
    labels = [tick.get_text() for tick in axes.get_yticklabels()]
    assert sum(label.endswith("_mlm") and "_mlm −" in label for label in labels) == 3  # all MLM pairs shown


SIX_SEEDS = (42, 43, 44, 45, 46, 47)


def _worse_first_raw(metric: str, shift: float):
    """alibi (group a, listed first) shifted to the worse side of ``metric`` by ``shift``."""
    # six seeds: an exact sign-flip test cannot reach p < 0.05 with three (its smallest p is 0.25)
    raw = make_raw_results(mechanisms=("alibi", "rope"), objectives=("mlm",), failed_run=False, seeds=SIX_SEEDS)
    for run in raw["runs"]:
        if run["attention"] == "alibi":
            run["metrics"][metric] += shift
    return raw


@pytest.mark.parametrize(
    ("metric", "shift", "words"),
    [("val_loss", 0.5, "higher, and lower is better"), ("val_accuracy", -0.2, "lower, and higher is better")],
)
def test_key_results_say_better_or_worse_from_the_metric_direction(metric, shift, words):
    key = _report(_worse_first_raw(metric, shift), metrics=(metric,)).split("## Key results")[1].split("\n## ")[0]
    assert f"`alibi_mlm` worse than `rope_mlm` on `{metric}` ({words};" in key
    assert "higher than" not in key and "lower than" not in key
    key = _report(_worse_first_raw(metric, -shift), metrics=(metric,)).split("## Key results")[1].split("\n## ")[0]
    assert f"`alibi_mlm` better than `rope_mlm` on `{metric}`" in key


def test_accuracy_no_better_than_the_majority_token_is_reported_as_nothing_learned():
    raw = make_raw_results()
    for run in raw["runs"]:
        if run["status"] == "completed":
            gap = 0.01 if run["objective"] == "mlm" else -0.01  # MLM runs sit below, CLM runs above the baseline
            run["metrics"]["val_majority_token_accuracy"] = run["metrics"]["val_accuracy"] + gap
    levels = unigram_level_objectives(raw)
    assert [(level.objective, level.n_runs) for level in levels] == [("mlm", 9)]
    report = _report(raw)
    assert "No MLM run beats predicting its most frequent token" in report
    assert "No CLM run" not in report
    assert "beats predicting" not in _report(make_raw_results())  # no baseline recorded: no claim


def test_a_genuine_tie_of_means_shows_zero_difference_with_its_interval_not_void():
    raw = make_raw_results(objectives=("mlm",), failed_run=False)
    correct = {"standard": (14, 15, 13), "rope": (15, 13, 14), "alibi": (20, 21, 22)}  # of 36 probe examples
    for run in raw["runs"]:
        run["metrics"]["val_accuracy"] = correct[run["attention"]][run["run_index"]] / 36
    analysis = analyze(raw, FAST, metrics=["val_accuracy"])
    (tie,) = [c for c in analysis.comparisons if (c.group_a, c.group_b) == ("standard_mlm", "rope_mlm")]
    assert is_noise_level(tie)  # runs differ, means equal
    report = render_report(analysis, raw, "synthetic", FIGURES)
    (row,) = [line for line in report.splitlines() if line.startswith("| `standard_mlm` vs `rope_mlm`")]
    cells = row.split(" | ")
    assert cells[3].startswith("0 [") and cells[8] == "0" and cells[9].startswith("0 [")  # a − b, d, g
    assert "equal means" in cells[-1] and "void" not in row and "` better" not in row
