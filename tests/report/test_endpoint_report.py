"""The report opens with the primary endpoint only; exploratory hits stay exploratory; every analysis is
logged, and seeds added after an analysis are flagged as optional stopping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlmclm.analysis import analyze
from mlmclm.cli import main
from mlmclm.config import StatisticsConfig
from mlmclm.report.markdown import FIGURE_SUFFIXES, render_report
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=200)


def _report(raw) -> str:
    return render_report(analyze(raw, FAST), raw, "synthetic", FIGURE_SUFFIXES)


def test_first_paragraph_answers_on_the_primary_endpoint_and_other_hits_are_exploratory():
    """Probe F1 differs hugely between objectives, the endpoint does not: the headline must not borrow the F1 hit."""
    raw = make_raw_results(baselines=True, failed_run=False, mechanisms=("standard", "rope"))
    for run in raw["runs"]:
        run["metrics"]["probe/bigram_shift/f1"] += 0.3 * (run["objective"] == "mlm")
    report = _report(raw)
    first_section = report.split("\n## ")[1]
    assert first_section.startswith("Primary endpoint")
    assert "`probe_accuracy_gain`" in first_section and "probe/bigram_shift/f1" not in first_section
    assert "Only this endpoint" in first_section
    assert "#### probe bigram shift f1 (macro F1) — higher is better (exploratory)" in report
    assert "(primary)" in report


def test_first_paragraph_carries_the_omnibus_ranking_of_the_primary_metric():
    """The Friedman ranking (ranking.py) may lead beside the endpoint; a planted mechanism effect shows in it."""
    seeds = (42, 43, 44, 45, 46, 47)
    raw = make_raw_results(baselines=True, failed_run=False, seeds=seeds)
    for run in raw["runs"]:
        for task in ("bigram_shift", "word_order", "sentence_length", "word_content", "coherence"):
            key = f"probe/{task}/accuracy"
            if key in run["metrics"]:
                run["metrics"][key] += {"standard": 0.2, "rope": 0.1}.get(run["attention"], 0.0)
    first_section = _report(raw).split("\n## ")[1]
    assert "Mechanisms under MLM (6 blocks): Friedman p = " in first_section
    assert "mechanisms differ" in first_section and "average ranks (1 = best) `standard` 1.00" in first_section


def test_without_probes_the_report_says_the_endpoint_is_unavailable_and_warns_about_val_loss():
    first_section = _report(make_raw_results()).split("\n## ")[1]
    assert "unavailable" in first_section and "falling back to `val_loss`" in first_section
    assert "not like for like" in first_section


def test_report_shows_probe_baselines_item_level_rows_and_band_separations():
    report = _report(make_raw_results(baselines=True, failed_run=False, mechanisms=("standard", "rope")))
    baselines = report.split("## Probe validity baselines")[1].split("\n## ")[0]
    assert "| `bigram_shift` | `standard_mlm` | 3 |" in baselines and "(n = 150)" in baselines
    assert "| sign-flip permutation over items |" in report.split("## Item-level analysis")[1]
    assert "- MLM `standard_mlm` vs `rope_mlm`:" in report


def _write(path: Path, raw) -> Path:
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


@pytest.mark.slow
def test_analysis_log_is_appended_by_every_analyze_and_new_seeds_are_optional_stopping(tmp_path, capsys):
    raw = make_raw_results(baselines=True, failed_run=False, mechanisms=("standard", "rope"), seeds=(42, 43, 44))
    raw["config"]["statistics"] = {"bootstrap_resamples": 200}
    path = _write(tmp_path / "synthetic_raw_results.json", raw)
    assert main(["analyze", str(path), "--quiet"]) == 0
    assert main(["analyze", str(path), "--correction", "bonferroni", "--quiet"]) == 0
    log = json.loads((tmp_path / "synthetic_analysis_log.json").read_text())["entries"]
    assert [entry["correction"] for entry in log] == ["holm", "bonferroni"]
    assert not any(entry["optional_stopping"] for entry in log)
    more = make_raw_results(baselines=True, failed_run=False, mechanisms=("standard", "rope"), seeds=(42, 43, 44, 45))
    more["config"]["statistics"] = {"bootstrap_resamples": 200}
    _write(path, more)
    assert main(["analyze", str(path), "--quiet"]) == 0
    document = json.loads((tmp_path / "synthetic_reanalysis_statistical_analysis.json").read_text())
    assert len(document["analysis_log"]) == 3
    assert document["analysis_log"][-1]["new_seeds"] == [45] and document["analysis_log"][-1]["optional_stopping"]
    report = (tmp_path / "synthetic_reanalysis_report.md").read_text()
    assert "Optional stopping" in report.split("\n## ")[1]
    assert report.count("⚠ new seeds 45") == 1


def test_analysis_json_with_endpoint_item_level_and_separations_validates_against_the_schema():
    import jsonschema

    from mlmclm.report.documents import analysis_document

    raw = make_raw_results(baselines=True, failed_run=False, mechanisms=("standard", "rope"))
    document = json.loads(json.dumps(analysis_document(analyze(raw, FAST), "synthetic")))
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "statistical_analysis.schema.json").read_text())
    jsonschema.validate(document, schema)
    assert document["family_roles"]["mlm_vs_clm/probe_accuracy_gain"] == "primary"
    assert document["headline_families"] == ["mlm_vs_clm/probe_accuracy_gain"]
    assert document["item_level"] and document["band_separations"]


def test_an_unreadable_analysis_log_is_a_one_line_user_error(tmp_path):
    from mlmclm.errors import UserError
    from mlmclm.report.write import read_analysis_log

    path = tmp_path / "x_analysis_log.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="cannot read the analysis log"):
        read_analysis_log(path)
    assert read_analysis_log(tmp_path / "missing.json") == []
