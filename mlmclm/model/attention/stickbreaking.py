"""``stickbreaking``: stick-breaking attention (Tan et al. 2024, "Scaling Stick-Breaking Attention", eq. 1-3).

Each query breaks a stick of length 1, visiting keys from the nearest outward; key j takes the fraction
β_ij = σ(q_i·k_j/√d) of what is left:

    A_ij = β_ij · ∏_{k visited before j} (1 − β_ik),        R_i = ∏_j (1 − β_ij) = 1 − Σ_j A_ij,
    o_i = Σ_j A_ij v_j + R_i v_i,

and recency is built in: no position embeddings are needed. The remainder R_i (the unused stick) goes to
the query's own value v_i, as in the authors' reference implementation (``o + rem[..., None] * v`` in
shawntan/stickbreaking-attention), so every row of weights sums to exactly one; dropping it would shrink
the outputs of early positions (at initialisation R is large near the start of a causal sequence) and,
without ``stickbreaking_include_self``, leave position 0 of a causal model with no attention output at all.

Visiting order: the query itself first (distance 0; ``model.stickbreaking_include_self``, otherwise it takes
nothing from the stick and receives only the remainder), then causal models go leftwards i−1, i−2, ...
Bidirectional models go by increasing distance, the left key before the right one at equal distance
(i−1, i+1, i−2, i+2, ...): this order, and its use in a bidirectional (MLM) encoder, is mlmclm's own
extension; Tan et al. define causal stick-breaking only. Padded keys are skipped and take nothing.

Computed in log space in float32, log β = logsigmoid(z) and log(1 − β) = logsigmoid(−z): for each (i, j) the
rank of key j in query i's order is a fixed permutation of each row, so we gather log(1 − β) into visiting
order, take an exclusive cumulative sum, and gather back; log R_i is the row's full sum. Memory stays O(T²)
per head, never O(T³). Attention dropout drops entries of A; the remainder path is not dropped (as in the
reference).

Optional (``model.stickbreaking_distance_decay``): β_ij = σ(z_ij − m_h·|i − j|) with ALiBi's fixed slopes
m_h = 2^(−8h/H); for small β this multiplies the break probability by the exponential decay e^(−m_h|i−j|).

This computation is the tested reference. ``model.stickbreaking_kernel`` may instead run the same function in
query blocks that keep only q, k, v for backward (``stickbreaking_blocked.py``, issue 14); see
:meth:`StickBreaking.uses_blocked` for when ``auto`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlmclm.config import ExperimentConfig, ModelConfig, require_choice, require_positive
from mlmclm.model.attention.base import (
    ATTENTION_MECHANISMS,
    AttentionMechanism,
    TokenLayout,
    head_slopes,
    relative_positions,
)
from mlmclm.model.attention.stickbreaking_blocked import (
    Block,
    BlockWeights,
    StickLayout,
    block_weights,
    blocked_stick_attention,
)
from mlmclm.model.dropout import dropout

KERNELS = ("auto", "reference", "blocked")
# auto: the blocked kernel on CPU too from this length on, where the reference's saved [B, H, T, T] tensors
# (several per layer) dominate a training step's memory.
BLOCKED_FROM_LENGTH = 1024


def visiting_order(seq_len: int, causal: bool, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query, the keys in visiting order and the inverse permutation (see the module docstring)."""
    offset = relative_positions(seq_len, device)
    if causal:  # self, i−1, i−2, ..., 0; future keys (masked out) last
        sort_key = torch.where(offset <= 0, -offset, seq_len + offset)
    else:  # self, i−1, i+1, i−2, i+2, ...
        sort_key = torch.where(offset < 0, -2 * offset - 1, 2 * offset)
    order = torch.argsort(sort_key, dim=-1)
    return order, torch.argsort(order, dim=-1)


@ATTENTION_MECHANISMS.register("stickbreaking")
class StickBreaking(AttentionMechanism):
    """Stick-breaking attention instead of softmax; position enters only through the visiting order."""

    summary = "stick-breaking attention instead of softmax"
    extrapolates = True  # the visiting order and masks are built per forward for any length

    @dataclass(frozen=True)
    class Config:
        """``model.stickbreaking_include_self`` and ``_distance_decay`` (module docstring); ``_kernel`` and
        ``_block_size`` choose how it is computed (:meth:`StickBreaking.uses_blocked`), not what."""

        include_self: bool = True
        distance_decay: bool = False
        kernel: str = "auto"  # auto | reference | blocked
        block_size: int = 128  # query rows per block of the blocked kernel

        def check(self, config: ExperimentConfig) -> None:
            require_choice("model.stickbreaking_kernel", self.kernel, KERNELS)
            require_positive("model.stickbreaking_block_size", self.block_size)

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        settings = config.settings("stickbreaking")
        self.include_self = settings.include_self
        self.distance_decay = settings.distance_decay
        self.kernel, self.block_size = settings.kernel, settings.block_size
        self.register_buffer("slopes", head_slopes(config.num_heads), persistent=False)

    def prepare(self, layout: TokenLayout) -> StickLayout:
        """Row offsets give the visiting order; in a packed row the keys of other sequences are not allowed, so
        they take nothing and the order restricted to the query's own sequence is that sequence's order. The
        mask view (``causal``) is the one of this forward pass, which a hybrid sets only while preparing."""
        seq_len, device = layout.seq_len, layout.device
        offset = relative_positions(seq_len, device)
        allowed = layout.allowed(self.causal)
        if allowed is None:
            allowed = torch.ones(1, 1, seq_len, seq_len, dtype=torch.bool, device=device)
        if not self.include_self:
            allowed = allowed & (offset != 0)
        order, rank = visiting_order(seq_len, self.causal, device)
        slopes = self.slopes if self.distance_decay else None
        return StickLayout(allowed, order, rank, offset.abs().float(), slopes, self.causal)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: StickLayout, dropout_p: float
    ) -> torch.Tensor:
        if self.uses_blocked(q):
            return blocked_stick_attention(q, k, v, state, self.block_size, dropout_p)
        weights = self.attention_weights(q, k, state)
        stick = weights.stick
        if dropout_p > 0:
            stick = dropout(stick, dropout_p)  # the same CPU draw as every softmax mechanism's
        return stick.to(v.dtype) @ v + weights.remainder.to(v.dtype)[..., None] * v

    def uses_blocked(self, q: torch.Tensor) -> bool:
        """``auto``: the blocked kernel when autograd records this forward (training) on CUDA, where memory
        is what binds, or at ``BLOCKED_FROM_LENGTH`` tokens anywhere; the reference otherwise, which keeps
        CPU runs (and their tested numbers) on the ground truth and inference on the fewest kernel launches."""
        if self.kernel != "auto":
            return self.kernel == "blocked"
        recording = torch.is_grad_enabled() and q.requires_grad
        return recording and (q.device.type == "cuda" or q.shape[-2] >= BLOCKED_FROM_LENGTH)

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor, state: StickLayout) -> BlockWeights:
        """A_ij ``[B, H, T, T]`` (``.stick``) and the remainder R_i ``[B, H, T]``, in (at least) float32, with
        Σ_j A_ij + R_i = 1: the whole sequence as one block, differentiated by autograd (the reference)."""
        seq_len = q.shape[-2]
        return block_weights(q, k, state, Block(0, 0, seq_len, seq_len))
