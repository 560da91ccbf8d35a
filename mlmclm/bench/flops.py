"""Model FLOPs of one training step, and the peak they are measured against (model FLOP utilisation).

Counted as the work the *model* needs, identically for every implementation (PaLM's MFU, Chowdhery et al.
2022, App. B), so MFU ratios equal throughput ratios and no implementation is credited for wasted work:

* weights: 6 FLOPs per token and matmul weight (2 forward, 4 backward; Kaplan et al. 2020, sec. 2.1), over
  the non-embedding matmuls of every block, 4·d² + 2·d·f per layer;
* attention scores and values: 12·L·T·d per token (2 matmuls of 2·T·d forward, twice that backward); halved
  for causal models, whose fused kernels (flash attention on CUDA and CPU) skip the blocks above the diagonal
  and whose masked half is no model work in any case;
* the prediction head (dense d², vocabulary projection d·V) only at the positions that are scored: the
  labelled ~15% under MLM, T − 1 per sequence under CLM. ``BertForMaskedLM`` runs its head on every position;
  that extra work is real time but not model FLOPs.

Embedding lookups, LayerNorm, GELU, softmax and the optimizer are not counted (they are not matmuls).
"""

from __future__ import annotations

import time

import torch

from mlmclm.bench.shapes import BenchShape

# Dense peak TFLOP/s by device-name fragment, most specific first: (bf16/fp16 tensor core, fp32 non-tensor).
# From the vendors' data sheets (H100/H200 SXM: 989 / 67; H100 PCIe: 756 / 51; A100: 312 / 19.5).
GPU_PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
    ("H200", 989.0, 67.0),
    ("H100 PCIe", 756.0, 51.0),
    ("H100", 989.0, 67.0),
    ("A100", 312.0, 19.5),
)


def step_flops(shape: BenchShape, scored_positions: float, causal: bool) -> float:
    """Model FLOPs of one forward + backward over ``shape.batch`` sequences with ``scored_positions`` heads."""
    d, f, layers, seq = shape.hidden, shape.ffn, shape.layers, shape.seq
    block_weights = layers * (4 * d * d + 2 * d * f)
    attention = 12 * layers * seq * d * (0.5 if causal else 1.0)
    head_weights = d * d + d * shape.vocab
    return 6 * block_weights * shape.tokens + attention * shape.tokens + 6 * head_weights * scored_positions


def gpu_peak_flops(device_name: str, low_precision: bool) -> float | None:
    """The card's dense peak in FLOP/s, or None for a card not in the table (MFU is then not reported)."""
    for fragment, tensor_core, fp32 in GPU_PEAK_TFLOPS:
        if fragment in device_name:
            return (tensor_core if low_precision else fp32) * 1e12
    return None


def measured_cpu_peak_flops(dtype: torch.dtype = torch.float32, size: int = 1024, repeats: int = 5) -> float:
    """The best FLOP/s of a square ``torch.mm`` with this process's threads: the CPU's practical peak."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)  # warm-up: thread pool and kernels
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best
