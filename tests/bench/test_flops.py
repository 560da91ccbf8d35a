"""The MFU numerator: the FLOP count equals torch's own FLOP counter on mlmclm's training step."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mlmclm.bench.flops import gpu_peak_flops, step_flops
from mlmclm.bench.shapes import QUICK
from mlmclm.bench.twins import make_batches, mlmclm_contender, scored_positions


def counted_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def explicit_attention_flops(shape) -> int:
    """softmax(q kᵀ) v forward and backward written as matmuls, which the counter sees (CPU SDPA it does not)."""
    head_dim = shape.hidden // shape.heads
    q, k, v = (torch.randn(shape.batch, shape.heads, shape.seq, head_dim, requires_grad=True) for _ in range(3))
    return counted_flops(lambda: (torch.softmax(q @ k.transpose(-1, -2), -1) @ v).sum().backward())


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_step_flops_match_torch_flop_counter(objective):
    torch.manual_seed(0)
    model, loss_fn = mlmclm_contender(QUICK, objective, "standard", dropout=0.0).build(torch.device("cpu"))
    batch = make_batches(QUICK, objective, count=1)[0]
    counted = counted_flops(lambda: loss_fn(batch).backward())  # weights and head; CPU SDPA is not counted
    attention = QUICK.layers * explicit_attention_flops(QUICK)  # the full T x T
    causal = objective == "clm"
    expected = step_flops(QUICK, scored_positions([batch]), causal=causal)
    assert counted + attention * (0.5 if causal else 1.0) == pytest.approx(expected, rel=1e-9)


def test_gpu_peaks_by_name_and_precision():
    assert gpu_peak_flops("NVIDIA H200", low_precision=True) == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe", low_precision=True) == 756e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB", low_precision=False) == 19.5e12
    assert gpu_peak_flops("Tesla T4", low_precision=True) is None
