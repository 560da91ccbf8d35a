"""The training tests' tiny experiment: one layer of 16, no dropout, 300 documents, prepared once per module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlmclm.components import resolve_config
from mlmclm.data import prepare_data


def tiny_experiment(cache_dir: Path, *, data: dict[str, Any] | None = None, training: dict[str, Any] | None = None):
    """(config, prepared data) of the tiny experiment; ``data``/``training`` add or change those settings."""
    overrides = {
        "device": "cpu",
        "data": {"max_documents": 300, "vocab_size": 300, "max_seq_length": 32, "cache_dir": str(cache_dir),
                 **(data or {})},
        "model": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32,
                  "hidden_dropout": 0.0, "attention_dropout": 0.0},
        "training": {"learning_rate": 1e-3, "eval_max_batches": 2, **(training or {})},
        "probes": {"enabled": False},
    }
    config = resolve_config(overrides=overrides)
    return config, prepare_data(config)
