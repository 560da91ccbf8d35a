"""The invocation log: every command that added runs is recorded, and the report reproduces all of them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mlmclm.components import resolve_config
from mlmclm.config import StatisticsConfig
from mlmclm.grid.invocations import carried_invocations, contributing_invocations
from mlmclm.grid.runner import run_grid
from mlmclm.report import write_analysis
from mlmclm.report.markdown import reproduce_lines
from tests.analysis.synthetic_results import make_raw_results

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "raw_results.schema.json").read_text())


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")  # one tokenizer and token cache for the module


def settings(tmp_path: Path, cache: Path, **extra) -> dict:
    return {
        "experiment_name": "tiny",
        "output_dir": str(tmp_path / "out"),
        "objectives": ["mlm"],
        "attention": ["standard", "rope"],
        "num_runs": 1,
        "device": "cpu",
        "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32, "sliding_window_stride": 16,
                 "cache_dir": str(cache)},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32},
        "training": {"max_steps": 4, "batch_size": 8, "eval_interval": 2, "eval_max_batches": 2},
        "probes": {"enabled": False},
        **extra,
    }


@pytest.mark.slow
def test_a_smaller_resumed_grid_does_not_hide_the_command_that_produced_the_runs(tmp_path, cache):
    run_grid(resolve_config(overrides=settings(tmp_path, cache)), "mlmclm train --big")
    smaller = settings(tmp_path, cache, attention=["standard"])
    raw_path = run_grid(resolve_config(overrides=smaller), "mlmclm train --small")
    raw = json.loads(raw_path.read_text())
    jsonschema.validate(raw, SCHEMA)
    assert [run["run_id"] for run in raw["runs"]] == ["standard_mlm_run0", "rope_mlm_run0"]
    assert raw["command"] == "mlmclm train --small"
    assert [(i["command"], i["runs_added"]) for i in raw["invocations"]] == [
        ("mlmclm train --big", ["standard_mlm_run0", "rope_mlm_run0"]),
        ("mlmclm train --small", []),
    ]
    lines = reproduce_lines(raw)
    assert "mlmclm train --big" in lines and "mlmclm train --small" not in "\n".join(lines)

    # a third invocation that does add a run: both contributing commands are shown, in order
    raw_path = run_grid(
        resolve_config(overrides=settings(tmp_path, cache, attention=["standard"], num_runs=2)), "mlmclm train --more"
    )
    raw = json.loads(raw_path.read_text())
    jsonschema.validate(raw, SCHEMA)
    assert raw["invocations"][-1]["runs_added"] == ["standard_mlm_run1"]
    text = "\n".join(reproduce_lines(raw))
    assert "produced by 2 commands" in text
    assert text.index("mlmclm train --big") < text.index("added standard_mlm_run1") < text.index("mlmclm train --more")
    assert "--small" not in text


def test_overwrite_starts_a_new_invocation_log(tmp_path, cache):
    run_grid(resolve_config(overrides=settings(tmp_path, cache, attention=["standard"])), "first")
    overwrite = settings(tmp_path, cache, attention=["standard"], resume=False)
    raw_path = run_grid(resolve_config(overrides=overwrite), "second")
    raw = json.loads(raw_path.read_text())
    assert [(i["command"], i["runs_added"]) for i in raw["invocations"]] == [("second", ["standard_mlm_run0"])]


def test_a_file_from_before_the_log_is_attributed_to_its_recorded_command():
    previous = {"command": "mlmclm train --old", "created": "2026-01-01T00:00:00+00:00"}
    kept = [{"run_id": "standard_mlm_run0"}, {"run_id": "rope_mlm_run0"}]
    assert carried_invocations(previous, kept) == [
        {"command": "mlmclm train --old", "started": "2026-01-01T00:00:00+00:00",
         "runs_added": ["standard_mlm_run0", "rope_mlm_run0"]}
    ]
    assert carried_invocations(previous, []) == []


def test_a_retried_run_counts_for_the_command_that_finished_it_and_repeats_merge():
    raw = {
        "runs": [{"run_id": "a"}, {"run_id": "b"}, {"run_id": "c"}],
        "invocations": [
            {"command": "x", "started": "t1", "runs_added": ["a", "b"]},  # b failed here
            {"command": "x", "started": "t2", "runs_added": []},  # interrupted rerun, nothing added
            {"command": "y", "started": "t3", "runs_added": ["b", "c"]},  # b retried and completed
        ],
    }
    assert contributing_invocations(raw) == [
        {"command": "x", "started": "t1", "runs": ["a"]},
        {"command": "y", "started": "t3", "runs": ["b", "c"]},
    ]


@pytest.mark.slow
def test_the_report_lists_every_contributing_command_at_the_top_and_in_reproduce(tmp_path):
    raw = make_raw_results()
    ids = [run["run_id"] for run in raw["runs"]]
    raw["invocations"] = [
        {"command": "mlmclm train --quick-test", "started": "2026-11-01T10:00:00+00:00", "runs_added": ids[:-3]},
        {"command": "mlmclm train --quick-test --num-runs 4", "started": "2026-11-01T11:00:00+00:00",
         "runs_added": ids[-3:]},
    ]
    raw["command"] = "mlmclm train --quick-test --objectives mlm"  # the last, smaller one
    report = write_analysis(raw, StatisticsConfig(bootstrap_resamples=200), tmp_path, "s")["report"].read_text()
    # the top: what precedes the setup (the primary-endpoint paragraph comes first, then the commands)
    top, reproduce = report[: report.index("## Setup")], report[report.index("## Reproduce") :]
    for part in (top, reproduce):
        assert "mlmclm train --quick-test\n" in part and "mlmclm train --quick-test --num-runs 4\n" in part
        assert "--objectives mlm" not in part
