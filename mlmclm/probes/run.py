"""Score a pre-trained encoder on the probe tasks: the objective-neutral yardstick for MLM versus CLM.

MLM and CLM losses measure different tasks, so neither loss can compare the two objectives. Every run is
therefore scored on the same probe tasks with the same protocol, and the primary metrics
``probe/<task>/accuracy`` and ``probe/<task>/f1`` (macro-F1) use mean-pooled representations for both
objectives. CLM runs also report the last-token view (``probe/<task>/last_token_accuracy``,
``probe/<task>/last_token_f1``), the representation a causal model is usually read out from.

A contrast task (``ProbeExample.contrast``, e.g. ``word_order``) is read through difference features,
representation(text) - representation(contrast), in every view, for both baselines and in fine-tuning.

In linear mode two validity baselines (:mod:`mlmclm.probes.baselines`) come with every task:
``probe/<task>/random_init_accuracy`` (the same probe on the run's untrained encoder),
``probe/<task>/gain_over_random_init`` (accuracy minus it), ``probe/<task>/control_accuracy`` (a control
task with labels fixed by input type) and ``probe/<task>/selectivity`` (accuracy minus control accuracy).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from tokenizers import Tokenizer

from mlmclm.probe_metrics import PROBE_BASELINES, is_probe_baseline
from mlmclm.probes.baselines import control_is_learnable, control_labels
from mlmclm.probes.classifiers import ProbeScore, TokenizedSplits, finetune_probe, fit_logistic_probe
from mlmclm.probes.examples import ProbeExample, ProbeTask
from mlmclm.probes.features import encode_examples, frozen_representations, special_token_id

if TYPE_CHECKING:
    from mlmclm.config import ProbeConfig

logger = logging.getLogger(__name__)

_METRIC_PREFIX = {"mean": "", "last_token": "last_token_"}
BASELINE_METRICS = PROBE_BASELINES


@dataclass(frozen=True)
class ProbeResults:
    """A run's probe metrics, and per task which test items the mean-pooled probe got right.

    ``items[task]`` is a string of ``0``/``1``, one character per test item in the task's fixed test order
    (the run record's ``probe_items``; docs/raw_results.schema.json)."""

    metrics: dict[str, float] = field(default_factory=dict)
    items: dict[str, str] = field(default_factory=dict)


def correctness_string(score: ProbeScore) -> str:
    return "".join("1" if hit else "0" for hit in score.correct)


is_baseline_metric = is_probe_baseline


def probe_metric_names(tasks: Iterable[ProbeTask | str]) -> list[str]:
    """The primary like-for-like metric names (mean-pooled accuracy and macro-F1), in task order."""
    names = [task if isinstance(task, str) else task.name for task in tasks]
    return [f"probe/{name}/{metric}" for name in names for metric in ("accuracy", "f1")]


def _metrics(task_name: str, pooling: str, score: ProbeScore) -> dict[str, float]:
    prefix = _METRIC_PREFIX[pooling]
    return {
        f"probe/{task_name}/{prefix}accuracy": score.accuracy,
        f"probe/{task_name}/{prefix}f1": score.f1,
    }


def _groups(task: ProbeTask) -> np.ndarray | None:
    """The source documents of the train examples, when the task knows them (see ProbeExample.group)."""
    groups = [example.group for example in task.train]
    return None if any(group is None for group in groups) else np.array(groups)


def tokenized_splits(tokenizer: Tokenizer, task: ProbeTask, max_length: int) -> TokenizedSplits:
    """Token ids of a task's splits; a contrast task's contrasts are encoded on their own, as ``[CLS] c [SEP]``."""

    def contrasts(examples: list[ProbeExample]) -> list[list[int]] | None:
        if not task.is_contrast:
            return None
        return encode_examples(tokenizer, [ProbeExample(e.contrast or "", e.label) for e in examples], max_length)

    return TokenizedSplits(
        train_sequences=encode_examples(tokenizer, task.train, max_length),
        train_labels=np.array([example.label for example in task.train]),
        test_sequences=encode_examples(tokenizer, task.test, max_length),
        test_labels=np.array([example.label for example in task.test]),
        num_labels=task.num_labels,
        train_contrast=contrasts(task.train),
        test_contrast=contrasts(task.test),
    )


def probe_features(
    model: torch.nn.Module,
    sequences: Sequence[list[int]],
    contrast: Sequence[list[int]] | None,
    pad_id: int,
    device: torch.device,
    batch_size: int,
    poolings: Sequence[str],
) -> dict[str, np.ndarray]:
    """Frozen features per pooling: representation(text), or representation(text) - representation(contrast).

    The difference cancels what a minimal pair shares and is antisymmetric (swapping the two negates it), so
    an encoder that cannot tell the two apart gives zero features and a probe at chance. Both sides go
    through one pass, so batching by length pairs a sentence with its (usually equally long) contrast.
    """
    if contrast is None:
        return frozen_representations(model, sequences, pad_id, device, batch_size, poolings)
    both = frozen_representations(model, [*sequences, *contrast], pad_id, device, batch_size, poolings)
    n = len(sequences)
    return {name: features[:n] - features[n:] for name, features in both.items()}


def run_probes(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    tasks: list[ProbeTask],
    probe_cfg: ProbeConfig,
    device: str | torch.device,
    batch_size: int = 64,
    random_init: torch.nn.Module | None = None,
) -> dict[str, float]:
    """Probe metrics of ``model`` on every task (see :func:`run_probes_detailed`)."""
    return run_probes_detailed(model, tokenizer, tasks, probe_cfg, device, batch_size, random_init).metrics


def run_probes_detailed(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    tasks: list[ProbeTask],
    probe_cfg: ProbeConfig,
    device: str | torch.device,
    batch_size: int = 64,
    random_init: torch.nn.Module | None = None,
) -> ProbeResults:
    """Probe metrics and per-item correctness of ``model``; its weights and train/eval mode are left as found.

    ``model`` must follow the model contract (``encode``, ``config["objective"]``,
    ``config["max_seq_length"]``) and already live on ``device``. In linear mode the frozen representations
    of each task are computed once, in eval mode under ``torch.no_grad()``, and shared by both views and the
    control task; ``random_init`` (the untrained encoder of the same shape, on ``device``) adds the
    random-init baseline from one more feature pass, mean-pooled only.
    """
    if not tasks:
        return ProbeResults()
    device = torch.device(device)
    poolings = ("mean", "last_token") if model.config["objective"] == "clm" else ("mean",)
    max_length = int(model.config["max_seq_length"])
    pad_id = special_token_id(tokenizer, "pad")
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    items: dict[str, str] = {}
    try:
        for task in tasks:
            started = time.perf_counter()
            splits = tokenized_splits(tokenizer, task, max_length)
            if probe_cfg.mode == "linear":
                train = probe_features(model, splits.train_sequences, splits.train_contrast, pad_id, device,
                                       batch_size, poolings)
                test = probe_features(model, splits.test_sequences, splits.test_contrast, pad_id, device,
                                      batch_size, poolings)
                groups = _groups(task)
                for pooling in poolings:
                    score = fit_logistic_probe(
                        train[pooling],
                        splits.train_labels,
                        test[pooling],
                        splits.test_labels,
                        probe_cfg.seed,
                        train_groups=groups,
                    )
                    metrics.update(_metrics(task.name, pooling, score))
                    if pooling == "mean":
                        items[task.name] = correctness_string(score)
                metrics.update(_baselines(task, splits, train["mean"], test["mean"], metrics, probe_cfg, groups))
                if random_init is not None:
                    metrics.update(
                        _random_init_baseline(random_init, task, splits, pad_id, device, batch_size, probe_cfg, metrics)
                    )
            else:
                for pooling in poolings:
                    score = finetune_probe(
                        model,
                        splits,
                        pooling,
                        pad_id=pad_id,
                        device=device,
                        eval_batch_size=batch_size,
                        epochs=probe_cfg.finetune_epochs,
                        learning_rate=probe_cfg.finetune_learning_rate,
                        seed=probe_cfg.seed,
                    )
                    metrics.update(_metrics(task.name, pooling, score))
                    if pooling == "mean":
                        items[task.name] = correctness_string(score)
            logger.debug(
                "probe %s (%s, %d train / %d test): accuracy %.3f in %.1fs",
                task.name,
                probe_cfg.mode,
                len(task.train),
                len(task.test),
                metrics[f"probe/{task.name}/accuracy"],
                time.perf_counter() - started,
            )
    finally:
        model.train(was_training)
    return ProbeResults(metrics, items)


def _baselines(
    task: ProbeTask,
    splits: TokenizedSplits,
    train_features: np.ndarray,
    test_features: np.ndarray,
    metrics: dict[str, float],
    probe_cfg: ProbeConfig,
    groups: np.ndarray | None,
) -> dict[str, float]:
    """The control task on the trained encoder's mean-pooled features, and the selectivity it gives."""
    train_labels, test_labels = control_labels(task.train, task.test, task.num_labels, probe_cfg.seed, task.name)
    if not control_is_learnable(train_labels):
        logger.info("probe %s: the control task has a single label; no control accuracy", task.name)
        return {}
    control = fit_logistic_probe(
        train_features, train_labels, test_features, test_labels, probe_cfg.seed, train_groups=groups
    ).accuracy
    return {
        f"probe/{task.name}/control_accuracy": control,
        f"probe/{task.name}/selectivity": metrics[f"probe/{task.name}/accuracy"] - control,
    }


def _random_init_baseline(
    random_init: torch.nn.Module,
    task: ProbeTask,
    splits: TokenizedSplits,
    pad_id: int,
    device: torch.device,
    batch_size: int,
    probe_cfg: ProbeConfig,
    metrics: dict[str, float],
) -> dict[str, float]:
    """The same linear probe on the untrained encoder's mean-pooled features."""
    was_training = random_init.training
    random_init.eval()
    try:
        train = probe_features(random_init, splits.train_sequences, splits.train_contrast, pad_id, device,
                               batch_size, ("mean",))
        test = probe_features(random_init, splits.test_sequences, splits.test_contrast, pad_id, device,
                              batch_size, ("mean",))
    finally:
        random_init.train(was_training)
    accuracy = fit_logistic_probe(
        train["mean"], splits.train_labels, test["mean"], splits.test_labels, probe_cfg.seed,
        train_groups=_groups(task),
    ).accuracy
    return {
        f"probe/{task.name}/random_init_accuracy": accuracy,
        f"probe/{task.name}/gain_over_random_init": metrics[f"probe/{task.name}/accuracy"] - accuracy,
    }
