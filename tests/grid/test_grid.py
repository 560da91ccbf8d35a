"""The experiment grid: plan, equal budgets, determinism, divergence/failure handling, resume, schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import jsonschema
import pytest
import yaml

import mlmclm.train.trainer as trainer_module
from mlmclm.components import resolve_config
from mlmclm.errors import UserError
from mlmclm.grid.plan import plan_runs
from mlmclm.grid.runner import run_grid

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "docs" / "raw_results.schema.json").read_text())
# Metrics that depend on wall-clock time or memory, not on the computation.
TIMING_METRICS = {"train_time_s", "tokens_per_s", "peak_memory_mb"}


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> str:
    """One token/tokenizer cache for the whole module: tokenization is tested elsewhere."""
    return str(tmp_path_factory.mktemp("cache"))


def tiny_settings(cache_dir: str, **extra) -> dict:
    settings = {
        "experiment_name": "tiny",
        "objectives": ["mlm", "clm"],
        "attention": ["standard", "rope"],
        "num_runs": 2,
        "device": "cpu",
        "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32,
                 "cache_dir": cache_dir},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                  "hidden_dropout": 0.1, "attention_dropout": 0.0, "exposb_num_buckets": 8,
                  "exposb_max_distance": 32},
        "training": {"max_steps": 8, "batch_size": 8, "learning_rate": 1e-3, "eval_interval": 4,
                     "eval_max_batches": 2, "checkpoint_interval": 3},
        "statistics": {"bootstrap_resamples": 200},
        "probes": {"enabled": False},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            settings[key] = {**settings.get(key, {}), **value}
        else:
            settings[key] = value
    return settings


def deterministic_view(raw: dict) -> list[dict]:
    """The parts of the runs that must not depend on timing."""
    view = []
    for run in raw["runs"]:
        metrics = {k: v for k, v in run["metrics"].items() if k not in TIMING_METRICS}
        curves = {k: v for k, v in run["curves"].items() if k != "wall_time_s"}
        view.append({"run_id": run["run_id"], "status": run["status"], "metrics": metrics, "curves": curves,
                     "tokens": run.get("tokens")})
    return view


def test_plan_is_the_product_of_objectives_attention_folds_and_seeds():
    config = resolve_config(overrides={"num_runs": 5, "cross_validation": True, "folds": 3})
    runs = plan_runs(config)
    assert len(runs) == 2 * 4 * 3 * 5 == 120
    assert len({r.run_id for r in runs}) == 120
    # every condition gets the same (fold, seed) pairs, so runs pair up across conditions
    by_condition: dict = {}
    for run in runs:
        by_condition.setdefault((run.objective, run.attention), set()).add((run.fold, run.seed))
    assert len({frozenset(pairs) for pairs in by_condition.values()}) == 1


def test_grid_outputs_budgets_determinism_and_schema(tmp_path, shared_cache):
    config = resolve_config(overrides=tiny_settings(shared_cache, output_dir=str(tmp_path / "a")))
    raw_path = run_grid(config, "test")
    raw = json.loads(raw_path.read_text())
    jsonschema.validate(raw, SCHEMA)
    assert [r["status"] for r in raw["runs"]] == ["completed"] * 8
    assert raw["budget"]["optimizer_steps"] == 8
    # equal budgets: same steps and, with the shared segmentation, the same training tokens for every run
    assert {r["metrics"]["train_steps"] for r in raw["runs"]} == {8.0}
    assert len({r["metrics"]["train_tokens"] for r in raw["runs"] if r["seed"] == raw["runs"][0]["seed"]}) == 1
    for run in raw["runs"]:  # what each run saw and scored is part of its record
        assert run["tokens"]["processed"] == run["metrics"]["train_tokens"] and run["tokens"]["scored"] > 0
    # equal parameter counts across objectives for the same mechanism
    params = {(r["objective"], r["attention"]): r["metrics"]["num_params"] for r in raw["runs"]}
    assert params["mlm", "rope"] == params["clm", "rope"] and params["mlm", "standard"] == params["clm", "standard"]
    run_dir = Path(raw["runs"][0]["model_dir"])
    for name in ("final_model.pt", "model.safetensors", "config.json", "metrics.json", "run.log", "tokenizer.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoint.pt").exists()
    assert run_dir.name == "standard_mlm_run0" and run_dir.parent.name == "experiments"

    again = run_grid(resolve_config(overrides=tiny_settings(shared_cache, output_dir=str(tmp_path / "b"))), "test")
    assert deterministic_view(json.loads(again.read_text())) == deterministic_view(raw)


def test_a_nan_run_is_diverged_and_a_crashing_run_failed_while_the_rest_complete(
    tmp_path, shared_cache, monkeypatch
):
    real_step = trainer_module._optimizer_step
    # steps per live model; keyed weakly, not by id(): a finished run's model is freed and a new one may get
    # its id, which made the count start where the old model's ended (a flake seen in CI)
    steps: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def sabotaged(model, *args, **kwargs):
        loss, tokens = real_step(model, *args, **kwargs)
        steps[model] = steps.get(model, 0) + 1
        if model.config["attention"] == "rope" and model.config["objective"] == "mlm" and steps[model] == 3:
            return float("nan"), tokens
        if model.config["attention"] == "rope" and model.config["objective"] == "clm":
            raise MemoryError("simulated out of memory")
        return loss, tokens

    monkeypatch.setattr(trainer_module, "_optimizer_step", sabotaged)
    config = resolve_config(overrides=tiny_settings(shared_cache, output_dir=str(tmp_path), num_runs=1))
    raw = json.loads(run_grid(config, "test").read_text())
    jsonschema.validate(raw, SCHEMA)
    status = {r["run_id"]: r for r in raw["runs"]}
    assert status["standard_mlm_run0"]["status"] == "completed"
    assert status["standard_clm_run0"]["status"] == "completed"
    assert status["rope_mlm_run0"]["status"] == "diverged"
    assert status["rope_mlm_run0"]["metrics"]["diverged_step"] == 3
    assert status["rope_clm_run0"]["status"] == "failed"
    assert "MemoryError: simulated out of memory" in status["rope_clm_run0"]["error"]


def test_rerun_skips_finished_runs_and_retries_failed_ones(tmp_path, shared_cache, monkeypatch):
    settings = tiny_settings(shared_cache, output_dir=str(tmp_path), num_runs=1, attention=["standard"])
    raw_path = run_grid(resolve_config(overrides=settings), "test")
    before = json.loads(raw_path.read_text())
    trained = []
    real_train = trainer_module.train_run
    monkeypatch.setattr(
        "mlmclm.grid.worker.train_run", lambda spec, *a, **k: trained.append(spec.run_id) or real_train(spec, *a, **k)
    )
    # one more seed: only the new runs train, the old records are kept as they were
    after = json.loads(run_grid(resolve_config(overrides={**settings, "num_runs": 2}), "test").read_text())
    assert sorted(trained) == ["standard_clm_run1", "standard_mlm_run1"]
    old = {r["run_id"]: r for r in before["runs"]}
    assert all(after_run == old[after_run["run_id"]] for after_run in after["runs"] if after_run["run_id"] in old)


def test_changed_configuration_is_refused_and_overwrite_starts_over(tmp_path, shared_cache):
    settings = tiny_settings(shared_cache, output_dir=str(tmp_path), num_runs=1, attention=["standard"])
    run_grid(resolve_config(overrides=settings), "test")
    changed = {**settings, "training": {**settings["training"], "learning_rate": 5e-4}}
    with pytest.raises(UserError, match=r"different configuration \(training.learning_rate"):
        run_grid(resolve_config(overrides=changed), "test")
    raw = json.loads(run_grid(resolve_config(overrides={**changed, "resume": False}), "test").read_text())
    assert raw["config"]["training"]["learning_rate"] == 5e-4
    assert len(raw["runs"]) == 2


@pytest.mark.slow
def test_a_killed_grid_resumes_to_the_same_raw_results(tmp_path, shared_cache):
    """SIGKILL in the middle of a run, rerun the same command: identical to an uninterrupted grid."""
    settings = tiny_settings(
        shared_cache, num_runs=1, training={"max_steps": 40, "checkpoint_interval": 5, "eval_interval": 10}
    )
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(settings))

    def command(output: Path) -> list[str]:
        return [sys.executable, str(REPO / "train.py"), "--config", str(config_path), "--output-dir", str(output)]

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    interrupted = tmp_path / "interrupted"
    process = subprocess.Popen(command(interrupted), cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = interrupted / "experiments" / "rope_mlm_run0" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the grid finished before it could be interrupted"
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = json.loads((interrupted / "tiny_raw_results.json").read_text())
    assert [r["run_id"] for r in partial["runs"]] == ["standard_mlm_run0"]

    subprocess.run(command(interrupted), cwd=tmp_path, env=env, check=True, capture_output=True)
    subprocess.run(command(tmp_path / "clean"), cwd=tmp_path, env=env, check=True, capture_output=True)
    resumed = json.loads((interrupted / "tiny_raw_results.json").read_text())
    clean = json.loads((tmp_path / "clean" / "tiny_raw_results.json").read_text())
    assert deterministic_view(resumed) == deterministic_view(clean)


def test_parallel_workers_record_every_run_like_the_sequential_grid(tmp_path, shared_cache):
    settings = tiny_settings(shared_cache, num_runs=1)
    sequential = run_grid(resolve_config(overrides={**settings, "output_dir": str(tmp_path / "seq")}), "test")
    parallel = run_grid(
        resolve_config(overrides={**settings, "output_dir": str(tmp_path / "par"), "workers": 2}), "test"
    )
    seq_runs = {r["run_id"]: r for r in json.loads(sequential.read_text())["runs"]}
    par_runs = {r["run_id"]: r for r in json.loads(parallel.read_text())["runs"]}
    assert list(par_runs) == list(seq_runs)  # recorded in plan order whatever order they finished in
    for run_id, run in par_runs.items():
        assert run["status"] == "completed"
        # other thread counts may change float summation order, not the result beyond rounding
        assert run["metrics"]["val_loss"] == pytest.approx(seq_runs[run_id]["metrics"]["val_loss"], rel=1e-4)
        assert run["metrics"]["train_tokens"] == seq_runs[run_id]["metrics"]["train_tokens"]


@pytest.mark.slow
def test_the_ray_executor_runs_the_grid_on_a_local_ray_instance(tmp_path, shared_cache):
    ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
    settings = tiny_settings(shared_cache, num_runs=1, attention=["standard"], executor="ray")
    settings["data"]["cache_dir"] = str(Path(shared_cache).resolve())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        raw = json.loads(run_grid(resolve_config(overrides={**settings, "output_dir": str(tmp_path)}), "t").read_text())
    finally:
        ray.shutdown()
    jsonschema.validate(raw, SCHEMA)
    assert [(r["run_id"], r["status"]) for r in raw["runs"]] == [
        ("standard_mlm_run0", "completed"), ("standard_clm_run0", "completed")
    ]


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_rerun_completes(tmp_path, shared_cache):
    settings = tiny_settings(shared_cache, num_runs=1, training={"max_steps": 200, "checkpoint_interval": 5})
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(settings))
    command = [sys.executable, str(REPO / "train.py"), "--config", str(config_path), "--output-dir", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A suite started in the background (`cmd &` in a script) inherits SIGINT ignored; Ctrl-C must reach train.py.
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    checkpoint = tmp_path / "experiments" / "standard_mlm_run0" / "checkpoint.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "interrupted" in err.splitlines()[-1] and "Traceback" not in err
    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    raw = json.loads((tmp_path / "tiny_raw_results.json").read_text())
    assert [r["status"] for r in raw["runs"]] == ["completed"] * 4


def test_another_experiment_never_deletes_this_experiments_run_directories(tmp_path, shared_cache):
    settings = tiny_settings(shared_cache, output_dir=str(tmp_path), num_runs=1, attention=["standard"])
    run_grid(resolve_config(overrides=settings), "test")
    model_file = tmp_path / "experiments" / "standard_mlm_run0" / "model.safetensors"
    assert model_file.exists()
    other = {**settings, "experiment_name": "other", "training": {**settings["training"], "learning_rate": 1e-2}}
    with pytest.raises(UserError, match="belongs to experiment 'tiny'"):
        run_grid(resolve_config(overrides=other), "test")
    with pytest.raises(UserError, match="belongs to experiment 'tiny'"):
        run_grid(resolve_config(overrides={**other, "resume": False}), "test")
    assert model_file.exists()


def corpus_file(path: Path, variant: int) -> str:
    """A small corpus; each variant is different text (a replaced file at the same path)."""
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa", "lambda", "sigma"]
    lines = [
        " ".join(words[(i * 7 + j * (3 + variant)) % len(words)] + str(j % (5 + variant)) for j in range(12 + i % 9))
        for i in range(240)
    ]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_run_records_store_the_corpus_and_tokenizer_hashes(tmp_path, shared_cache):
    settings = tiny_settings(shared_cache, output_dir=str(tmp_path), num_runs=1, attention=["standard"])
    raw = json.loads(run_grid(resolve_config(overrides=settings), "test").read_text())
    jsonschema.validate(raw, SCHEMA)
    for run in raw["runs"]:
        assert run["data_hash"] == raw["data"]["corpus_sha256"]
        assert run["tokenizer_hash"] == raw["data"]["tokenizer_sha256"]


def test_a_resume_on_a_replaced_corpus_is_refused_in_one_line_and_overwrite_starts_over(tmp_path, capsys):
    from mlmclm.cli import main

    corpus = corpus_file(tmp_path / "corpus.txt", 0)
    settings = tiny_settings(str(tmp_path / "cache"), output_dir=str(tmp_path / "out"), num_runs=1,
                             attention=["standard"], objectives=["mlm"])
    settings["data"] = {**settings["data"], "path": corpus, "max_documents": None, "vocab_size": 120}
    first = json.loads(run_grid(resolve_config(overrides=settings), "test").read_text())
    corpus_file(tmp_path / "corpus.txt", 1)  # same path, other text; and one more seed
    config_path = tmp_path / "tiny.yaml"
    config_path.write_text(yaml.safe_dump({**settings, "num_runs": 2}))
    capsys.readouterr()
    assert main(["train", "--config", str(config_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "trained on other data (corpus sha256" in err and "--overwrite" in err
    kept = json.loads((tmp_path / "out" / "tiny_raw_results.json").read_text())
    assert kept["runs"] == first["runs"], "the refused resume must leave the finished runs alone"

    fresh = json.loads(
        run_grid(resolve_config(overrides={**settings, "num_runs": 2, "resume": False}), "test").read_text()
    )
    assert [r["run_id"] for r in fresh["runs"]] == ["standard_mlm_run0", "standard_mlm_run1"]
    assert {r["data_hash"] for r in fresh["runs"]} == {fresh["data"]["corpus_sha256"]}
    assert fresh["data"]["corpus_sha256"] != first["data"]["corpus_sha256"]


def test_a_resume_with_another_tokenizer_file_is_refused(tmp_path, shared_cache):
    from mlmclm.data.tokenizer import train_tokenizer

    tokenizer_dir = tmp_path / "tok"
    train_tokenizer(["alpha beta gamma delta epsilon"] * 20, vocab_size=60, output_dir=tokenizer_dir)
    settings = tiny_settings(shared_cache, output_dir=str(tmp_path / "out"), num_runs=1, attention=["standard"],
                             objectives=["mlm"])
    settings["data"] = {**settings["data"], "tokenizer": str(tokenizer_dir)}
    run_grid(resolve_config(overrides=settings), "test")
    train_tokenizer(["zeta theta kappa lambda sigma"] * 20, vocab_size=60, output_dir=tokenizer_dir)
    with pytest.raises(UserError, match=r"trained on other data \(tokenizer sha256"):
        run_grid(resolve_config(overrides={**settings, "num_runs": 2}), "test")


def test_a_deleted_cache_retrains_the_same_tokenizer_and_the_resume_goes_on(tmp_path, monkeypatch):
    """With byte-reproducible tokenizer training, losing the cache no longer turns a resume into other data."""
    import shutil

    corpus = corpus_file(tmp_path / "corpus.txt", 0)
    settings = tiny_settings(str(tmp_path / "cache"), output_dir=str(tmp_path / "out"), num_runs=1,
                             attention=["standard"], objectives=["mlm"])
    settings["data"] = {**settings["data"], "path": corpus, "max_documents": None, "vocab_size": 120}
    first = json.loads(run_grid(resolve_config(overrides=settings), "test").read_text())
    shutil.rmtree(tmp_path / "cache")
    trained = []
    real_train = trainer_module.train_run
    monkeypatch.setattr(
        "mlmclm.grid.worker.train_run", lambda spec, *a, **k: trained.append(spec.run_id) or real_train(spec, *a, **k)
    )
    again = json.loads(run_grid(resolve_config(overrides={**settings, "num_runs": 2}), "test").read_text())
    assert trained == ["standard_mlm_run1"]
    assert again["runs"][0] == first["runs"][0]
    assert again["runs"][1]["tokenizer_hash"] == first["runs"][0]["tokenizer_hash"]


def test_cross_validation_runs_train_with_their_folds_own_tokenizer(tmp_path, shared_cache):
    import hashlib

    settings = tiny_settings(shared_cache, output_dir=str(tmp_path), num_runs=1, attention=["standard"],
                             objectives=["mlm"], cross_validation=True, folds=2)
    raw = json.loads(run_grid(resolve_config(overrides=settings), "test").read_text())
    jsonschema.validate(raw, SCHEMA)
    assert [r["status"] for r in raw["runs"]] == ["completed", "completed"]
    by_fold = {r["fold"]: r["tokenizer_hash"] for r in raw["runs"]}
    assert by_fold == dict(enumerate(raw["data"]["fold_tokenizer_sha256"])) and len(set(by_fold.values())) == 2
    for run in raw["runs"]:  # the tokenizer saved with the model is the one the run trained with
        saved = Path(run["model_dir"]) / "tokenizer.json"
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == run["tokenizer_hash"]
    again = json.loads(run_grid(resolve_config(overrides={**settings, "num_runs": 1}), "test").read_text())
    assert again["runs"] == raw["runs"]
