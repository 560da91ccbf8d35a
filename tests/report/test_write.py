"""write_analysis end to end on fabricated raw results: files, strict JSON, schema, report wording, plots."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import jsonschema
import pytest

from mlmclm.analysis.compare import CROSS_OBJECTIVE_CAVEAT
from mlmclm.config import StatisticsConfig
from mlmclm.report import write_analysis
from tests.analysis.synthetic_results import MECHANISMS, make_raw_results

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "statistical_analysis.schema.json"
FAST = StatisticsConfig(bootstrap_resamples=500)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _strict_json(path: Path):
    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant} in {path}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return write_analysis(make_raw_results(), FAST, tmp_path_factory.mktemp("out"), "synthetic")


def test_all_files_are_written_with_the_experiment_prefix(written):
    names = sorted(path.name for path in written.values())
    assert names == sorted(
        f"synthetic_{suffix}"
        for suffix in (
            "summary.json",
            "statistical_analysis.json",
            "report.md",
            "mlm_vs_clm_comparison.png",
            "attention_heatmap.png",
            "training_curves.png",
            "statistical_analysis.png",
            "critical_difference.png",
            "performance_profile.png",
        )
    )
    for path in written.values():
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000
    assert not list(written["report"].parent.glob(".*tmp"))  # atomic writes leave no temp files


def test_analysis_json_is_strict_and_validates_against_the_schema(written):
    document = _strict_json(written["statistical_analysis"])
    jsonschema.validate(document, json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert len(document["comparisons"]) == 54  # 6 metrics x (3 cross-objective + 2 x 3 within)


def test_summary_json_reports_exclusions(written):
    summary = _strict_json(written["summary"])
    conditions = {c["condition"]: c for c in summary["metrics"]["val_loss"]["conditions"]}
    assert conditions["alibi_clm"]["n"] == 2
    assert conditions["alibi_clm"]["excluded_runs"][0]["run_id"] == "alibi_clm_run2"
    assert {"mean", "std", "median", "min", "max", "ci"} <= set(conditions["rope_mlm"])


def test_report_words_caveats_command_notes_and_figures(written):
    report = written["report"].read_text(encoding="utf-8")
    raw = make_raw_results()
    assert raw["command"] in report
    assert raw["data"]["notes"][0] in report
    assert CROSS_OBJECTIVE_CAVEAT in report
    assert "alibi_clm_run2" in report and "CUDA out of memory" in report
    assert "cannot reach significance" in report and "≥ 4 runs per condition needed" in report
    for suffix in ("mlm_vs_clm_comparison", "attention_heatmap", "training_curves", "statistical_analysis"):
        assert f"](synthetic_{suffix}.png)" in report  # relative paths
    # Like-for-like probes lead the MLM-vs-CLM section; the loss comparison follows with its caveat.
    section = report[report.index("## MLM vs CLM") :]
    assert section.index("downstream probes") < section.index("Pre-training metrics (not like for like)")


def _table_rows(section: str) -> list[str]:
    return [line for line in section.splitlines() if line.startswith("| `")]


def test_pre_training_metrics_are_not_ranked_across_objectives(written):
    report = written["report"].read_text(encoding="utf-8")
    section = report[report.index("Pre-training metrics") : report.index("## Attention mechanisms")]
    assert "better" not in section.replace("lower is better", "").replace("higher is better", "")
    rows = _table_rows(section)
    assert len(rows) == 6  # val_loss and val_accuracy x 3 mechanisms
    assert all("† different tasks: not a ranking" in row for row in rows)


def test_report_leads_with_key_results_and_tabulates_every_comparison(written):
    report = written["report"].read_text(encoding="utf-8")
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings.index("## Key results") < headings.index("## MLM vs CLM") < headings.index("## Environment")
    assert len(_table_rows(report[report.index("## MLM vs CLM") : report.index("## Training curves")])) == 54
    # One legend instead of the same sentences repeated for every comparison.
    assert report.count("Not significant is not evidence of no difference") == 1
    assert "by the power of the test used (simulated sign-flip permutation test" in report  # not t-test power
    assert len(report.splitlines()) < 450  # primary endpoint, ranking, aggregates and analysis log included


def test_only_significant_like_for_like_rows_name_a_better_group(tmp_path):
    # 8 seeds: with 3 pairs the exact sign-flip test cannot go below p = 0.25, so nothing could be significant.
    raw = make_raw_results(seeds=tuple(range(42, 50)), failed_run=False)
    report = write_analysis(raw, FAST, tmp_path, "synthetic")["report"].read_text(encoding="utf-8")
    rows = [row.split(" | ") for row in _table_rows(report)]
    better = [cells for cells in rows if "better" in cells[-1]]
    assert better  # the synthetic MLM advantage on probes is large enough to be significant
    assert all(cells[7].startswith("**") for cells in better)  # adjusted p in bold = significant


def test_same_seed_writes_identical_json(tmp_path):
    first = write_analysis(make_raw_results(), FAST, tmp_path / "a", "synthetic")
    second = write_analysis(make_raw_results(), FAST, tmp_path / "b", "synthetic")
    for kind in ("summary", "statistical_analysis", "report"):
        assert first[kind].read_bytes() == second[kind].read_bytes()


def _edge(tmp_path: Path, raw: dict) -> tuple[dict, str]:
    """Write the analysis of a degenerate design; its schema-valid strict JSON and its report."""
    written = write_analysis(raw, FAST, tmp_path, "edge")
    assert all(path.is_file() for path in written.values())
    document = _strict_json(written["statistical_analysis"])
    jsonschema.validate(document, json.loads(SCHEMA.read_text(encoding="utf-8")))
    return document, written["report"].read_text(encoding="utf-8")


def test_one_objective_has_only_mechanism_families_and_the_report_says_why(tmp_path):
    document, report = _edge(tmp_path, make_raw_results(objectives=("mlm",), failed_run=False))
    pairs = list(itertools.combinations(MECHANISMS, 2))
    expected = [
        (f"attention_within_mlm/{metric}", f"{a}_mlm", f"{b}_mlm") for metric in document["metrics"] for a, b in pairs
    ]
    assert [(c["family"], c["group_a"], c["group_b"]) for c in document["comparisons"]] == expected
    assert all(c["paired"] and c["n_a"] == 3 for c in document["comparisons"])
    assert "Only one objective has runs, so there is no cross-objective comparison." in report


def test_one_mechanism_has_only_the_cross_objective_family_and_the_report_says_why(tmp_path):
    # seeds 1, 2 and rope_clm_run1 failed: 2 MLM runs against 1 CLM run, so the runs do not pair
    document, report = _edge(tmp_path, make_raw_results(mechanisms=("rope",), seeds=(1, 2)))
    assert [c["family"] for c in document["comparisons"]] == [f"mlm_vs_clm/{m}" for m in document["metrics"]]
    for c in document["comparisons"]:
        assert (c["group_a"], c["group_b"], c["n_a"], c["n_b"], c["paired"]) == ("rope_mlm", "rope_clm", 2, 1, False)
        # two-sample permutation over the 3 places of the lone CLM run: p ≥ 2/3, so never significant
        assert c["test"] == "two-sample permutation" and c["p_value"] >= 2 / 3 - 1e-12
        assert c["min_achievable_p"] == pytest.approx(2 / 3) and not c["can_reach_significance"]
    assert "Fewer than two mechanisms per objective have runs, so there is nothing to compare." in report


def test_one_seed_gives_p_one_per_pair_and_no_test_without_runs(tmp_path):
    # one seed, and alibi_clm_run0 failed: one pair everywhere except where alibi_clm has no run at all
    document, _ = _edge(tmp_path, make_raw_results(seeds=(7,)))
    assert len(document["comparisons"]) == len(document["metrics"]) * 9  # 3 cross + 2 x 3 within
    for c in document["comparisons"]:
        empty = "alibi_clm" in (c["group_a"], c["group_b"])
        assert c["p_value"] == (None if empty else 1.0), c  # one pair: both sign patterns equally extreme
        assert c["test"] == ("none" if empty else "sign-flip permutation") and not c["significant"]


def test_missing_curves_still_plot(tmp_path):
    raw = make_raw_results()
    for run in raw["runs"]:
        run["curves"] = {}
    written = write_analysis(raw, FAST, tmp_path, "nocurves")
    assert written["training_curves"].read_bytes()[:8] == PNG_MAGIC


def test_an_analysis_that_fails_before_its_report_is_not_logged(tmp_path, monkeypatch):
    """The analysis log is written last: a failure half-way leaves the log as it was, so it never lists an
    analysis whose report does not exist."""
    import mlmclm.report.write as write

    log = tmp_path / "synthetic_analysis_log.json"
    raw = make_raw_results(mechanisms=("standard", "rope"), failed_run=False)
    write_analysis(raw, FAST, tmp_path, "synthetic", metrics=["val_loss"], log_path=log)
    before = log.read_bytes()

    def fail(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(write, "render_report", fail)
    with pytest.raises(RuntimeError, match="render failed"):
        write_analysis(raw, FAST, tmp_path / "again", "synthetic", metrics=["val_loss"], log_path=log)
    assert log.read_bytes() == before
    assert len(json.loads(before)["entries"]) == 1


def test_a_failure_half_way_leaves_the_previous_outputs_and_no_new_ones(tmp_path, monkeypatch):
    """All or nothing: a figure that fails after the JSON documents were written leaves no new file and the
    previous report untouched (before, the JSON and the first PNGs stayed beside an old report)."""
    from mlmclm.report import plots

    write_analysis(make_raw_results(), FAST, tmp_path, "synthetic")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("a plotting bug")

    monkeypatch.setattr(plots, "plot_effect_sizes", broken)
    changed = make_raw_results(seed=1)  # other numbers: a half-written set would differ from the old one
    with pytest.raises(RuntimeError, match="a plotting bug"):
        write_analysis(changed, FAST, tmp_path, "synthetic")
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    assert not [path for path in tmp_path.parent.iterdir() if path.name.startswith(f".{tmp_path.name}.")]
