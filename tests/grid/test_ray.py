"""The Ray executor on a local 2-CPU cluster: same numbers as the local executor, lost workers retried."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import torch

from mlmclm.components import resolve_config
from mlmclm.data import prepare_data
from mlmclm.grid.executors import RayExecutor
from mlmclm.grid.plan import plan_runs
from mlmclm.grid.results import config_fingerprint, run_directory
from mlmclm.grid.runner import run_grid
from mlmclm.grid.worker import RunJob
from tests.grid.test_grid import SCHEMA, deterministic_view, tiny_settings

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance (2 CPUs) for the module, shut down afterwards so no Ray process outlives it."""
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), previous]))  # workers import mlmclm
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("cache").resolve())


def ray_settings(cache_dir: str, output: Path, **extra) -> dict:
    settings = tiny_settings(cache_dir, num_runs=1, attention=["standard"], output_dir=str(output), **extra)
    settings["training"]["threads"] = 1  # Ray workers use one thread; so does the local reference
    return settings


def local_reference(settings: dict, output: Path) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local = {**settings, "executor": "local", "output_dir": str(output)}
        return json.loads(run_grid(resolve_config(overrides=local), "local").read_text())
    finally:
        torch.set_num_threads(threads)


def test_ray_settings_choose_the_task_resources(cache):
    config = resolve_config(overrides={
        **ray_settings(cache, Path("out")), "executor": "ray",
        "ray": {"cpus_per_run": 2, "gpus_per_run": 0.5, "max_retries": 3, "address": "ray://head:10001"},
    })
    executor = RayExecutor(config.to_dict(), data=None, threads=None)
    assert (executor.cpus, executor.gpus, executor.max_retries, executor.address) == (2, 0.5, 3, "ray://head:10001")
    assert executor.threads == 2  # torch threads follow the CPUs reserved for the run


@pytest.mark.slow
def test_a_ray_grid_records_the_same_numbers_as_the_local_executor(tmp_path, cache, ray_cluster):
    settings = ray_settings(cache, tmp_path / "ray", executor="ray")
    raw = json.loads(run_grid(resolve_config(overrides=settings), "ray").read_text())
    jsonschema.validate(raw, SCHEMA)
    assert deterministic_view(raw) == deterministic_view(local_reference(settings, tmp_path / "local"))


@pytest.mark.slow
def test_ray_workers_get_the_prepared_data_from_the_object_store_not_from_the_cache(tmp_path, ray_cluster):
    """With the token cache gone after the driver prepared the data, no worker reads or rebuilds it."""
    cache_dir = tmp_path / "driver_cache"
    config = resolve_config(overrides={**ray_settings(str(cache_dir), tmp_path / "out"), "executor": "ray"})
    data = prepare_data(config)
    shutil.rmtree(cache_dir)  # as on a node that cannot see the driver's disk
    jobs = [RunJob(spec, run_directory(tmp_path / "out", spec), 4, config_fingerprint(config.to_dict()), "tiny")
            for spec in plan_runs(config)]
    records = list(RayExecutor(config.to_dict(), data, threads=1).run(jobs))
    assert sorted(r.status for r in records) == ["completed", "completed"], [r.error for r in records]
    assert not cache_dir.exists()  # nothing re-read the corpus into a new cache
    assert all((Path(r.model_dir) / "tokenizer.json").is_file() for r in records)


def processes_writing(path: Path) -> list[int]:
    """Our own processes that hold ``path`` open (Linux /proc): the Ray worker training that run."""
    holders = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == str(path) for fd in (proc / "fd").iterdir()):
                holders.append(int(proc.name))
        except OSError:  # another user's process, or one that just ended
            continue
    return holders


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_from_its_checkpoint_and_nothing_else_reruns(tmp_path, cache, ray_cluster):
    settings = ray_settings(cache, tmp_path / "ray", executor="ray",
                            training={"max_steps": 120, "checkpoint_interval": 5, "eval_interval": 40})
    victim = tmp_path / "ray" / "experiments" / "standard_clm_run0"
    raw_path = tmp_path / "ray" / "tiny_raw_results.json"
    killed, unreadable = [], []

    def kill_the_clm_worker_after_its_first_checkpoint() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            if raw_path.exists():
                try:
                    json.loads(raw_path.read_text())
                except json.JSONDecodeError as exc:  # must never happen: every write is atomic
                    unreadable.append(str(exc))
            if (victim / "checkpoint.pt").exists():
                for pid in processes_writing((victim / "run.log").resolve()):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_clm_worker_after_its_first_checkpoint, daemon=True)
    killer.start()
    raw = json.loads(run_grid(resolve_config(overrides=settings), "ray").read_text())
    killer.join()

    assert killed, "the run finished before its worker could be killed"
    assert not unreadable
    jsonschema.validate(raw, SCHEMA)
    runs = {run["run_id"]: run for run in raw["runs"]}
    assert [run["status"] for run in runs.values()] == ["completed", "completed"]
    retried = runs["standard_clm_run0"]
    assert len(retried["failed_attempts"]) == 1 and "Worker" in retried["failed_attempts"][0]
    assert retried["resumed_from_step"] >= 5  # continued from its checkpoint, not from step 0
    untouched = runs["standard_mlm_run0"]
    assert "failed_attempts" not in untouched and untouched["resumed_from_step"] == 0
    assert deterministic_view(raw) == deterministic_view(local_reference(settings, tmp_path / "local"))
