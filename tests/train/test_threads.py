"""CPU threads per run: the default division, the small-model rule, the --threads flag, the waiting policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mlmclm.cli import build_parser, cli_overrides
from mlmclm.grid.executors import threads_per_worker
from mlmclm.train.threads import ONE_THREAD_MAX_HIDDEN, default_threads, yield_while_waiting


def test_cores_are_divided_among_workers_for_models_above_the_small_size():
    assert default_threads(workers=1, hidden_size=256, cores=8) == 8
    assert default_threads(workers=3, hidden_size=256, cores=8) == 2
    assert default_threads(workers=16, hidden_size=256, cores=8) == 1  # never zero


def test_small_models_get_one_thread_whatever_the_cores():
    assert default_threads(workers=1, hidden_size=ONE_THREAD_MAX_HIDDEN, cores=64) == 1
    assert default_threads(workers=1, hidden_size=ONE_THREAD_MAX_HIDDEN + 1, cores=64) == 64


def test_an_explicit_thread_count_wins_over_the_default():
    assert threads_per_worker(workers=2, requested=3, hidden_size=64) == 3


def test_threads_flag_sets_training_threads():
    args = build_parser().parse_args(["train", "--threads", "3"])
    assert cli_overrides(args)["training"] == {"threads": 3}


def test_waiting_policy_is_passive_unless_the_user_chose_one(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    yield_while_waiting()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    yield_while_waiting()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


_POOLS = """
import json, os, sys
import numpy, torch
from threadpoolctl import threadpool_info
from mlmclm.train.threads import limit_run_threads
limit_run_threads(int(sys.argv[1]))
blas = sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
print(json.dumps({"torch": torch.get_num_threads(), "blas": blas, "rayon": os.environ.get("RAYON_NUM_THREADS")}))
"""


def _pools_after_limit(threads: int, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in ("RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    environment.update(env, OMP_NUM_THREADS="2")  # every pool would start two wide without the limit
    result = subprocess.run([sys.executable, "-c", _POOLS, str(threads)], capture_output=True, text=True,
                            env=environment, check=True)
    return json.loads(result.stdout)


def test_a_run_limits_torch_blas_and_tokenizer_pools_to_its_share():
    """The probes' OpenBLAS pool and the tokenizers' Rayon pool, not only torch's: a grid worker on one torch
    thread whose probes ran two-wide BLAS beside its sibling's training made the grid 1.5x slower."""
    pools = _pools_after_limit(1)
    assert pools["torch"] == 1
    assert pools["blas"] == [1]
    assert pools["rayon"] == "1"


def test_a_users_rayon_setting_wins():
    assert _pools_after_limit(1, RAYON_NUM_THREADS="3")["rayon"] == "3"


def _train_exit(argv: list[str]) -> int:
    from mlmclm.cli import main

    try:
        return main(argv) or 0
    except SystemExit as exc:
        return int(exc.code or 0)


def test_more_threads_than_cores_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    """``--threads 1000000`` was a segmentation fault in torch's first matrix product."""
    import mlmclm.train.threads as threads

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    out = tmp_path / "exp"
    assert _train_exit(["train", "--quick-test", "--threads", "3", "--output-dir", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "error: --threads 3 is more than the 2 CPU cores this process can use"
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  threads: 64\n")
    assert _train_exit(["train", "--config", str(config), "--output-dir", str(out)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: training.threads 64 is more than the 2 CPU cores")
    assert not out.exists()


def test_the_cores_are_the_process_affinity_not_the_machine_count(monkeypatch):
    import mlmclm.train.threads as threads

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert threads.available_cores() == 1
    assert default_threads(workers=1, hidden_size=256) == 1
    threads.check_threads(1, "--threads")  # within the cores: accepted
