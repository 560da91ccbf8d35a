"""The interface every attention / position mechanism implements, and the softmax attention they share.

A mechanism has three hooks, called by :class:`~mlmclm.model.transformer.Transformer`:

* ``embed_positions(layout)``: absolute position vectors added to the token embeddings (or None);
* ``prepare(layout)``: per-forward state every layer reuses (masks, biases, rotation tables), built once per
  forward pass instead of once per layer;
* ``attend(q, k, v, state, dropout_p)``: queries, keys and values ``[B, heads, T, head_dim]`` to outputs.

The defaults give position-free softmax attention, so a mechanism overrides only what it changes.

``layout`` (:class:`TokenLayout`) says where the tokens sit in the ``[B, T]`` rows: right padding, and for
packed rows (``data.packing``) which sequence each token belongs to and its position inside it. A mechanism
that works with absolute positions reads :attr:`TokenLayout.position_ids`; one that works with offsets j - i
needs nothing more than :meth:`TokenLayout.allowed`, because inside a packed sequence the offsets are those
of the same sequence alone, and the mask removes every pair of tokens from two sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mlmclm.config import ModelConfig
from mlmclm.model.dropout import dropout
from mlmclm.registry import Registry

# Every mechanism by its public name, in the order shown to users; filled by the mechanism modules, which
# model/attention/__init__.py imports explicitly. Their nested ``Config`` classes become model.* settings.
ATTENTION_MECHANISMS: Registry = Registry("attention mechanism", settings_section="model")


@dataclass(frozen=True)
class TokenLayout:
    """Where a batch's tokens sit in its ``[B, T]`` rows; the one argument of the position and mask hooks.

    ``key_padding_mask``: ``[B, T]`` bool, True = real token, or None when the batch has no padding (decided on
    the host when the batch is built, so the forward pass needs no device sync). ``segment_ids`` and
    ``position_ids`` (``[B, T]`` long) come only with packed rows: segment 1..n is the n-th sequence of the row,
    0 the padding; a position counts from 0 at its sequence's first token. Unpacked, both are None and a
    token's position is its column.
    """

    seq_len: int
    device: torch.device
    key_padding_mask: torch.Tensor | None = None
    segment_ids: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None

    def per_token(self, table: torch.Tensor) -> torch.Tensor:
        """Rows of a per-position ``table`` (``[T, ...]``) for each token: the table itself when a token's position
        is its column, ``[B, T, ...]`` gathered by ``position_ids`` for packed rows."""
        return table if self.position_ids is None else table[self.position_ids]

    @property
    def restricted(self) -> bool:
        """Whether some query may not see some key in a bidirectional pass (padding or several sequences)."""
        return self.key_padding_mask is not None or self.segment_ids is not None

    def allowed(self, causal: bool) -> torch.Tensor | None:
        """``[B or 1, 1, T, T]`` bool, True where query i may attend to key j; None when every pair may.

        Packed: same segment (and j <= i when causal); a padding query sees only the padding of its row, so
        no row of the mask is empty. Unpacked: real keys only (padded queries see the real keys)."""
        allowed = None
        if self.segment_ids is not None:
            allowed = (self.segment_ids[:, :, None] == self.segment_ids[:, None, :])[:, None]
        elif self.key_padding_mask is not None:
            allowed = self.key_padding_mask[:, None, None, :]
        if causal:
            lower = torch.ones(self.seq_len, self.seq_len, dtype=torch.bool, device=self.device).tril()
            allowed = lower if allowed is None else allowed & lower
        return allowed


@dataclass(frozen=True)
class SoftmaxMask:
    """What ``scaled_dot_product_attention`` needs to know about who may attend to whom.

    ``attn_mask`` is None (no padding, no bias), a boolean mask (True = may attend) or an additive float bias
    with -inf at forbidden pairs, broadcastable to ``[B, heads, T, T]``. ``is_causal`` is only set when there
    is no mask, which lets SDPA pick its fused causal kernels.
    """

    attn_mask: torch.Tensor | None
    is_causal: bool


def build_softmax_mask(layout: TokenLayout, causal: bool, bias: torch.Tensor | None = None) -> SoftmaxMask:
    """Combine padding or packed sequences (``layout``), causality and an optional ``[heads, T, T]`` bias."""
    if bias is None and not layout.restricted:
        return SoftmaxMask(None, causal)
    allowed = layout.allowed(causal)
    if bias is None:
        return SoftmaxMask(allowed, False)
    bias = bias.unsqueeze(0)
    if allowed is not None:
        bias = bias.masked_fill(~allowed, float("-inf"))
    # SDPA wants the bias in q's dtype, which is autocast's when it is on. Casting here, once per forward, lets
    # every layer share one tensor; a cast per layer would keep one [B, heads, T, T] copy per layer for backward.
    if torch.is_autocast_enabled(layout.device.type):
        bias = bias.to(torch.get_autocast_dtype(layout.device.type))
    return SoftmaxMask(bias, False)


def softmax_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: SoftmaxMask, dropout_p: float
) -> torch.Tensor:
    """softmax(q kᵀ / √d + bias) v through PyTorch's fused SDPA kernels (on CPU with dropout: see
    :func:`_cpu_attention_with_dropout`)."""
    attn_mask = mask.attn_mask
    if attn_mask is not None and attn_mask.is_floating_point() and attn_mask.dtype != q.dtype:
        attn_mask = attn_mask.to(q.dtype)  # e.g. a float32 bias in a model cast to bf16; SDPA wants one dtype
    if dropout_p > 0.0 and q.device.type == "cpu":
        return _cpu_attention_with_dropout(q, k, v, SoftmaxMask(attn_mask, mask.is_causal), dropout_p)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=mask.is_causal
    )


def _cpu_attention_with_dropout(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: SoftmaxMask, dropout_p: float
) -> torch.Tensor:
    """SDPA's own CPU path with dropout, written out (scores, mask, softmax, dropout, values), so that the mask
    on the probabilities comes from :func:`mlmclm.model.dropout.dropout`: SDPA draws it with ``bernoulli_``,
    a third slower. No row of a mask here is empty (:meth:`TokenLayout.allowed`), so softmax is safe."""
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))  # scaling q: d < T elements per row
    if mask.is_causal:
        t, s = scores.shape[-2:]
        scores.masked_fill_(~torch.ones(t, s, dtype=torch.bool, device=q.device).tril(), float("-inf"))
    elif mask.attn_mask is not None and mask.attn_mask.dtype == torch.bool:
        scores.masked_fill_(~mask.attn_mask, float("-inf"))
    elif mask.attn_mask is not None:
        scores.add_(mask.attn_mask)
    return torch.matmul(dropout(torch.softmax(scores, dim=-1), dropout_p), v)


def head_slopes(num_heads: int) -> torch.Tensor:
    """ALiBi's geometric head slopes m_h = 2^(-8h/H), h = 1..H (Press et al. 2022, sec. 3)."""
    exponents = torch.arange(1, num_heads + 1, dtype=torch.float64) * (-8.0 / num_heads)
    return torch.pow(2.0, exponents).float()


