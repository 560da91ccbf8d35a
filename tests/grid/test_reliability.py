"""Injected faults on a whole grid: SIGKILL at chosen points, a full disk, a second concurrent invocation.

Each fault runs ``train.py`` in a subprocess armed through the ``MLMCLM_FAULT`` hook (mlmclm/faults.py),
then checks what survived and that a plain rerun ends with exactly the numbers of an uninterrupted grid.
docs/reliability.md lists these tests beside the faults they prove.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlmclm.components import resolve_config
from mlmclm.grid.lock import ExperimentLockedError, experiment_lock, lock_path
from mlmclm.grid.runner import run_grid

REPO = Path(__file__).resolve().parents[2]
TIMING_METRICS = {"train_time_s", "tokens_per_s", "peak_memory_mb"}
SETTINGS = {
    "experiment_name": "tiny",
    "objectives": ["mlm", "clm"],
    "attention": ["standard"],
    "num_runs": 1,
    "device": "cpu",
    "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32, "sliding_window_stride": 16},
    "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32},
    "training": {"max_steps": 8, "batch_size": 8, "learning_rate": 1e-3, "eval_interval": 4,
                 "eval_max_batches": 2, "checkpoint_interval": 3},
    "statistics": {"bootstrap_resamples": 200},
    "probes": {"enabled": False},
}


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The config file (with a shared token cache) and the raw results of one uninterrupted grid."""
    root = tmp_path_factory.mktemp("reliability")
    settings = {**SETTINGS, "data": {**SETTINGS["data"], "cache_dir": str(root / "cache")}}
    config_path = root / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(settings))
    result = train(config_path, root / "clean")
    assert result.returncode == 0, result.stderr
    return config_path, json.loads((root / "clean" / "tiny_raw_results.json").read_text())


def train(config_path: Path, output: Path, fault: str | None = None, wait: bool = True, extra: tuple = ()):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.pop("MLMCLM_FAULT", None)
    if fault:
        env["MLMCLM_FAULT"] = fault
    command = [sys.executable, str(REPO / "train.py"), "--config", str(config_path), "--output-dir", str(output),
               "--quiet", *extra]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def deterministic_view(raw: dict) -> list[dict]:
    view = []
    for run in raw["runs"]:
        metrics = {k: v for k, v in run["metrics"].items() if k not in TIMING_METRICS}
        curves = {k: v for k, v in run["curves"].items() if k != "wall_time_s"}
        view.append({"run_id": run["run_id"], "status": run["status"], "metrics": metrics, "curves": curves})
    return view


