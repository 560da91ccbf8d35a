"""Score a pre-trained encoder on the probe tasks: the objective-neutral yardstick for MLM versus CLM.

MLM and CLM losses measure different tasks, so neither loss can compare the two objectives. Every run is
therefore scored on the same probe tasks with the same protocol, and the primary metrics
``probe/<task>/accuracy`` and ``probe/<task>/f1`` (macro-F1) use mean-pooled representations for both
objectives. CLM runs also report the last-token view (``probe/<task>/last_token_accuracy``,
``probe/<task>/last_token_f1``), the representation a causal model is usually read out from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from tokenizers import Tokenizer

from mlmclm.probes.classifiers import ProbeScore, TokenizedSplits, finetune_probe, fit_logistic_probe
from mlmclm.probes.examples import ProbeTask
from mlmclm.probes.features import encode_examples, frozen_representations, special_token_id

if TYPE_CHECKING:
    from mlmclm.config import ProbeConfig

logger = logging.getLogger(__name__)

_METRIC_PREFIX = {"mean": "", "last_token": "last_token_"}


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


def run_probes(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    tasks: list[ProbeTask],
    probe_cfg: ProbeConfig,
    device: str | torch.device,
    batch_size: int = 64,
) -> dict[str, float]:
    """Probe metrics of ``model`` on every task; the model's weights and train/eval mode are left as found.

    ``model`` must follow the model contract (``encode``, ``config["objective"]``,
    ``config["max_seq_length"]``) and already live on ``device``. In linear mode the frozen representations
    of each task are computed once, in eval mode under ``torch.no_grad()``, and shared by both views.
    """
    if not tasks:
        return {}
    device = torch.device(device)
    poolings = ("mean", "last_token") if model.config["objective"] == "clm" else ("mean",)
    max_length = int(model.config["max_seq_length"])
    pad_id = special_token_id(tokenizer, "pad")
    was_training = model.training
    model.eval()
    metrics: dict[str, float] = {}
    try:
        for task in tasks:
            started = time.perf_counter()
            splits = TokenizedSplits(
                train_sequences=encode_examples(tokenizer, task.train, max_length),
                train_labels=np.array([example.label for example in task.train]),
                test_sequences=encode_examples(tokenizer, task.test, max_length),
                test_labels=np.array([example.label for example in task.test]),
                num_labels=task.num_labels,
            )
            if probe_cfg.mode == "linear":
                train = frozen_representations(
                    model, splits.train_sequences, pad_id, device, batch_size, poolings
                )
                test = frozen_representations(
                    model, splits.test_sequences, pad_id, device, batch_size, poolings
                )
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
    return metrics
