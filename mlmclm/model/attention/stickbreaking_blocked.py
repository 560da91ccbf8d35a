"""A memory-lean stick-breaking attention: queries in blocks, weights recomputed in backward (issue 14).

The reference (:meth:`StickBreaking.attention_weights`: :func:`block_weights` over the whole sequence, with
autograd) keeps several ``[B, H, T, T]`` float32 tensors per layer for backward. Here a custom
:class:`torch.autograd.Function` keeps only q, k, v (O(T) per row) and, in backward, rebuilds one block of
query rows at a time and applies the analytic gradient:

With z_ij the (scaled, possibly distance-decayed) logit, β = σ(z), ℓ_ij = log(1 − β_ij) on allowed pairs
(0 elsewhere), and S_ij = Σ_{k visited before j} ℓ_ik (an exclusive prefix sum in query i's visiting order),

    log A_ij = log β_ij + S_ij,     log R_i = Σ_k ℓ_ik,
    d log β / dz = 1 − β,           d ℓ / dz = −β.

With gA_ij = (∂L/∂A_ij)·A_ij and gR_i = (∂L/∂R_i)·R_i, the adjoint of the exclusive prefix sum is the
exclusive suffix sum in visiting order, U_ij = Σ_{k visited after j} gA_ik, so

    ∂L/∂z_ij = gA_ij (1 − β_ij) − β_ij (U_ij + gR_i)      on allowed pairs, 0 elsewhere.

Causal rows never visit keys after the block's last row, so a causal block only touches keys [0, end).
Attention dropout drops entries of A as the reference does, with a mask drawn from a generator seeded per
(call, block), so backward redraws the very same mask instead of storing it. The masks are not those the
reference would draw, only equally distributed (on CPU both use the 16-bit draw of mlmclm/model/dropout.py).

Per forward the mask state (``allowed`` [B or 1, 1, T, T] bool, the [T, T] orders) is shared by every layer
and head, so it is kept on ``ctx`` by reference rather than saved per call.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from mlmclm.model.dropout import drawable, effective_rate, keep_mask


class StickLayout(NamedTuple):
    """One forward pass's stick-breaking state (:meth:`StickBreaking.prepare`), shared by every layer: who may
    visit whom and in which order, the decay slopes, and the mask view (causal or not) of this pass."""

    allowed: torch.Tensor  # [B or 1, 1, T or 1, T] bool
    order: torch.Tensor  # [T, T] long: order[i, r] is the key query i visits r-th
    rank: torch.Tensor  # [T, T] long: the inverse permutation
    distance: torch.Tensor  # [T, T] float |i − j|
    slopes: torch.Tensor | None  # [H] distance-decay slopes, or None without decay
    causal: bool


class Block(NamedTuple):
    """One block of query rows [start, end) and the keys [0, keys) it can visit."""

    index: int
    start: int
    end: int
    keys: int


def blocks(seq_len: int, block_size: int, causal: bool) -> list[Block]:
    """Query blocks; a causal row i visits keys ≤ i only, and ``order[i, :end]`` then holds exactly keys < end."""
    return [
        Block(n, start, min(start + block_size, seq_len), min(start + block_size, seq_len) if causal else seq_len)
        for n, start in enumerate(range(0, seq_len, block_size))
    ]


def allowed_block(layout: StickLayout, block: Block) -> torch.Tensor:
    """The block's rows of ``allowed``, which may have a single row for all queries (key padding alone)."""
    allowed = layout.allowed[..., : block.keys]
    return allowed if allowed.shape[-2] == 1 else allowed[..., block.start : block.end, :]


class BlockWeights(NamedTuple):
    logits: torch.Tensor  # [B, H, b, keys] z_ij in float32 (or float64)
    stick: torch.Tensor  # [B, H, b, keys] A_ij
    remainder: torch.Tensor  # [B, H, b] R_i


def block_weights(q: torch.Tensor, k: torch.Tensor, layout: StickLayout, block: Block) -> BlockWeights:
    """Stick-breaking weights of one block of query rows, in log space (stickbreaking.py's module docstring).

    The reference (:meth:`StickBreaking.attention_weights`) is this for the whole sequence as one block."""
    rows, keys = slice(block.start, block.end), slice(0, block.keys)
    logits = q[..., rows, :] @ k[..., keys, :].transpose(-1, -2)
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)) / math.sqrt(q.shape[-1])
    if layout.slopes is not None:
        logits = logits - layout.slopes[:, None, None] * layout.distance[rows, keys]
    allowed = allowed_block(layout, block)
    order = layout.order[rows, keys].expand_as(logits)
    log_keep = F.logsigmoid(-logits).masked_fill(~allowed, 0.0)
    taken_before = F.pad(log_keep.gather(-1, order)[..., :-1], (1, 0)).cumsum(-1)
    taken_before = taken_before.gather(-1, layout.rank[rows, keys].expand_as(logits))
    stick = torch.exp(F.logsigmoid(logits) + taken_before).masked_fill(~allowed, 0.0)
    # ∏_j (1 − β_ij) from the log-space sum, not 1 − Σ_j A_ij, which cancels badly when R is small.
    return BlockWeights(logits, stick, torch.exp(log_keep.sum(-1)))


