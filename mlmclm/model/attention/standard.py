"""``standard``: BERT's learned absolute position embeddings (Devlin et al. 2019) with softmax attention."""

from __future__ import annotations

import torch
from torch import nn

from mlmclm.config import ModelConfig
from mlmclm.errors import UserError
from mlmclm.model.attention.base import ATTENTION_MECHANISMS, AttentionMechanism, TokenLayout


@ATTENTION_MECHANISMS.register("standard")
class LearnedAbsolutePositions(AttentionMechanism):
    """One trained vector per position 0..max_seq_length-1, added to the token embeddings."""

    summary = "learned absolute position embeddings"
    extrapolates = False  # positions beyond the trained table have no vector: longer inputs are refused

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        self.position_embeddings = nn.Embedding(max_seq_length, config.hidden_size)

    def embed_positions(self, layout: TokenLayout) -> torch.Tensor:
        seq_len = layout.seq_len
        if seq_len > self.max_seq_length:
            raise UserError(
                f"sequence length {seq_len} exceeds the {self.max_seq_length} learned positions of this "
                "'standard' model; truncate the input or train with a larger data.max_seq_length"
            )
        return layout.per_token(self.position_embeddings.weight[:seq_len])
