"""Token-weighted evaluation on a fixed list of batches (fixed masks / windows, so runs are comparable)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

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
    total_loss = 0.0
    correct = 0
    predicted = 0
    for batch in batches:
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        with precision.autocast(device):
            out = model.loss(batch["input_ids"], batch["attention_mask"], batch["labels"])
        n = int(out.num_predicted)
        total_loss += float(out.loss) * n
        correct += int(out.num_correct)
        predicted += n
    model.train(was_training)
    if predicted == 0:
        return EvalResult(math.nan, math.nan, math.nan, 0)
    loss = total_loss / predicted
    return EvalResult(loss, correct / predicted, math.exp(min(loss, 700.0)), predicted)
