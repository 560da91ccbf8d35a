"""A scaled-down A/A through the real path: tiny grids trained by the ordinary runner, judged by the ordinary
analysis. One condition under two labels on disjoint seeds must show no significant difference; a rerun
resumes (trains nothing again) and reaches the same verdict."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mlmclm.validate import aa
from mlmclm.validate.records import PRESETS
from mlmclm.validate.report import JSON_NAME, REPORT_NAME, write_validation
from mlmclm.validate.runner import run_validation

# n = 4 per label: the exact two-sample permutation test can reach p = 2/70 < 0.05, so "no difference" is a
# finding, not a foregone conclusion.
TINY = dataclasses.replace(
    PRESETS["cpu"], aa_repetitions=1, aa_labels=2, aa_runs=4, tiny_max_steps=8,
    tiny_overrides={"data": {"max_documents": 300, "vocab_size": 500}, "model": {"hidden_size": 32},
                    "probes": {"examples_per_task": 60, "tasks": ["bigram_shift", "sentence_length"]},
                    "training": {"eval_interval": 4}},
)


@pytest.mark.slow
def test_tiny_aa_through_the_grid_finds_no_difference_and_resumes(tmp_path: Path):
    messages: list[str] = []
    results = run_validation(TINY, [aa], tmp_path, "pytest", say=messages.append)
    finding = results[0].findings[0]
    assert finding.numbers["false_positives"] == 0, finding.concluded
    assert results[0].passed
    comparison = finding.numbers["first_comparison"]
    assert comparison["n"] == [4, 4] and not comparison["paired"]  # disjoint seeds: compared unpaired
    raw = json.loads((tmp_path / "aa" / "aa_raw_results.json").read_text())
    assert sorted(run["seed"] for run in raw["runs"]) == list(range(1000, 1008))

    again = run_validation(TINY, [aa], tmp_path, "pytest", say=messages.append)
    raw_again = json.loads((tmp_path / "aa" / "aa_raw_results.json").read_text())
    assert raw_again["invocations"][-1]["runs_added"] == []  # resumed: every run was already finished
    assert again[0].findings[0].numbers == finding.numbers

    written = write_validation(results, TINY, tmp_path, "pytest", {"device": "cpu"})
    assert written["report"].name == REPORT_NAME and "PASS" in written["report"].read_text()
    assert json.loads((tmp_path / JSON_NAME).read_text())["passed"] is True
