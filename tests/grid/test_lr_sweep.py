"""The learning-rate sweep: per-condition choice on validation, recorded apart from the final runs, resumable."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import jsonschema
import pytest

from mlmclm.analysis import analyze
from mlmclm.components import resolve_config
from mlmclm.config import ExperimentConfig
from mlmclm.errors import ConfigError
from mlmclm.grid.lr_sweep import SweepResult, choose_learning_rate
from mlmclm.grid.plan import LR_SWEEP, RunSpec, plan_runs, plan_sweep_runs
from mlmclm.grid.runner import run_grid
from mlmclm.train.trainer import RunOutcome, run_training_config
from tests.grid.test_grid import SCHEMA, tiny_settings

# Validation loss of each condition's sweep run at each rate: standard_mlm is best at 1e-3, rope_mlm at 3e-3,
# standard_clm at 3e-3 (1e-3 diverges), rope_clm at 1e-3 (3e-3 diverges).
SWEEP_LOSS = {
    ("mlm", "standard"): {1e-3: 2.0, 3e-3: 2.5},
    ("mlm", "rope"): {1e-3: 2.5, 3e-3: 2.0},
    ("clm", "standard"): {1e-3: math.nan, 3e-3: 3.0},
    ("clm", "rope"): {1e-3: 3.0, 3e-3: math.nan},
}
FINAL_LOSS = {"mlm": 1.0, "clm": 1.5}


def fake_outcome(val_loss: float) -> RunOutcome:
    """A record that satisfies the raw-results schema, without training."""
    if math.isnan(val_loss):
        return RunOutcome("diverged", {"diverged_step": 2.0}, {}, error="loss became nan at step 2")
    names = ("val_loss", "val_accuracy", "val_perplexity", "best_val_loss", "test_loss", "test_accuracy",
             "convergence_step", "train_time_s", "tokens_per_s", "num_params")
    metrics = {name: val_loss if "loss" in name else 1.0 for name in names}
    curves = {name: [1.0] for name in ("step", "tokens", "wall_time_s", "val_accuracy", "val_perplexity",
                                       "train_step", "train_loss")}
    curves["val_loss"] = [val_loss]
    tokens = {"processed": 10, "scored": 5, "targetable": 10, "distinct_target_fraction": 0.5,
              "processed_vs_shared": 1.0}
    return RunOutcome("completed", metrics, curves, extra={"tokens": tokens})


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def fake_trainer(monkeypatch):
    """Replaces training: sweep runs return SWEEP_LOSS, final runs FINAL_LOSS plus the seed, so sweep values
    pooled into the statistics would change the means; every call is logged as (run_id, learning_rate)."""
    calls: list[tuple[str, float]] = []
    crash: set[str] = set()

    def train_run(spec, config, data, run_dir, total_steps, probes=None, on_step=None):
        calls.append((spec.run_id, run_training_config(config, spec).learning_rate))
        if spec.run_id in crash:
            raise MemoryError("simulated out of memory")
        if spec.phase == LR_SWEEP:
            return fake_outcome(SWEEP_LOSS[spec.objective, spec.attention][spec.learning_rate])
        return fake_outcome(FINAL_LOSS[spec.objective] + spec.run_index / 10)

    monkeypatch.setattr("mlmclm.grid.worker.train_run", train_run)
    return calls, crash


def sweep_settings(cache: str, output_dir, **extra) -> dict:
    settings = tiny_settings(cache, output_dir=str(output_dir), **extra)
    settings["training"] = {**settings["training"], "lr_sweep": [1e-3, 3e-3], "lr_sweep_seed": 7}
    return settings


def chosen(raw: dict) -> dict[str, float | None]:
    return {entry["condition"]: entry["chosen_learning_rate"] for entry in raw["lr_sweep"]["conditions"]}


def test_each_condition_runs_its_seeds_at_the_rate_its_own_sweep_chose(tmp_path, shared_cache, fake_trainer):
    calls, _ = fake_trainer
    raw = json.loads(run_grid(resolve_config(overrides=sweep_settings(shared_cache, tmp_path)), "t").read_text())
    jsonschema.validate(raw, SCHEMA)
    assert chosen(raw) == {"standard_mlm": 1e-3, "rope_mlm": 3e-3, "standard_clm": 3e-3, "rope_clm": 1e-3}
    for run in raw["runs"]:
        assert run["phase"] == "final" and run["seed"] in (42, 43)
        assert run["learning_rate"] == chosen(raw)[f"{run['attention']}_{run['objective']}"]
    # the trainer really got the chosen rate, and the 8 sweep runs trained before any final run
    trained = dict(calls)
    assert all(trained[run["run_id"]] == run["learning_rate"] for run in raw["runs"])
    assert [phase for phase in ("lrsweep" in run_id for run_id, _ in calls)] == [True] * 8 + [False] * 8
    sweep_runs = raw["lr_sweep"]["runs"]
    assert len(sweep_runs) == 8 and {run["seed"] for run in sweep_runs} == {7}
    assert {run["run_id"]: run["learning_rate"] for run in sweep_runs}["rope_clm_lrsweep1"] == 3e-3
    assert raw["lr_sweep"]["rates"] == [1e-3, 3e-3] and raw["lr_sweep"]["criterion"] == "val_loss"
    standard_clm = next(c for c in raw["lr_sweep"]["conditions"] if c["condition"] == "standard_clm")
    assert [r["status"] for r in standard_clm["results"]] == ["diverged", "completed"]


def test_sweep_runs_are_never_pooled_with_the_final_seeds(tmp_path, shared_cache, fake_trainer):
    raw = json.loads(run_grid(resolve_config(overrides=sweep_settings(shared_cache, tmp_path)), "t").read_text())
    analysis = analyze(raw, resolve_config().statistics, metrics=["val_loss"])
    for summary in analysis.summaries:
        # two final seeds at FINAL_LOSS + 0.0 / + 0.1; a pooled sweep value (2.0 .. 3.0) would move the mean
        assert summary.n == 2
        assert summary.mean == pytest.approx(FINAL_LOSS[summary.objective] + 0.05)
        assert not summary.excluded  # the diverged sweep runs are not final runs either


def test_resume_recomputes_no_finished_sweep_run(tmp_path, shared_cache, fake_trainer):
    calls, crash = fake_trainer
    settings = sweep_settings(shared_cache, tmp_path, attention=["standard"], num_runs=1)
    crash.add("standard_mlm_run0")  # the sweep finishes, one final run crashes
    first = json.loads(run_grid(resolve_config(overrides=settings), "t").read_text())
    assert {run["run_id"]: run["status"] for run in first["runs"]}["standard_mlm_run0"] == "failed"
    calls.clear()
    crash.clear()
    second = json.loads(run_grid(resolve_config(overrides=settings), "t").read_text())
    assert calls == [("standard_mlm_run0", 1e-3)]  # only the failed final run; the four sweep runs are kept
    assert second["lr_sweep"]["runs"] == first["lr_sweep"]["runs"]
    assert chosen(second) == chosen(first)
    calls.clear()
    run_grid(resolve_config(overrides=settings), "t")
    assert calls == []


def test_a_crashed_sweep_run_holds_back_its_condition_until_a_rerun_retries_it(
    tmp_path, shared_cache, fake_trainer
):
    calls, crash = fake_trainer
    settings = sweep_settings(shared_cache, tmp_path, attention=["standard"], num_runs=1)
    crash.add("standard_mlm_lrsweep1")
    raw = json.loads(run_grid(resolve_config(overrides=settings), "t").read_text())
    jsonschema.validate(raw, SCHEMA)
    assert chosen(raw) == {"standard_mlm": None, "standard_clm": 3e-3}
    assert [run["run_id"] for run in raw["runs"]] == ["standard_clm_run0"]
    calls.clear()
    crash.clear()
    raw = json.loads(run_grid(resolve_config(overrides=settings), "t").read_text())
    assert calls == [("standard_mlm_lrsweep1", 3e-3), ("standard_mlm_run0", 1e-3)]
    assert chosen(raw)["standard_mlm"] == 1e-3


@pytest.mark.slow
def test_a_real_tiny_sweep_chooses_by_validation_loss_and_trains_the_seeds_at_that_rate(tmp_path, shared_cache):
    settings = sweep_settings(shared_cache, tmp_path, attention=["standard"], num_runs=1)
    settings["training"]["lr_sweep"] = [1e-5, 1e-2]
    raw = json.loads(run_grid(resolve_config(overrides=settings), "t").read_text())
    jsonschema.validate(raw, SCHEMA)
    for entry in raw["lr_sweep"]["conditions"]:
        losses = {r["learning_rate"]: r["val_loss"] for r in entry["results"]}
        assert losses[1e-5] != losses[1e-2]
        assert entry["chosen_learning_rate"] == min(losses, key=losses.get)
    # the table's values are the sweep runs' own final validation losses
    sweep_loss = {run["run_id"]: run["metrics"]["val_loss"] for run in raw["lr_sweep"]["runs"]}
    table = {r["run_id"]: r["val_loss"] for c in raw["lr_sweep"]["conditions"] for r in c["results"]}
    assert table == sweep_loss
    for run in raw["runs"]:
        assert run["status"] == "completed"
        assert run["learning_rate"] == chosen(raw)[f"{run['attention']}_{run['objective']}"]


def result(rate: float, status: str = "completed", val_loss: float | None = 1.0) -> SweepResult:
    return SweepResult(rate, f"x_mlm_lrsweep{rate}", status, val_loss if status == "completed" else None)


def test_choice_rules_tie_diverged_and_all_diverged():
    tie = choose_learning_rate("mlm", "x", [result(3e-4, val_loss=2.0), result(1e-4, val_loss=2.0)])
    assert tie.chosen_learning_rate == 1e-4 and "tie" in tie.reason
    # a diverged rate is never chosen, even though it is listed first
    diverged = choose_learning_rate("mlm", "x", [result(1e-3, "diverged"), result(1e-4, val_loss=5.0)])
    assert diverged.chosen_learning_rate == 1e-4 and "diverged" in diverged.reason
    # a completed run whose validation loss is not finite is not eligible either
    no_value = choose_learning_rate("mlm", "x", [result(1e-3, val_loss=None), result(1e-4, val_loss=5.0)])
    assert no_value.chosen_learning_rate == 1e-4
    every = choose_learning_rate("mlm", "x", [result(1e-3, "diverged"), result(3e-4, "diverged")])
    assert every.chosen_learning_rate == 3e-4 and "every swept rate diverged" in every.reason
    waiting = choose_learning_rate("mlm", "x", [result(1e-3, "failed"), result(3e-4, val_loss=1.0)])
    assert waiting.chosen_learning_rate is None and "0.001 (failed)" in waiting.reason


def test_the_sweep_plan_uses_its_own_seed_and_fold_zero_under_cross_validation():
    config = resolve_config(overrides={
        "cross_validation": True, "folds": 3, "attention": ["rope"], "training": {"lr_sweep": [1e-4, 3e-4]}
    })
    sweep = plan_sweep_runs(config)
    assert [(s.objective, s.learning_rate, s.fold, s.seed) for s in sweep] == [
        ("mlm", 1e-4, 0, 0), ("clm", 1e-4, 0, 0), ("mlm", 3e-4, 0, 0), ("clm", 3e-4, 0, 0)
    ]
    assert all(spec.learning_rate is None for spec in plan_runs(config))  # undecided until the sweep ran
    assert {spec.learning_rate for spec in plan_runs(resolve_config())} == {1e-4}
    yaml_style = resolve_config(overrides={"training": {"lr_sweep": ["1e-4", "3e-4"]}})  # YAML reads 1e-4 as text
    assert yaml_style.training.lr_sweep == [1e-4, 3e-4]
    rates = plan_runs(config, {("mlm", "rope"): 3e-4, ("clm", "rope"): 1e-4})
    assert {(s.objective, s.learning_rate) for s in rates} == {("mlm", 3e-4), ("clm", 1e-4)}


@pytest.mark.parametrize(
    ("training", "message"),
    [
        ({"lr_sweep": [1e-4, 1e-4]}, "lists a rate twice"),
        ({"lr_sweep": [1e-4, -1.0]}, "training.lr_sweep must be > 0"),
        ({"lr_sweep": [1e-4], "lr_sweep_seed": 43}, "also a final seed"),
    ],
)
def test_invalid_sweeps_are_config_errors(training, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config(overrides={"training": training})


def test_a_run_trains_with_its_own_rate_and_never_silently_with_the_shared_one():
    config = resolve_config(overrides={"training": {"lr_sweep": [1e-4, 3e-4]}})
    spec = RunSpec("mlm", "rope", None, 42, 0, learning_rate=3e-4)
    assert run_training_config(config, spec).learning_rate == 3e-4
    assert config.training.learning_rate == 1e-4
    with pytest.raises(ValueError, match="no learning rate"):
        run_training_config(config, RunSpec("mlm", "rope", None, 42, 0))
    assert run_training_config(ExperimentConfig(), RunSpec("mlm", "rope", None, 42, 0)).learning_rate == 1e-4


def test_sweep_runs_skip_the_probes_and_final_runs_keep_them(tmp_path, monkeypatch):
    from mlmclm.grid.worker import RunJob, WorkerContext, execute_run

    seen: dict[str, list] = {}

    def train_run(spec, config, data, run_dir, total_steps, probes=None, on_step=None):
        seen[spec.run_id] = [] if probes is None else probes.tasks
        return fake_outcome(1.0)

    monkeypatch.setattr("mlmclm.grid.worker.train_run", train_run)
    config = resolve_config(overrides={"training": {"lr_sweep": [1e-4, 3e-4]}})
    hashes = {"data_hash": "0" * 64, "tokenizer_hash": "1" * 64}
    data = SimpleNamespace(provenance=lambda fold: hashes, fold=lambda k: SimpleNamespace(tokenizer=None))
    context = WorkerContext(config, data=data, probe_tasks=["probe task"])
    for spec in (RunSpec("mlm", "rope", None, 0, 1, 3e-4, LR_SWEEP), RunSpec("mlm", "rope", None, 42, 0, 3e-4)):
        execute_run(RunJob(spec, tmp_path / spec.run_id, 8, "fp", "x"), context)
    assert seen == {"rope_mlm_lrsweep1": [], "rope_mlm_run0": ["probe task"]}
