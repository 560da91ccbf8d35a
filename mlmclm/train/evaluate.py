"""Token-weighted evaluation on a fixed list of batches (fixed masks / windows, so runs are comparable)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mlmclm.data.batches import model_inputs
from mlmclm.train.device import Precision


@dataclass(frozen=True)
class EvalResult:
    loss: float
    accuracy: float
    perplexity: float
    num_predicted: int


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], device: torch.device, precision: Precision
) -> EvalResult:
    """Mean cross-entropy per scored token, accuracy of the argmax prediction and perplexity = exp(loss)."""
    was_training = model.training
    model.eval()
    # Per-batch sums stay on the device and are read once at the end: no host sync per batch.
    loss_sums, correct = [], []
    predicted = 0
    for batch in batches:
        predicted += int((batch["labels"] != -100).sum())  # counted on the CPU batch
        inputs = model_inputs(batch, device)  # hybrids' batches name their attention mask, packed ones their rows
        with precision.autocast(device):
            out = model.loss(**inputs)
        loss_sums.append(out.loss.detach().float() * out.num_predicted)
        correct.append(out.num_correct)
    model.train(was_training)
    if predicted == 0:
        return EvalResult(math.nan, math.nan, math.nan, 0)
    loss = float(torch.stack(loss_sums).cpu().double().sum()) / predicted
    accuracy = int(torch.stack(correct).sum()) / predicted
    return EvalResult(loss, accuracy, math.exp(min(loss, 700.0)), predicted)


def majority_token_accuracy(batches: list[dict[str, torch.Tensor]]) -> float:
    """Accuracy of predicting one token everywhere, the most frequent target of these very batches.

    The unigram-frequency baseline of :func:`evaluate`'s accuracy, scored on the same positions: no constant
    prediction (the training unigram mode included) does better, so a model whose accuracy does not exceed it
    has learned nothing beyond token frequencies. It depends only on the data, so every run of an objective
    that shares the evaluation batches gets the same value."""
    targets = torch.cat([batch["labels"][batch["labels"] != -100].flatten() for batch in batches])
    if targets.numel() == 0:
        return math.nan
    return int(torch.bincount(targets).max()) / targets.numel()
