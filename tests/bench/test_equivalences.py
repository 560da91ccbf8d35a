"""The bench's equivalences: padding costs FLOPs but never changes the loss, and compiling changes nothing.

The padding test: a right-padded batch gives the same loss and gradients as each sequence run alone, unpadded,
at its own length. (The padding-free packed path, ``data.packing``, is checked against padded batches in
tests/model/test_packing.py.) The bench's own loss says its batches have no padding, so the test scores the
padded batch through ``Transformer.loss`` with its mask read as padding.
"""

from __future__ import annotations

import pytest
import torch

from mlmclm.bench.shapes import QUICK
from mlmclm.bench.twins import make_batches, mlmclm_contender

LENGTHS = (32, 20, 9, 27)  # QUICK has batch 4, seq 32: one full sequence, three padded ones


def _padded_batch(objective: str) -> dict[str, torch.Tensor]:
    batch = make_batches(QUICK, objective, count=1, seed=3)[0]
    for row, length in enumerate(LENGTHS):
        batch["input_ids"][row, length:] = 0
        batch["attention_mask"][row, length:] = 0
        batch["labels"][row, length - (objective == "clm"):] = -100  # CLM: the last real token has no target
    return batch


def _loss_and_grads(model, loss_fn, batch):
    model.zero_grad(set_to_none=True)
    loss = loss_fn(batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("attention", ["standard", "rope", "alibi", "stickbreaking"])
@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_padded_batch_equals_each_sequence_unpadded(objective, attention):
    torch.manual_seed(0)
    model, _ = mlmclm_contender(QUICK, objective, attention, dropout=0.0).build(torch.device("cpu"))

    def loss_fn(b):
        return model.loss(b["input_ids"], b["attention_mask"], b["labels"]).loss

    batch = _padded_batch(objective)
    padded_loss, padded_grads = _loss_and_grads(model, loss_fn, batch)

    scored = (batch["labels"] != -100).sum(dim=1)
    total, summed = int(scored.sum()), {}
    expected_loss = torch.zeros(())
    for row, length in enumerate(LENGTHS):
        alone = {k: v[row : row + 1, :length] for k, v in batch.items()}
        loss, grads = _loss_and_grads(model, loss_fn, alone)
        weight = int(scored[row]) / total  # the batch loss is the mean over all scored positions
        expected_loss += loss * weight
        for name, grad in grads.items():
            summed[name] = summed.get(name, 0) + grad * weight
    torch.testing.assert_close(padded_loss, expected_loss, rtol=1e-5, atol=1e-6)
    for name, grad in summed.items():
        torch.testing.assert_close(padded_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow  # inductor compiles C++ kernels: tens of seconds on 2 cores
@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_compiled_loss_equals_eager(objective):
    pytest.importorskip("torch._inductor")
    torch.manual_seed(0)
    model, loss_fn = mlmclm_contender(QUICK, objective, "standard", dropout=0.0).build(torch.device("cpu"))
    batch = make_batches(QUICK, objective, count=1, seed=1)[0]
    eager_loss, eager_grads = _loss_and_grads(model, loss_fn, batch)
    compiled_loss, compiled_grads = _loss_and_grads(model, torch.compile(loss_fn), batch)
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-4, atol=1e-5)
    for name, grad in eager_grads.items():
        torch.testing.assert_close(compiled_grads[name], grad, rtol=1e-3, atol=1e-5, msg=name)
