"""``alibi``: attention with linear biases (Press et al. 2022, "Train Short, Test Long", eq. in sec. 3).

softmax(q_i·k_j/√d − m_h·|i − j|) with fixed geometric head slopes m_h = 2^(-8h/H). In causal mode only
j ≤ i is visible, so |i − j| = i − j as in the paper; bidirectional models use the symmetric |i − j|.
No trained position parameters.
"""

from __future__ import annotations

import torch

from mlmclm.config import ModelConfig
from mlmclm.model.attention.base import (
    ATTENTION_MECHANISMS,
    AttentionMechanism,
    SoftmaxMask,
    build_softmax_mask,
    head_slopes,
    relative_positions,
)


@ATTENTION_MECHANISMS.register("alibi")
class LinearBiases(AttentionMechanism):
    """A fixed per-head penalty proportional to the query-key distance, added to the attention logits."""

    summary = "fixed linear distance penalties on the attention logits"
    extrapolates = True  # the distance penalty is defined for any distance (Press et al. 2022)

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        self.register_buffer("slopes", head_slopes(config.num_heads), persistent=False)

    def prepare(
        self, seq_len: int, key_padding_mask: torch.Tensor | None, device: torch.device
    ) -> SoftmaxMask:
        distance = relative_positions(seq_len, device).abs().float()
        bias = -self.slopes.to(device)[:, None, None] * distance
        return build_softmax_mask(seq_len, key_padding_mask, self.causal, device, bias=bias)
