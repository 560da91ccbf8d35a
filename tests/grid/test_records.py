"""The run record the worker writes: valid against docs/raw_results.schema.json, and read back field for field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest

from mlmclm.components import resolve_config
from mlmclm.grid.plan import RunSpec
from mlmclm.grid.records import RunRecord
from mlmclm.grid.results import RUN_RECORD_NAME
from mlmclm.grid.worker import RunJob, WorkerContext, execute_run
from tests.grid.test_lr_sweep import fake_outcome

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "raw_results.schema.json").read_text())
RUN_SCHEMA = {"$ref": "#/$defs/run", "$defs": SCHEMA["$defs"]}
HASHES = {"data_hash": "0" * 64, "tokenizer_hash": "1" * 64}


def _execute(tmp_path: Path, monkeypatch, train_run) -> tuple[RunRecord, dict]:
    """One run through the real worker with ``train_run`` in place of training; the record and its file."""
    monkeypatch.setattr("mlmclm.grid.worker.train_run", train_run)
    context = WorkerContext(resolve_config(), data=SimpleNamespace(provenance=lambda fold: HASHES), probe_tasks=[])
    spec = RunSpec("mlm", "rope", None, 42, 0, 3e-4)
    record = execute_run(RunJob(spec, tmp_path / spec.run_id, 8, "fp", "x"), context)
    return record, json.loads((tmp_path / spec.run_id / RUN_RECORD_NAME).read_text())


@pytest.mark.parametrize("val_loss", [1.25, math.nan], ids=["completed", "diverged"])
def test_worker_records_validate_and_round_trip(tmp_path, monkeypatch, val_loss):
    outcome = fake_outcome(val_loss)
    record, written = _execute(tmp_path, monkeypatch, lambda *args, **kwargs: outcome)
    jsonschema.validate(written, RUN_SCHEMA)
    assert written == record.to_json()
    assert RunRecord.from_json(written) == record
    assert list(RunRecord.from_json(written).to_json()) == list(written)  # same keys in the same order
    assert written["status"] == outcome.status and written["metrics"] == outcome.metrics
    assert written["run_id"] == "rope_mlm_run0" and written["fold"] is None and written["seed"] == 42
    assert {key: written[key] for key in HASHES} == HASHES and written["config_fingerprint"] == "fp"
    assert written.get("error") == outcome.error


def test_a_crashed_run_is_a_failed_record_that_validates(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("out of memory")

    record, written = _execute(tmp_path, monkeypatch, crash)
    jsonschema.validate(written, RUN_SCHEMA)
    assert (record.status, record.error) == ("failed", "RuntimeError: out of memory")
    assert written["metrics"] == {} and written["curves"] == {} and RunRecord.from_json(written) == record


def test_training_fields_the_record_does_not_name_are_kept_not_dropped(tmp_path, monkeypatch):
    outcome = fake_outcome(1.0)
    outcome.extra["new_field"] = {"from": "a newer trainer"}
    record, written = _execute(tmp_path, monkeypatch, lambda *args, **kwargs: outcome)
    assert record.extra == {"new_field": {"from": "a newer trainer"}}
    assert written["new_field"] == {"from": "a newer trainer"} and list(written)[-1] == "new_field"


def test_hand_assembled_runs_read_as_the_analysis_always_treated_them():
    record = RunRecord.from_json({"objective": "mlm", "attention": "rope", "metrics": {"val_loss": 1.0}})
    assert (record.run_id, record.status, record.fold, record.seed) == ("?", "unknown", None, None)
    assert not record.completed and record.curves == {}
    with pytest.raises(KeyError):
        RunRecord.from_json({"objective": "mlm"})
