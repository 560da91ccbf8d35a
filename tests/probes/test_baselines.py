"""Probe-validity baselines: the random-init encoder, the control task (Hewitt & Liang, 2019), item records."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from mlmclm.config import ProbeConfig
from mlmclm.probes import build_probe_tasks, run_probes_detailed
from mlmclm.probes.baselines import control_labels, input_type
from mlmclm.probes.examples import ProbeExample
from mlmclm.probes.run import BASELINE_METRICS, is_baseline_metric


@pytest.fixture(scope="module")
def word_content(corpus):
    cfg = ProbeConfig(examples_per_task=200, tasks=["word_content"])
    return build_probe_tasks(corpus["heldout"], corpus["training"], cfg)


class ConstantEncoder(torch.nn.Module):
    """An encoder whose features carry no information about the input (every sentence looks the same)."""

    def __init__(self, template: torch.nn.Module) -> None:
        super().__init__()
        self.config = dict(template.config)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return torch.ones(*input_ids.shape, self.config["hidden_size"])


def test_every_task_gets_the_baselines_and_their_differences(make_encoder, tokenizer, word_content, probe_cfg):
    model = make_encoder("mlm")
    result = run_probes_detailed(model, tokenizer, word_content, probe_cfg, "cpu", random_init=make_encoder("mlm"))
    m = result.metrics
    for name in BASELINE_METRICS:
        assert f"probe/word_content/{name}" in m
    assert m["probe/word_content/gain_over_random_init"] == pytest.approx(
        m["probe/word_content/accuracy"] - m["probe/word_content/random_init_accuracy"]
    )
    assert m["probe/word_content/selectivity"] == pytest.approx(
        m["probe/word_content/accuracy"] - m["probe/word_content/control_accuracy"]
    )
    assert all(is_baseline_metric(f"probe/word_content/{name}") for name in BASELINE_METRICS)
    assert not is_baseline_metric("probe/word_content/accuracy")


def test_random_init_baseline_separates_a_trained_encoder_from_an_uninformative_one(
    make_encoder, tokenizer, word_content, probe_cfg
):
    """Same weights as the 'random init': zero gain. An encoder blind to its input: gain far above zero."""
    model = make_encoder("mlm")
    same = run_probes_detailed(model, tokenizer, word_content, probe_cfg, "cpu", random_init=copy.deepcopy(model))
    assert same.metrics["probe/word_content/gain_over_random_init"] == 0.0
    blind = run_probes_detailed(model, tokenizer, word_content, probe_cfg, "cpu", random_init=ConstantEncoder(model))
    chance = word_content[0].chance_accuracy()
    assert blind.metrics["probe/word_content/random_init_accuracy"] == pytest.approx(chance, abs=0.05)
    assert blind.metrics["probe/word_content/gain_over_random_init"] > 0.15  # chance is 0.1


def test_control_task_is_near_chance_on_a_tiny_encoder_while_the_real_task_is_not(
    make_encoder, tokenizer, word_content, probe_cfg
):
    """Labels fixed by first-word type carry no task signal: the control accuracy stays near its majority rate
    (within two binomial standard errors) while the task itself is learned, so selectivity is clearly positive."""
    result = run_probes_detailed(make_encoder("mlm"), tokenizer, word_content, probe_cfg, "cpu")
    task = word_content[0]
    _, test_labels = control_labels(task.train, task.test, task.num_labels, probe_cfg.seed, task.name)
    majority = np.bincount(test_labels).max() / test_labels.size
    error = np.sqrt(majority * (1 - majority) / test_labels.size)
    assert result.metrics["probe/word_content/control_accuracy"] <= majority + 2 * error
    assert result.metrics["probe/word_content/selectivity"] > 0.1
    blind = run_probes_detailed(ConstantEncoder(make_encoder("mlm")), tokenizer, word_content, probe_cfg, "cpu")
    assert blind.metrics["probe/word_content/control_accuracy"] <= majority + 1e-9


def test_item_record_has_one_character_per_test_item_and_averages_to_the_accuracy(
    make_encoder, tokenizer, word_content, probe_cfg
):
    result = run_probes_detailed(make_encoder("mlm"), tokenizer, word_content, probe_cfg, "cpu")
    items = result.items["word_content"]
    assert len(items) == len(word_content[0].test) and set(items) <= {"0", "1"}
    assert items.count("1") / len(items) == pytest.approx(result.metrics["probe/word_content/accuracy"])


def test_control_labels_are_a_fixed_function_of_the_input_type():
    train = [ProbeExample(f"{word} rest of sentence {i}", i % 2) for i, word in enumerate(["Alpha", "beta"] * 20)]
    test = [ProbeExample("alpha again", 0), ProbeExample("Beta again", 1), ProbeExample("alpha third", 1)]
    train_labels, test_labels = control_labels(train, test, 2, seed=0, task_name="t")
    by_type: dict[str, set[int]] = {}
    for example, label in zip([*train, *test], [*train_labels, *test_labels], strict=True):
        by_type.setdefault(input_type(example), set()).add(int(label))
    assert all(len(labels) == 1 for labels in by_type.values())
    again = control_labels(train, test, 2, seed=0, task_name="t")
    assert np.array_equal(again[0], train_labels) and np.array_equal(again[1], test_labels)
