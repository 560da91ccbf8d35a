"""``alibi``: attention with linear biases (Press et al. 2022, "Train Short, Test Long", eq. in sec. 3).

softmax(q_i·k_j/√d − m_h·|i − j|) with fixed geometric head slopes m_h = 2^(-8h/H). In causal mode only
j ≤ i is visible, so |i − j| = i − j as in the paper; bidirectional models use the symmetric |i − j|.
No trained position parameters.
"""

from __future__ import annotations

from mlmclm.config import ModelConfig
from mlmclm.model.attention.base import (
    ATTENTION_MECHANISMS,
    AttentionMechanism,
    SoftmaxMask,
    TokenLayout,
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

    def prepare(self, layout: TokenLayout) -> SoftmaxMask:
        # Row offsets j - i: inside a packed sequence they are its own offsets; the mask drops the others.
        distance = relative_positions(layout.seq_len, layout.device).abs().float()
        bias = -self.slopes.to(layout.device)[:, None, None] * distance
        return build_softmax_mask(layout, self.causal, bias=bias)
