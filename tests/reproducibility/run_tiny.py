"""Run the committed tiny experiment in the current directory and print (or save) its reproducible numbers.

From the repository root, ``python tests/reproducibility/run_tiny.py`` prints them (outputs go to
``tiny_outputs/``); ``--write-expected`` regenerates ``expected_tiny.json`` (do that only when a change is
meant to change the numbers, and say so in the commit). Everything that depends on the computation is
kept; wall-clock time, throughput and memory are dropped.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from pathlib import Path

import tokenizers
import torch

from mlmclm.components import resolve_config
from mlmclm.grid.runner import run_grid

HERE = Path(__file__).resolve().parent
TIMING = {"train_time_s", "tokens_per_s", "peak_memory_mb", "wall_time_s"}


def cpu_model() -> str:
    """The CPU's model name: the same vector unit on another vendor's CPU (measured: AMD EPYC against the
    machine that wrote expected_tiny.json before 2026-12-05) rounds some kernels differently (~1e-7)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def reproducible_view(raw: dict) -> dict:
    runs = {
        run["run_id"]: {
            "status": run["status"],
            "data_hash": run["data_hash"],
            "tokenizer_hash": run["tokenizer_hash"],
            "metrics": {k: v for k, v in run["metrics"].items() if k not in TIMING},
            "curves": {k: v for k, v in run["curves"].items() if k not in TIMING},
        }
        for run in raw["runs"]
    }
    return {
        # what bit-identical numbers depend on: kernels (torch release, the CPU's vector unit) and tokenizer format
        "versions": {
            "torch": torch.__version__.split("+")[0],  # the CPU kernels of the +cpu and CUDA wheels are the same
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_model": cpu_model(),  # same AVX512, another vendor's CPU: GEMM kernels rounded differently
            "machine": platform.machine(),
            "tokenizers": tokenizers.__version__,
        },
        "corpus_sha256": raw["data"]["corpus_sha256"],
        "tokenizer_sha256": raw["data"]["tokenizer_sha256"],
        "runs": runs,
    }


def main() -> None:
    torch.set_num_threads(1)
    if "--write-expected" in sys.argv:  # a stale tiny_outputs/ would be resumed and give the old numbers
        shutil.rmtree("tiny_outputs", ignore_errors=True)
    config = resolve_config(HERE / "tiny.yaml", overrides={"output_dir": "tiny_outputs"})
    view = reproducible_view(json.loads(run_grid(config, "run_tiny", quiet=True).read_text()))
    text = json.dumps(view, indent=2, sort_keys=True) + "\n"
    if "--write-expected" in sys.argv:
        (HERE / "expected_tiny.json").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
