"""The whole pipeline through the command line: train with probes, analyze again, export, load.

One tiny grid (2 objectives x 1 mechanism x 3 seeds, with a user probe task) serves every check here.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch
import yaml

import mlmclm
from mlmclm.cli import main

pytestmark = pytest.mark.slow
REPORT_FILES = (
    "summary.json", "statistical_analysis.json", "report.md", "mlm_vs_clm_comparison.png",
    "attention_heatmap.png", "training_curves.png", "statistical_analysis.png",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    probe_file = root / "sentiment.jsonl"
    rows = [{"text": f"this is {'good' if i % 2 else 'bad'} text number {i}", "label": i % 2} for i in range(80)]
    probe_file.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    config = {
        "experiment_name": "e2e",
        "device": "cpu",
        "data": {"max_documents": 2500, "vocab_size": 400, "max_seq_length": 32,
                 "cache_dir": str(root / "cache")},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                  "exposb_num_buckets": 8, "exposb_max_distance": 32},
        "training": {"max_steps": 6, "batch_size": 8, "learning_rate": 1e-3, "eval_interval": 3,
                     "eval_max_batches": 2},
        "statistics": {"bootstrap_resamples": 200},
        "probes": {"examples_per_task": 60, "word_content_words": 3, "tasks": ["bigram_shift", "word_content"]},
    }
    config_path = root / "e2e.yaml"
    config_path.write_text(yaml.safe_dump(config))
    output = root / "out"
    code = main([
        "train", "--config", str(config_path), "--objectives", "both", "--attention", "standard",
        "--output-dir", str(output), "--probe-data", str(probe_file), "--quiet",
    ])
    assert code == 0
    return output


def test_training_writes_raw_results_models_report_and_plots(trained):
    raw = json.loads((trained / "e2e_raw_results.json").read_text())
    assert [run["status"] for run in raw["runs"]] == ["completed"] * 6
    assert "--probe-data" in raw["command"]
    for name in REPORT_FILES:
        assert (trained / f"e2e_{name}").stat().st_size > 0, name


def test_probe_metrics_reach_raw_results_and_statistics(trained):
    raw = json.loads((trained / "e2e_raw_results.json").read_text())
    for run in raw["runs"]:
        for task in ("bigram_shift", "word_content", "sentiment"):
            assert 0.0 <= run["metrics"][f"probe/{task}/accuracy"] <= 1.0
            assert 0.0 <= run["metrics"][f"probe/{task}/f1"] <= 1.0
    analysis = json.loads((trained / "e2e_statistical_analysis.json").read_text())
    records = analysis["comparisons"]
    metrics = {record["metric"] for record in records}
    assert {"probe_accuracy_gain", "val_loss", "probe/bigram_shift/accuracy", "probe/sentiment/accuracy"} <= metrics
    assert analysis["family_roles"]["mlm_vs_clm/probe_accuracy_gain"] == "primary"
    for run in raw["runs"]:  # the validity baselines and the per-item record of every probed run
        assert 0.0 <= run["metrics"]["probe/bigram_shift/random_init_accuracy"] <= 1.0
        assert "probe/word_content/selectivity" in run["metrics"]
        assert len(run["probe_items"]["sentiment"]) == raw["probe_tasks"]["sentiment"]["test_examples"]
    probe = next(r for r in records if r["metric"] == "probe/sentiment/accuracy")
    assert probe["paired"] is True and probe["n_a"] == probe["n_b"] == 3
    assert "probe" in (trained / "e2e_report.md").read_text()
    assert set(raw["probe_tasks"]) == {"bigram_shift", "word_content", "sentiment"}
    for objective in ("mlm", "clm"):  # the baseline depends on the data only: one value per objective
        runs = [run for run in raw["runs"] if run["objective"] == objective]
        baselines = {run["metrics"]["val_majority_token_accuracy"] for run in runs}
        assert len(baselines) == 1 and 0.0 < baselines.pop() < 1.0
    assert raw["probe_tasks"]["bigram_shift"]["chance_accuracy"] == pytest.approx(0.5)  # balanced, 2 labels


def test_a_tiny_short_experiment_reports_itself_as_a_smoke_test(trained):
    report = (trained / "e2e_report.md").read_text()
    assert report.index("Smoke test: these numbers support no conclusion") < report.index("## Setup")


def test_analyze_reproduces_the_files_written_by_training(trained, tmp_path):
    code = main(["analyze", str(trained / "e2e_raw_results.json"), "--output-dir", str(tmp_path), "--quiet"])
    assert code == 0
    for name in ("summary.json", "statistical_analysis.json"):
        again = json.loads((tmp_path / f"e2e_reanalysis_{name}").read_text())
        original = json.loads((trained / f"e2e_{name}").read_text())
        # the analysis log grows by design: one more entry, for this analysis, and no seed is new
        log, earlier = again.pop("analysis_log", None), original.pop("analysis_log", None)
        assert again == original
        if log is not None:
            assert log[0] == earlier[0] and len(log) > len(earlier) and not log[-1]["optional_stopping"]
    # Same analysis; only the figure names, the log and the lines saying how the report was made differ.
    again = (tmp_path / "e2e_reanalysis_report.md").read_text().replace("e2e_reanalysis_", "e2e_")
    original = (trained / "e2e_report.md").read_text()
    def analysed(report: str) -> str:
        return report.split("## Setup")[1].split("## Analysis log")[0]

    assert analysed(again) == analysed(original)
    assert "mlmclm analyze" in again.split("## Reproduce")[1]


def test_analyze_with_other_settings_and_bad_input(trained, tmp_path, capsys):
    code = main(["analyze", str(trained / "e2e_raw_results.json"), "--output-dir", str(tmp_path),
                 "--correction", "bonferroni", "--metric", "test_loss", "--quiet"])
    assert code == 0
    analysis = json.loads((tmp_path / "e2e_reanalysis_statistical_analysis.json").read_text())
    records = analysis["comparisons"]
    assert {record["metric"] for record in records} == {"test_loss"}
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "missing.json")]) == 2
    assert main(["analyze", str(trained / "e2e_raw_results.json"), "--metric", "no_such_metric"]) == 2
    assert main(["analyze", str(trained / "e2e_raw_results.json"), "--correction", "sidak"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)


def test_a_trained_run_loads_and_exports_to_transformers(trained, tmp_path, capfd):
    transformers = pytest.importorskip("transformers", reason="the [hf] extra is not installed")
    run_dir = trained / "experiments" / "standard_mlm_run0"
    model = mlmclm.load_model(run_dir)
    assert model.config["objective"] == "mlm" and model.config["attention"] == "standard"
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    ours = model(ids)
    capfd.readouterr()
    assert main(["export", str(run_dir), "--hf", str(tmp_path / "hf")]) == 0
    assert capfd.readouterr().err == "", "transformers' progress bar for one small file is noise"
    assert transformers.utils.logging.is_progress_bar_enabled(), "the user's progress-bar setting is restored"
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        assert torch.allclose(theirs(input_ids=ids).logits, ours, atol=1e-4)
    assert main(["export", str(trained / "experiments" / "standard_clm_run0"), "--hf", str(tmp_path / "x")]) == 2


def test_rerunning_the_same_command_trains_nothing_new(trained):
    raw_path = trained / "e2e_raw_results.json"
    before = json.loads(raw_path.read_text())["runs"]
    command = shlex.split(json.loads(raw_path.read_text())["command"])[1:]  # drop the program name
    assert main([*command, "--quiet"]) == 0
    assert json.loads(raw_path.read_text())["runs"] == before


def test_the_report_names_the_budget_data_and_command(trained):
    report = (trained / "e2e_report.md").read_text()
    raw = json.loads((trained / "e2e_raw_results.json").read_text())
    assert raw["data"]["corpus_sha256"] in report
    first = raw["invocations"][0]
    assert first["runs_added"] and first["command"] + "\n" in report  # the command that trained the runs
    if raw["command"] != first["command"]:  # a later rerun (test above) added nothing: not a way to reproduce
        assert raw["command"] + "\n" not in report
    assert "optimizer_steps" in report
    assert Path(raw["runs"][0]["model_dir"]).is_dir()
