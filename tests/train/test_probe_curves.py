"""Probes during training: one curve point per configured checkpoint, identical after an interrupted resume."""

from __future__ import annotations

import pytest

from mlmclm.components import resolve_config
from mlmclm.data import prepare_data
from mlmclm.grid.plan import RunSpec
from mlmclm.grid.worker import RunProbes, build_probe_tasks
from mlmclm.probes.curves import ProbeSchedule
from mlmclm.train.trainer import train_run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    overrides = {
        "device": "cpu",
        "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32, "cache_dir": str(cache)},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                  "hidden_dropout": 0.1, "attention_dropout": 0.1},
        "training": {"batch_size": 8, "learning_rate": 1e-3, "eval_interval": 2, "eval_max_batches": 1,
                     "checkpoint_interval": 4},
        "probes": {"tasks": ["bigram_shift"], "examples_per_task": 40, "eval_every": 3},
    }
    config = resolve_config(overrides=overrides)
    data = prepare_data(config)
    return overrides, data, build_probe_tasks(config, data)


def configured(tiny, **probes):
    overrides = tiny[0]
    return resolve_config(overrides={**overrides, "probes": {**overrides["probes"], **probes}})


SPEC = RunSpec("clm", "rope", None, seed=5, run_index=0)


def train_probed(config, data, tasks, run_dir, total_steps, **kwargs):
    """SPEC trained with the probes the grid worker gives the trainer."""
    probes = RunProbes.for_run(config, data, SPEC, tasks)
    return train_run(SPEC, config, data, run_dir, total_steps, probes, **kwargs)

PROBE = "probe/bigram_shift/accuracy"


class Interrupted(Exception):
    pass


def test_probe_schedule_in_steps_and_in_tokens():
    steps = ProbeSchedule(3, "steps")
    assert [s for s in range(1, 11) if steps.due(s, 10, 0, 0)] == [3, 6, 9, 10]
    tokens = ProbeSchedule(100, "tokens")
    # 45 tokens per step: the 100, 200, 300 marks are crossed at steps 3, 5 and 7; step 8 is the last
    assert [s for s in range(1, 9) if tokens.due(s, 8, 45 * (s - 1), 45 * s)] == [3, 5, 7, 8]


def test_probe_curve_has_one_point_per_checkpoint_and_the_end_metrics_are_its_last_point(tiny, tmp_path):
    _, data, tasks = tiny
    outcome = train_probed(configured(tiny), data, tasks, tmp_path, total_steps=7)
    curves = outcome.curves
    assert curves["probe_step"] == [3, 6, 7]
    assert len(curves["probe_tokens"]) == len(curves[PROBE]) == len(curves["probe/bigram_shift/f1"]) == 3
    assert curves["probe_tokens"] == sorted(curves["probe_tokens"]) and curves["probe_tokens"][0] > 0
    assert curves["probe/bigram_shift/last_token_accuracy"]  # the CLM view is a curve as well
    assert outcome.metrics[PROBE] == curves[PROBE][-1]


def test_intermediate_probes_do_not_change_the_training_run(tiny, tmp_path):
    _, data, tasks = tiny
    with_curves = train_probed(configured(tiny), data, tasks, tmp_path / "a", total_steps=7)
    end_only = train_probed(configured(tiny, eval_every=None), data, tasks, tmp_path / "b", total_steps=7)
    assert with_curves.curves["train_loss"] == end_only.curves["train_loss"]  # dropout draws untouched
    assert "probe_step" not in end_only.curves
    assert with_curves.metrics[PROBE] == end_only.metrics[PROBE]


@pytest.mark.slow
def test_a_run_interrupted_after_probe_checkpoints_resumes_with_exactly_one_point_each(tiny, tmp_path):
    _, data, tasks = tiny
    config = configured(tiny, eval_every=2)
    reference = train_probed(config, data, tasks, tmp_path / "whole", total_steps=8)

    def interrupt_at_seven(step, *_):
        if step == 7:  # after the probe at 6, which the last checkpoint (step 4) does not hold
            raise Interrupted

    with pytest.raises(Interrupted):
        train_probed(config, data, tasks, tmp_path / "cut", total_steps=8, on_step=interrupt_at_seven)
    resumed = train_probed(config, data, tasks, tmp_path / "cut", total_steps=8)
    assert resumed.curves["probe_step"] == reference.curves["probe_step"] == [2, 4, 6, 8]
    for name in ("probe_tokens", PROBE, "probe/bigram_shift/f1"):
        assert resumed.curves[name] == pytest.approx(reference.curves[name]), name
