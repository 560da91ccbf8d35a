"""CPU threads per run: the default division, the small-model rule, the --threads flag, the waiting policy."""

from __future__ import annotations

import os

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
