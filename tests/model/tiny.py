"""Tiny shapes shared by the model tests (hidden 32, 2 heads, 2 layers, sequences of 12)."""

from __future__ import annotations

from mlmclm.config import ModelConfig, from_dict
from mlmclm.model import ATTENTION_MECHANISMS, Transformer

VOCAB_SIZE = 40
MAX_SEQ_LENGTH = 12
PAD_ID = 0
MECHANISMS = ATTENTION_MECHANISMS.names()
OBJECTIVES = ("mlm", "clm")


def tiny_config(**overrides) -> ModelConfig:
    """A tiny ModelConfig; ``overrides`` are the keys users write under ``model:`` (``exposb_num_buckets``)."""
    base = {
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 2,
        "intermediate_size": 64,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "exposb_num_buckets": 8,
        "exposb_max_distance": 10,
    }
    return from_dict(ModelConfig, {**base, **overrides}, "model.")


def tiny_model(objective: str, attention: str, **overrides):
    return Transformer(
        tiny_config(**overrides),
        objective=objective,
        attention=attention,
        vocab_size=VOCAB_SIZE,
        max_seq_length=MAX_SEQ_LENGTH,
        pad_token_id=PAD_ID,
    )
