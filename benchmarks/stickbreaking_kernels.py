"""One stick-breaking attention layer's forward + backward, reference vs blocked kernel (issue 14), on CPU.

Run one kernel per process, so that the peak resident memory (``ru_maxrss``) belongs to that kernel alone:

    for kernel in reference blocked; do python benchmarks/stickbreaking_kernels.py --kernel $kernel; done

Prints the bytes autograd keeps for backward (distinct storages, via ``saved_tensors_hooks``), the growth of
the peak resident set over the first step (what the step needed beyond its inputs), and the median time of
the following steps. A single layer: in a model, the saved bytes repeat per layer, the transient peak does not.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from mlmclm.config import ModelConfig
from mlmclm.model.attention import ATTENTION_MECHANISMS
from mlmclm.model.attention.base import TokenLayout


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", choices=("reference", "blocked"), required=True)
    parser.add_argument("--causal", action="store_true")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=3)
    return parser.parse_args()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def main() -> None:
    args = parse()
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=args.heads * args.head_dim, num_heads=args.heads).replace(
        stickbreaking_kernel=args.kernel, stickbreaking_block_size=args.block_size
    )
    mechanism = ATTENTION_MECHANISMS.get("stickbreaking")(config, max_seq_length=args.seq, causal=args.causal)
    state = mechanism.prepare(TokenLayout(args.seq, torch.device("cpu")))
    shape = (args.batch, args.heads, args.seq, args.head_dim)
    q, k, v = (torch.randn(shape, requires_grad=True) for _ in range(3))
    upstream = torch.randn(shape)
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    def step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state) -> None:
        out = mechanism.attend(q, k, v, state, args.dropout)
        torch.autograd.grad(out, (q, k, v), upstream[..., : q.shape[-2], :])

    small = 2 * args.block_size + 1  # load every operator's code first, so that RSS growth is the step's data
    step(*(t[..., :small, :].detach().requires_grad_() for t in (q, k, v)),
         mechanism.prepare(TokenLayout(small, torch.device("cpu"))))
    before = peak_rss_mb()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step(q, k, v, state)
    growth = peak_rss_mb() - before
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step(q, k, v, state)
        times.append(time.perf_counter() - start)
    print(
        f"{args.kernel:9} causal={args.causal!s:5} B={args.batch} H={args.heads} T={args.seq} d={args.head_dim} "
        f"block={args.block_size} dropout={args.dropout}: saved for backward {sum(saved.values()) / 2**20:.1f} MiB, "
        f"peak RSS growth {growth:.1f} MiB, fwd+bwd {statistics.median(times) * 1e3:.0f} ms "
        f"(median of {args.steps}, {torch.get_num_threads()} thread(s))"
    )


if __name__ == "__main__":
    main()
