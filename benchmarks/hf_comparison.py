"""Training-step throughput of mlmclm's model against Hugging Face ``transformers`` at identical shapes.

Both models are BERT-style MLM encoders with the same width, depth, heads, FFN size, vocabulary and sequence
length; both get the same batches (15% of positions labelled) and the same AdamW step, under the same
precision. What differs is the implementation: mlmclm computes vocabulary logits only at the labelled
positions and uses PyTorch's fused SDPA kernels; ``BertForMaskedLM`` (``attn_implementation="sdpa"``)
projects every position onto the vocabulary.

    python benchmarks/hf_comparison.py                      # small CPU shapes
    python benchmarks/hf_comparison.py --device cuda --preset bert-base --bf16

Prints one line per model (tokens/s, ms/step, peak memory, model FLOP utilisation on CUDA when the peak
is known) and the speed-up. Timings are medians over the measured steps, after warm-up steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mlmclm.config import ModelConfig
from mlmclm.model import Transformer

PRESETS = {
    "tiny": {"hidden": 256, "layers": 4, "heads": 4, "ffn": 1024, "vocab": 8000, "seq": 128, "batch": 8},
    "bert-base": {"hidden": 768, "layers": 12, "heads": 12, "ffn": 3072, "vocab": 30522, "seq": 512, "batch": 32},
}
# Dense bf16 peak of known accelerators (TFLOP/s), for model FLOP utilisation.
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}


def make_batch(shape: dict, device: torch.device, generator: torch.Generator) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, shape["vocab"], (shape["batch"], shape["seq"]), generator=generator)
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(ids.shape, generator=generator) < 0.15
    labels[chosen] = ids[chosen]
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
    }


def ours(shape: dict, device: torch.device) -> tuple[torch.nn.Module, callable]:
    config = ModelConfig(
        hidden_size=shape["hidden"], num_layers=shape["layers"], num_heads=shape["heads"],
        intermediate_size=shape["ffn"], hidden_dropout=0.1, attention_dropout=0.1,
    )
    model = Transformer(
        config, objective="mlm", attention="standard", vocab_size=shape["vocab"],
        max_seq_length=shape["seq"], pad_token_id=0,
    ).to(device)
    return model, lambda batch: model.loss(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss


def huggingface(shape: dict, device: torch.device) -> tuple[torch.nn.Module, callable]:
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=shape["vocab"], hidden_size=shape["hidden"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], intermediate_size=shape["ffn"],
        max_position_embeddings=shape["seq"], attn_implementation="sdpa",
    )
    model = BertForMaskedLM(config).to(device)
    return model, lambda batch: model(**batch).loss


def measure(build, shape: dict, device: torch.device, dtype, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    model, loss_fn = build(shape, device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    generator = torch.Generator().manual_seed(0)
    batches = [make_batch(shape, device, generator) for _ in range(4)]
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(warmup + steps):
        batch = batches[step % len(batches)]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with autocast:
            loss = loss_fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    tokens = shape["batch"] * shape["seq"]
    params = sum(p.numel() for p in model.parameters())
    # 6 N per token for the weights plus 12 L T d for attention scores and values (Kaplan et al. 2020).
    flops = 6 * params * tokens + 12 * shape["layers"] * shape["seq"] * shape["hidden"] * tokens
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return {"tokens_per_s": tokens / seconds, "ms": seconds * 1e3, "flops_per_s": flops / seconds, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=list(PRESETS), default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both models")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    shape = PRESETS[args.preset]
    dtype = torch.bfloat16 if args.bf16 else None
    peak = None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = next((value for key, value in PEAK_TFLOPS.items() if key in name), None)
        print(f"device: {name}")
    print(f"shape: {shape}, precision: {'bf16' if dtype else 'fp32'}")
    results = {}
    for name, build in (("mlmclm", ours), ("transformers BertForMaskedLM", huggingface)):
        result = measure(build, shape, device, dtype, args.steps, args.warmup)
        results[name] = result
        mfu = f", MFU {result['flops_per_s'] / (peak * 1e12):.1%}" if peak and dtype else ""
        print(
            f"{name:<30} {result['tokens_per_s']:>12,.0f} tokens/s  {result['ms']:8.1f} ms/step  "
            f"peak {result['peak_gib']:.2f} GiB{mfu}"
        )
    speedup = results["mlmclm"]["tokens_per_s"] / results["transformers BertForMaskedLM"]["tokens_per_s"]
    print(f"speed-up of mlmclm over transformers: {speedup:.2f}x")


if __name__ == "__main__":
    main()