def dropout_keep(seed: int, block: Block, shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Which entries of a block's A survive dropout, scaled by 1/(1 − p); the same for the same (seed, block).
    On CPU the 16-bit draw of :mod:`mlmclm.model.dropout`, so every mechanism drops at the same rate there."""
    generator = torch.Generator(device=device).manual_seed(seed + block.index)
    if device.type == "cpu" and drawable(p):
        return keep_mask(shape, p, generator).float() / (1.0 - effective_rate(p))
    keep = torch.rand(shape, generator=generator, device=device) >= p
    return keep.float() / (1.0 - p)


class BlockedStickBreaking(torch.autograd.Function):
    """o_i = Σ_j A_ij v_j + R_i v_i over query blocks; saves q, k, v only (module docstring)."""

    @staticmethod
    def forward(ctx, q, k, v, layout: StickLayout, block_size: int, dropout_p: float, seed: int):
        outputs = []
        for block in blocks(q.shape[-2], block_size, layout.causal):
            weights = block_weights(q, k, layout, block)
            stick = weights.stick
            if dropout_p > 0:
                stick = stick * dropout_keep(seed, block, stick.shape, dropout_p, q.device)
            v_rows = v[..., block.start : block.end, :]
            out = stick.to(v.dtype) @ v[..., : block.keys, :] + weights.remainder.to(v.dtype)[..., None] * v_rows
            outputs.append(out.to(v.dtype))
        ctx.save_for_backward(q, k, v)
        ctx.layout, ctx.block_size, ctx.dropout_p, ctx.seed = layout, block_size, dropout_p, seed
        return torch.cat(outputs, dim=-2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v = ctx.saved_tensors
        accumulate = torch.promote_types(q.dtype, torch.float32)
        grad_q = torch.empty_like(q)
        grad_k = torch.zeros_like(k, dtype=accumulate)
        grad_v = torch.zeros_like(v, dtype=accumulate)
        for block in blocks(q.shape[-2], ctx.block_size, ctx.layout.causal):
            grads = block_backward(q, k, v, grad_out, ctx.layout, block, ctx.dropout_p, ctx.seed)
            grad_q[..., block.start : block.end, :] = grads.q
            grad_k[..., : block.keys, :] += grads.k
            grad_v[..., : block.keys, :] += grads.v_keys
            grad_v[..., block.start : block.end, :] += grads.v_rows
        return grad_q, grad_k.to(k.dtype), grad_v.to(v.dtype), None, None, None, None


class BlockGrads(NamedTuple):
    q: torch.Tensor  # [B, H, b, d] for the block's rows
    k: torch.Tensor  # [B, H, keys, d]
    v_keys: torch.Tensor  # [B, H, keys, d] through A
    v_rows: torch.Tensor  # [B, H, b, d] through the remainder


def block_backward(q, k, v, grad_out, layout: StickLayout, block: Block, dropout_p: float, seed: int) -> BlockGrads:
    """One block's share of the gradients, from its recomputed weights (formula in the module docstring)."""
    rows, keys = slice(block.start, block.end), slice(0, block.keys)
    weights = block_weights(q, k, layout, block)
    grad_rows = grad_out[..., rows, :]
    stick, precise = weights.stick, weights.stick.dtype
    keep = dropout_keep(seed, block, stick.shape, dropout_p, q.device) if dropout_p > 0 else None
    used = stick if keep is None else stick * keep
    grad_v_keys = used.to(v.dtype).transpose(-1, -2) @ grad_rows.to(v.dtype)
    grad_v_rows = weights.remainder[..., None] * grad_rows.to(precise)
    grad_stick = (grad_rows @ v[..., keys, :].transpose(-1, -2)).to(precise)
    if keep is not None:
        grad_stick = grad_stick * keep
    g_stick = grad_stick * stick  # ∂L/∂ log A
    g_remainder = (grad_rows.to(precise) * v[..., rows, :].to(precise)).sum(-1) * weights.remainder  # ∂L/∂ log R
    in_order = g_stick.gather(-1, layout.order[rows, keys].expand_as(g_stick))
    after = F.pad(in_order[..., 1:], (0, 1)).flip(-1).cumsum(-1).flip(-1)  # exclusive suffix sum
    after = after.gather(-1, layout.rank[rows, keys].expand_as(g_stick))
    beta = torch.sigmoid(weights.logits)
    grad_logits = g_stick * torch.sigmoid(-weights.logits) - beta * (after + g_remainder[..., None])
    grad_logits = grad_logits.masked_fill(~allowed_block(layout, block), 0.0) / math.sqrt(q.shape[-1])
    grad_logits = grad_logits.to(q.dtype)
    return BlockGrads(
        grad_logits @ k[..., keys, :], grad_logits.transpose(-1, -2) @ q[..., rows, :], grad_v_keys, grad_v_rows
    )


def blocked_stick_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: StickLayout, block_size: int, dropout_p: float
) -> torch.Tensor:
    """Stick-breaking attention outputs through :class:`BlockedStickBreaking`; a fresh dropout seed per call,
    drawn from torch's default CPU generator (so ``torch.manual_seed`` fixes it, without a device sync)."""
    seed = int(torch.randint(0, 2**62, (1,)).item()) if dropout_p > 0 else 0
    return BlockedStickBreaking.apply(q, k, v, layout, block_size, dropout_p, seed)