@pytest.mark.slow
@pytest.mark.parametrize(
    "fault",
    [
        "kill:step:2",  # first run, before its first checkpoint
        "kill:step:13",  # second run, after its step-3 checkpoint (first run finished)
        "kill:write:checkpoint.pt:2",  # half-written second checkpoint of the first run
        "kill:write:metrics.json:1",  # first run trained, its record half-written
        "kill:write:tiny_raw_results.json:2",  # the results file half-rewritten after the first run
    ],
)
def test_a_grid_killed_anywhere_keeps_finished_runs_and_resumes_to_the_uninterrupted_results(
    grid, tmp_path, fault
):
    config_path, clean = grid
    killed = train(config_path, tmp_path, fault=fault)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    raw_path = tmp_path / "tiny_raw_results.json"
    partial = json.loads(raw_path.read_text())  # always strict, complete JSON
    assert all(run["status"] == "completed" for run in partial["runs"])
    rerun = train(config_path, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "stale lock" in rerun.stderr  # the killed process's lock was detected and taken over
    resumed = json.loads(raw_path.read_text())
    assert deterministic_view(resumed) == deterministic_view(clean)
    finished_before = {run["run_id"]: run for run in partial["runs"]}
    assert all(run == finished_before[run["run_id"]] for run in resumed["runs"] if run["run_id"] in finished_before)
    assert not list(tmp_path.glob(".tiny_raw_results.json.*.tmp")) and not list(tmp_path.glob("experiments/*/.*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["write:checkpoint.pt:2", "write:tiny_raw_results.json:2"])
def test_a_full_disk_ends_with_one_error_line_and_an_intact_results_file(grid, tmp_path, point):
    config_path, clean = grid
    full = train(config_path, tmp_path, fault=f"enospc:{point}")
    assert full.returncode == 2
    assert "Traceback" not in full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no space left on the device while writing") and "rerun" in last
    partial = json.loads((tmp_path / "tiny_raw_results.json").read_text())
    assert [run["run_id"] for run in partial["runs"]] == ["standard_mlm_run0"][: len(partial["runs"])]
    rerun = train(config_path, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert deterministic_view(json.loads((tmp_path / "tiny_raw_results.json").read_text())) == deterministic_view(clean)


HOLD_LOCK = """
import sys, time
from pathlib import Path
from mlmclm.grid.lock import experiment_lock
with experiment_lock(Path(sys.argv[1]), "tiny", "holder"):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold_lock_in_subprocess(output: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(output)], env=env, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_invocation_refuses_while_the_first_holds_the_lock_and_a_stale_lock_is_taken_over(
    tmp_path, caplog
):
    holder = _hold_lock_in_subprocess(tmp_path)
    try:
        config = resolve_config(overrides={**SETTINGS, "output_dir": str(tmp_path)})
        with pytest.raises(ExperimentLockedError, match=rf"already being run \(pid {holder.pid} on "):
            run_grid(config, "second")
        assert not (tmp_path / "tiny_raw_results.json").exists()  # refused before writing anything
        with experiment_lock(tmp_path, "other"):  # another experiment in the same directory is not blocked
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert json.loads(lock_path(tmp_path, "tiny").read_text())["pid"] == holder.pid  # left behind by the kill
    with caplog.at_level("WARNING", logger="mlmclm.grid.lock"):
        with experiment_lock(tmp_path, "tiny", "third"):
            assert json.loads(lock_path(tmp_path, "tiny").read_text())["command"] == "third"
    assert f"stale lock {lock_path(tmp_path, 'tiny').resolve()} from pid {holder.pid}" in caplog.text
    assert lock_path(tmp_path, "tiny").read_text() == ""  # released


@pytest.mark.slow
def test_two_train_processes_on_one_experiment_the_second_refuses_with_one_line(grid, tmp_path):
    config_path, _ = grid
    first = train(config_path, tmp_path, wait=False, extra=("--max-steps", "3000"))
    try:
        lock = lock_path(tmp_path, "tiny")
        deadline = time.time() + 120
        while (not lock.exists() or not lock.read_text()) and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        second = train(config_path, tmp_path)
        assert first.poll() is None, "the first invocation ended before the second one started"
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1].startswith(f"error: experiment 'tiny' in {tmp_path}")
    assert f"already being run (pid {first.pid}" in second.stderr


def test_an_output_directory_that_cannot_hold_the_lock_is_one_error_line(tmp_path, capsys):
    from mlmclm.cli import main

    (tmp_path / "a_file").write_text("")
    code = main(["train", "--quick-test", "--output-dir", str(tmp_path / "a_file" / "out")])
    assert code == 2
    # refused up front now (atomic.check_output_location), before the lock file is tried
    last = capsys.readouterr().err.splitlines()[-1]
    below = tmp_path / "a_file"
    assert last == f"error: --output-dir {below / 'out'} cannot be created: {below} is a file, not a directory"


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status  # a zombie has finished; only its exit status is left


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from Linux /proc")
def test_worker_processes_die_with_a_killed_grid_instead_of_writing_on(grid, tmp_path):
    config_path, _ = grid
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, str(REPO / "train.py"), "--config", str(config_path), "--output-dir", str(tmp_path),
               "--quiet", "--workers", "2", "--max-steps", "3000"]
    # no pipes: an orphaned worker would hold them open and block the test
    parent = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    try:
        checkpoints = [tmp_path / "experiments" / f"standard_{o}_run0" / "checkpoint.pt" for o in ("mlm", "clm")]
        deadline = time.time() + 240
        while not all(c.exists() for c in checkpoints) and parent.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        assert parent.poll() is None and all(c.exists() for c in checkpoints), "workers never started training"
        workers = [pid for pid in _children(parent.pid)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 30
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        parent.kill()
        parent.wait()
        for pid in workers:  # never leave an orphan training on the machine, even when the test fails
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