def relative_positions(seq_len: int, device: torch.device) -> torch.Tensor:
    """The ``[T, T]`` matrix of key minus query positions, j - i."""
    positions = torch.arange(seq_len, device=device)
    return positions[None, :] - positions[:, None]


class AttentionMechanism(nn.Module):
    """Position-free softmax attention; subclasses add position information through the three hooks."""

    summary = "softmax attention without position information"  # one line, for messages and reports
    # Whether the mechanism can score sequences longer than it was trained on (length generalisation, docs/
    # training.md). Every subclass states it in its own file; the evaluation reads it, never a name list.
    extrapolates: bool = True
    # Parameters of the mechanism (by attribute name) that weight decay leaves alone although they are
    # matrices; vectors never decay (mlmclm.train.optim.decay_groups).
    no_weight_decay: frozenset[str] = frozenset()

    def supports_length(self, seq_len: int) -> bool:
        """Whether ``seq_len`` positions can be represented: any length if the mechanism extrapolates."""
        return self.extrapolates or seq_len <= self.max_seq_length

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__()
        self.causal = causal
        self.max_seq_length = max_seq_length
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_size // config.num_heads

    def embed_positions(self, layout: TokenLayout) -> torch.Tensor | None:
        """Absolute position vectors (``[T, hidden]``, or ``[B, T, hidden]`` for packed rows) added to the
        token embeddings, or None."""
        return None

    def prepare(self, layout: TokenLayout) -> Any:
        """Per-forward state shared by all layers."""
        return build_softmax_mask(layout, self.causal)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: Any, dropout_p: float
    ) -> torch.Tensor:
        """Attention outputs ``[B, heads, T, head_dim]`` for ``q, k, v`` of the same shape."""
        return softmax_attention(q, k, v, state, dropout_p)
