"""A grid with the hybrid objectives: run records that satisfy the schema and paired three-way comparisons."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mlmclm.analysis import analyze
from mlmclm.components import resolve_config
from mlmclm.config import StatisticsConfig
from mlmclm.grid.runner import run_grid
from tests.grid.test_grid import SCHEMA, shared_cache, tiny_settings  # noqa: F401


@pytest.mark.slow
def test_hybrid_runs_are_recorded_to_the_schema_and_paired_with_the_other_objectives(
    tmp_path, shared_cache  # noqa: F811
):
    settings = tiny_settings(
        shared_cache, output_dir=str(tmp_path), objectives=["mlm", "clm_mlm", "mntp"], attention=["rope"],
        training={"hybrid_clm_fraction": 0.25, "mntp_causal_fraction": 0.5},
    )
    raw = json.loads(run_grid(resolve_config(overrides=settings), "test").read_text())
    jsonschema.validate(raw, SCHEMA)
    runs = {run["run_id"]: run for run in raw["runs"]}
    assert runs["rope_clm_mlm_run0"]["hybrid"] == {"objective": "clm_mlm", "switch_step": 2}  # round(8 x 0.25)
    assert runs["rope_mntp_run1"]["hybrid"] == {"objective": "mntp", "causal_fraction": 0.5}
    assert "hybrid" not in runs["rope_mlm_run0"]
    analysis = analyze(raw, StatisticsConfig(bootstrap_resamples=200), ["val_loss"])
    cross = analysis.comparisons_in("mlm_vs_clm/val_loss")
    assert [(c.group_a, c.group_b) for c in cross] == [
        ("rope_mlm", "rope_clm_mlm"), ("rope_mlm", "rope_mntp"), ("rope_clm_mlm", "rope_mntp")
    ]
    assert all(c.paired for c in cross)
    assert [c.like_for_like for c in cross] == [True, False, False]
