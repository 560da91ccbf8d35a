"""``rope``: rotary position embeddings (Su et al. 2021/2024, "RoFormer", eq. 34).

In every layer, each query/key is rotated by an angle proportional to its position: pair i of the head
dimensions (here dims i and i + d/2, the "rotate-half" layout of GPT-NeoX/Llama, a fixed permutation of
RoFormer's adjacent pairs) is rotated by p·θ_i with θ_i = base^(-2i/d). Then
(R_m q)·(R_n k) = q·R_{n-m} k depends on positions only through the offset n - m. No absolute embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlmclm.config import ExperimentConfig, ModelConfig, require_positive
from mlmclm.model.attention.base import (
    ATTENTION_MECHANISMS,
    AttentionMechanism,
    SoftmaxMask,
    TokenLayout,
    build_softmax_mask,
    softmax_attention,
)


@dataclass(frozen=True)
class RotaryState:
    mask: SoftmaxMask
    cos: torch.Tensor  # [T, head_dim] float32, or [B, 1, T, head_dim] for packed rows
    sin: torch.Tensor


def rotary_tables(
    seq_len: int, head_dim: int, base: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of p·θ_i for every position p and dimension, in the rotate-half layout."""
    inverse_frequencies = base ** (
        -torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim
    )
    angles = torch.arange(seq_len, dtype=torch.float32, device=device)[:, None] * inverse_frequencies[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (``[..., T, head_dim]``): x·cos + rotate_half(x)·sin, with rotate_half(a, b) = (-b, a)."""
    first, second = x.chunk(2, dim=-1)
    rotated = torch.cat([-second, first], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


@ATTENTION_MECHANISMS.register("rope")
class RotaryPositions(AttentionMechanism):
    """Softmax attention on rotated queries and keys; base = ``model.rope_base``."""

    summary = "rotary position embeddings on queries and keys"
    extrapolates = True  # rotation tables are computed on demand for any length (how well is measured)

    @dataclass(frozen=True)
    class Config:
        """``model.rope_base``: the base of the rotation frequencies θ_i = base^(-2i/d) (RoFormer eq. 15)."""

        base: float = 10000.0

        def check(self, config: ExperimentConfig) -> None:
            require_positive("model.rope_base", self.base)

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        self.base = config.settings("rope").base

    def prepare(self, layout: TokenLayout) -> RotaryState:
        cos, sin = rotary_tables(layout.seq_len, self.head_dim, self.base, layout.device)
        if layout.position_ids is not None:
            # Packed rows: each token turns by its position in its own sequence. Only offsets matter, but
            # the very angles of the unpacked sequence give the very same numbers, not merely equal maths.
            cos, sin = cos[layout.position_ids][:, None], sin[layout.position_ids][:, None]
        return RotaryState(build_softmax_mask(layout, self.causal), cos, sin)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: RotaryState, dropout_p: float
    ) -> torch.Tensor:
        q = apply_rotary(q, state.cos, state.sin)
        k = apply_rotary(k, state.cos, state.sin)
        return softmax_attention(q, k, v, state.mask, dropout_p)
