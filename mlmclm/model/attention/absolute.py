"""``absolute``: fixed sinusoidal positions (Vaswani et al. 2017, "Attention Is All You Need", sec. 3.5).

PE(p, 2i) = sin(p / 10000^(2i/d)),  PE(p, 2i+1) = cos(p / 10000^(2i/d)), added to the token embeddings
(before BERT's embedding LayerNorm, so no √d scaling is needed). No trained position parameters.
"""

from __future__ import annotations

import math

import torch

from mlmclm.model.attention import ATTENTION_MECHANISMS
from mlmclm.model.attention.base import AttentionMechanism


def sinusoidal_positions(seq_len: int, dim: int, device: torch.device) -> torch.Tensor:
    """The ``[seq_len, dim]`` sinusoidal table of Vaswani et al. (2017), computed in float32."""
    positions = torch.arange(seq_len, dtype=torch.float32, device=device)[:, None]
    frequencies = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )
    table = torch.zeros(seq_len, dim, device=device)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies[: dim // 2])
    return table


@ATTENTION_MECHANISMS.register("absolute")
class SinusoidalPositions(AttentionMechanism):
    """Fixed sin/cos position vectors added to the token embeddings; they extrapolate to any length."""

    summary = "fixed sinusoidal absolute position encodings"

    def embed_positions(self, seq_len: int, device: torch.device) -> torch.Tensor:
        return sinusoidal_positions(seq_len, self.num_heads * self.head_dim, device)
