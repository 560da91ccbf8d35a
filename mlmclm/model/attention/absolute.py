"""``absolute``: fixed sinusoidal positions (Vaswani et al. 2017, "Attention Is All You Need", sec. 3.5).

PE(p, 2i) = sin(p / 10000^(2i/d)),  PE(p, 2i+1) = cos(p / 10000^(2i/d)), scaled by s = √2 · σ (σ =
``model.initializer_range``) and added to the token embeddings. No trained position parameters.

Why the scale: the embedding LayerNorm that follows removes the overall size of token + position but not
their ratio. The raw table has entries of root-mean-square 1/√2 (norm √(d/2) ≈ 19.6 at d = 768), while the
token embeddings start as N(0, σ²) (norm σ√d ≈ 0.55): unscaled, two different tokens at one position have
cosine similarity ≈ 0.999 after the LayerNorm, and at BERT's learning rates the token embeddings cannot
outgrow the table within a run. Vaswani et al. avoid this by multiplying the token embeddings by √d; we
scale the table down instead, to the entry scale σ of the token embeddings and of ``standard``'s learned
positions, so ``absolute`` starts from the same token/position balance as ``standard`` (norm ratio ≈ 1,
cosine ≈ 0.5) and differs from it only in the positions being fixed sinusoids. Scaling the table leaves the
tied token embeddings, their initialisation and their effective learning rate identical for every mechanism.
"""

from __future__ import annotations

import math

import torch

from mlmclm.config import ModelConfig
from mlmclm.model.attention.base import ATTENTION_MECHANISMS, AttentionMechanism, TokenLayout


def sinusoidal_positions(seq_len: int, dim: int, device: torch.device) -> torch.Tensor:
    """The unscaled ``[seq_len, dim]`` sinusoidal table of Vaswani et al. (2017), computed in float32."""
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
    extrapolates = True  # the sinusoids are computed on demand for any length (not a fixed table)

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        # sin² + cos² = 1 per pair, so entries have mean square 1/2; √2·σ gives them the token embeddings' σ.
        self.scale = math.sqrt(2.0) * config.initializer_range

    def embed_positions(self, layout: TokenLayout) -> torch.Tensor:
        table = sinusoidal_positions(layout.seq_len, self.num_heads * self.head_dim, layout.device)
        return layout.per_token(self.scale * table)
