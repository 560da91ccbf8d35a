"""The transformer shared by both objectives, its attention mechanisms, saving/loading and export."""

from __future__ import annotations

from mlmclm.model.attention import ATTENTION_MECHANISMS, AttentionMechanism
from mlmclm.model.serialization import load_model, save_model
from mlmclm.model.transformer import LossOutput, Transformer

__all__ = [
    "ATTENTION_MECHANISMS",
    "AttentionMechanism",
    "LossOutput",
    "Transformer",
    "load_model",
    "save_model",
]
