"""The chunked linear cross-entropy equals the unfused one: loss, correct count and every gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mlmclm.model.fused_loss import linear_cross_entropy


@pytest.mark.parametrize("rows, chunk", [(37, 8), (37, 256), (0, 8)])
def test_chunked_linear_cross_entropy_matches_unfused(rows, chunk):
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(rows, 16, generator=generator, requires_grad=True)
    weight = torch.randn(50, 16, generator=generator, requires_grad=True)
    bias = torch.randn(50, generator=generator, requires_grad=True)
    targets = torch.randint(0, 50, (rows,), generator=generator)
    logits = F.linear(hidden, weight, bias)
    targets[:5] = logits.argmax(-1)[:5]  # some correct predictions, so the count is tested beyond zero
    expected = F.cross_entropy(logits, targets, reduction="sum")
    expected_grads = torch.autograd.grad(expected * 3.0, (hidden, weight, bias))

    loss, correct = linear_cross_entropy(hidden, weight, bias, targets, chunk_rows=chunk)
    grads = torch.autograd.grad(loss * 3.0, (hidden, weight, bias))  # a scaled upstream gradient
    torch.testing.assert_close(loss, expected)
    assert int(correct) == int((logits.argmax(-1) == targets).sum())
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_without_gradients_it_only_scores():
    hidden, weight, bias = torch.randn(6, 4), torch.randn(9, 4), torch.zeros(9)
    targets = torch.arange(6)
    loss, _ = linear_cross_entropy(hidden, weight, bias, targets, chunk_rows=4)
    torch.testing.assert_close(loss, F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction="sum"))
    assert not loss.requires_grad
