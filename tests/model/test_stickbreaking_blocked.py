"""The blocked stick-breaking kernel against the reference (itself tested against a sequential loop in
test_attention.py): values, gradients, dropout, memory kept for backward, and when it is chosen."""

from __future__ import annotations

import pytest
import torch

from mlmclm.components import resolve_config
from mlmclm.errors import ConfigError
from mlmclm.model.attention.base import TokenLayout
from mlmclm.model.attention.stickbreaking import BLOCKED_FROM_LENGTH
from mlmclm.model.attention.stickbreaking_blocked import (
    BlockedStickBreaking,
    StickLayout,
    blocks,
    dropout_keep,
)
from tests.model.test_attention import make_mechanism
from tests.model.tiny import tiny_model

BATCH, HEADS, HEAD_DIM = 2, 2, 4
TOLERANCES = {torch.float64: {"rtol": 1e-10, "atol": 1e-12}, torch.float32: {"rtol": 1e-4, "atol": 1e-5}}


def token_layout(kind: str, seq_len: int) -> TokenLayout:
    """No restriction, right padding in row 1, or packed rows (row 0: two sequences; row 1: one and padding)."""
    cpu = torch.device("cpu")
    if kind == "none":
        return TokenLayout(seq_len, cpu)
    if kind == "padding":
        mask = torch.ones(BATCH, seq_len, dtype=torch.bool)
        mask[1, seq_len // 2 + 1 :] = False
        return TokenLayout(seq_len, cpu, key_padding_mask=mask)
    segments = torch.zeros(BATCH, seq_len, dtype=torch.long)
    split = seq_len // 3 + 1
    segments[0, :split], segments[0, split:] = 1, 2
    segments[1, : seq_len - 2] = 1  # the last two columns are padding (segment 0)
    positions = torch.zeros_like(segments)
    for row in range(BATCH):
        for segment in segments[row].unique():
            where = segments[row] == segment
            positions[row, where] = torch.arange(int(where.sum()))
    return TokenLayout(seq_len, cpu, key_padding_mask=segments > 0, segment_ids=segments, position_ids=positions)


def mechanism_pair(causal: bool, include_self: bool, decay: bool, block_size: int, dtype: torch.dtype):
    settings = {"stickbreaking_include_self": include_self, "stickbreaking_distance_decay": decay}
    reference = make_mechanism("stickbreaking", causal, stickbreaking_kernel="reference", **settings).to(dtype)
    blocked = make_mechanism(
        "stickbreaking", causal, stickbreaking_kernel="blocked", stickbreaking_block_size=block_size, **settings
    ).to(dtype)
    return reference, blocked


def qkv(seq_len: int, dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (2 * torch.randn(BATCH, HEADS, seq_len, HEAD_DIM, generator=generator, dtype=torch.float64))
        .to(dtype)
        .requires_grad_()
        for _ in range(3)
    ]


def output_and_grads(mechanism, q, k, v, state, upstream, dropout_p=0.0):
    out = mechanism.attend(q, k, v, state, dropout_p)
    return out, torch.autograd.grad((out * upstream).sum(), (q, k, v))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("seq_len", "block_size"), [(11, 4), (3, 8)], ids=["T11_block4", "T3_block8"])
@pytest.mark.parametrize("kind", ["none", "padding", "packed"])
@pytest.mark.parametrize("decay", [False, True], ids=["no_decay", "decay"])
@pytest.mark.parametrize("include_self", [True, False], ids=["self", "no_self"])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_blocked_kernel_matches_the_reference_in_outputs_and_gradients(
    causal, include_self, decay, kind, seq_len, block_size, dtype
):
    reference, blocked = mechanism_pair(causal, include_self, decay, block_size, dtype)
    state = reference.prepare(token_layout(kind, seq_len))
    q, k, v = qkv(seq_len, dtype)
    upstream = torch.randn(BATCH, HEADS, seq_len, HEAD_DIM, generator=torch.Generator().manual_seed(1)).to(dtype)
    expected, expected_grads = output_and_grads(reference, q, k, v, state, upstream)
    got, grads = output_and_grads(blocked, q, k, v, state, upstream)
    torch.testing.assert_close(got, expected, **TOLERANCES[dtype])
    for name, grad, want in zip("qkv", grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, want, **TOLERANCES[dtype], msg=lambda m, n=name: f"grad {n}: {m}")


def stick_layout(mechanism, state) -> StickLayout:
    slopes = mechanism.slopes.double() if mechanism.distance_decay else None
    return StickLayout(state.allowed, state.order, state.rank, state.distance.double(), slopes, mechanism.causal)


@pytest.mark.parametrize("dropout_p", [0.0, 0.4], ids=["no_dropout", "dropout"])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_blocked_kernel_passes_gradcheck(causal, dropout_p):
    """Finite differences in float64 on a tiny packed case with blocks of 2 over 5 rows (and decay)."""
    mechanism = make_mechanism("stickbreaking", causal, stickbreaking_distance_decay=True)
    layout = stick_layout(mechanism, mechanism.prepare(token_layout("packed", 5)))
    q, k, v = (t.detach()[:, :, :5].requires_grad_() for t in qkv(5, torch.float64, seed=2))

    def attention(q, k, v):
        return BlockedStickBreaking.apply(q, k, v, layout, 2, dropout_p, 1234)

    assert torch.autograd.gradcheck(attention, (q, k, v), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_blocked_dropout_drops_entries_of_a_but_not_the_remainder(causal):
    """Blocked outputs and gradients equal (A ⊙ mask / (1 − p)) v + R v with the masks the kernel redraws."""
    seq_len, block_size, p, seed = 9, 4, 0.3, 77
    reference, _ = mechanism_pair(causal, True, False, block_size, torch.float64)
    state = reference.prepare(token_layout("padding", seq_len))
    layout = stick_layout(reference, state)
    q, k, v = qkv(seq_len, torch.float64, seed=3)
    keep = torch.zeros(BATCH, HEADS, seq_len, seq_len, dtype=torch.float64)
    for block in blocks(seq_len, block_size, causal):
        shape = torch.Size((BATCH, HEADS, block.end - block.start, block.keys))
        keep[..., block.start : block.end, : block.keys] = dropout_keep(seed, block, shape, p, q.device).double()
    assert 0 < (keep == 0).float().mean() < 1
    weights = reference.attention_weights(q, k, state)
    expected = (weights.stick * keep) @ v + weights.remainder[..., None] * v
    got = BlockedStickBreaking.apply(q, k, v, layout, block_size, p, seed)
    torch.testing.assert_close(got, expected, **TOLERANCES[torch.float64])
    upstream = torch.randn_like(got)
    for grad, want in zip(
        torch.autograd.grad((got * upstream).sum(), (q, k, v)),
        torch.autograd.grad((expected * upstream).sum(), (q, k, v)),
        strict=True,
    ):
        torch.testing.assert_close(grad, want, **TOLERANCES[torch.float64])


def saved_bytes(function) -> int:
    """Bytes of the distinct storages autograd keeps for backward while ``function()`` runs."""
    storages: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function()
    return sum(storages.values())


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_blocked_kernel_keeps_o_of_t_per_row_for_backward_where_the_reference_keeps_o_of_t_squared(causal):
    seq_len = 256
    reference, blocked = mechanism_pair(causal, True, True, 64, torch.float32)
    state = reference.prepare(token_layout("padding", seq_len))
    q, k, v = (t.detach().requires_grad_() for t in qkv(seq_len, torch.float32))
    qkv_bytes = 3 * q.nbytes  # O(B·H·T·d)
    one_score_matrix = BATCH * HEADS * seq_len * seq_len * 4  # one float32 [B, H, T, T]
    blocked_bytes = saved_bytes(lambda: blocked.attend(q, k, v, state, 0.1))
    reference_bytes = saved_bytes(lambda: reference.attend(q, k, v, state, 0.1))
    assert blocked_bytes <= qkv_bytes, f"blocked kernel saved {blocked_bytes} bytes, more than q, k, v"
    assert reference_bytes >= 3 * one_score_matrix, f"reference saved only {reference_bytes} bytes"


def test_kernel_setting_is_checked_and_auto_picks_blocked_for_cuda_training_or_long_sequences():
    with pytest.raises(ConfigError, match="model.stickbreaking_kernel"):
        resolve_config(overrides={"model": {"stickbreaking_kernel": "fused"}})
    with pytest.raises(ConfigError, match="model.stickbreaking_block_size"):
        resolve_config(overrides={"model": {"stickbreaking_block_size": 0}})
    auto = make_mechanism("stickbreaking", causal=True)
    short, long = (torch.empty(1, 1, n, 1, requires_grad=True) for n in (512, BLOCKED_FROM_LENGTH))
    assert not auto.uses_blocked(short), "CPU training at short length stays on the reference"
    assert auto.uses_blocked(long)
    with torch.no_grad():
        assert not auto.uses_blocked(long), "inference keeps the reference"
    assert make_mechanism("stickbreaking", causal=True, stickbreaking_kernel="blocked").uses_blocked(short)
    assert not make_mechanism("stickbreaking", causal=True, stickbreaking_kernel="reference").uses_blocked(long)


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_a_model_trained_through_the_blocked_kernel_gets_the_reference_loss_and_gradients(objective):
    losses, grads = [], []
    for kernel in ("reference", "blocked"):
        torch.manual_seed(0)
        model = tiny_model(objective, "stickbreaking", stickbreaking_kernel=kernel, stickbreaking_block_size=5)
        ids = torch.randint(1, 40, (2, 12), generator=torch.Generator().manual_seed(5))
        mask = torch.ones_like(ids)
        mask[1, 9:] = 0
        loss = model.loss(ids, mask, ids.masked_fill(mask == 0, -100), has_padding=True).loss
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad for p in model.parameters()])
    torch.testing.assert_close(losses[1], losses[0])
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_blocked_kernel_under_bf16_autocast_matches_the_reference_to_bf16_rounding(causal):
    """As in mixed-precision training: bf16 q, k, v in, bf16 out, gradients back to the float32 leaves."""
    results = []
    for mechanism in mechanism_pair(causal, True, True, 4, torch.float32):
        q, k, v = qkv(11, torch.float32)
        state = mechanism.prepare(token_layout("packed", 11))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = mechanism.attend(*(t.bfloat16() for t in (q, k, v)), state, 0.0)
        results.append((out, torch.autograd.grad(out.float().sum(), (q, k, v))))
    (expected, expected_grads), (got, grads) = results
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)
    for grad, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, want, rtol=5e-2, atol=5e-2)


def test_reference_dropout_is_the_shared_cpu_dropout():
    """The reference kernel drops entries of A with the same CPU draw as the softmax mechanisms (the same
    rate for every mechanism, docs/performance.md), never the remainder R."""
    from mlmclm.model.dropout import effective_rate, keep_mask

    seq_len, p = 9, 0.3
    reference, _ = mechanism_pair(True, True, False, 4, torch.float64)
    state = reference.prepare(token_layout("padding", seq_len))
    q, k, v = qkv(seq_len, torch.float64, seed=3)
    weights = reference.attention_weights(q, k, state)
    torch.manual_seed(5)
    got = reference.attend(q, k, v, state, p)
    torch.manual_seed(5)
    keep = keep_mask(weights.stick.shape, p).double() / (1 - effective_rate(p))
    expected = (weights.stick * keep) @ v + weights.remainder[..., None] * v
    torch.testing.assert_close(got, expected)


def test_blocked_cpu_masks_drop_at_the_shared_cpu_rate():
    """On CPU the blocked kernel's masks use the shared 16-bit draw: kept entries carry 1 / (1 − rate(p))."""
    from mlmclm.model.dropout import effective_rate

    block = blocks(64, 64, False)[0]
    keep = dropout_keep(9, block, torch.Size((4, 4, 64, 64)), 0.1, torch.device("cpu"))
    values = keep.unique().tolist()
    assert values[0] == 0.0 and len(values) == 2
    assert values[1] == pytest.approx(1 / (1 - effective_rate(0.1)), rel=1e-7)  # not 1 / 0.9: 8.5e-6 away
    assert torch.equal(keep, dropout_keep(9, block, torch.Size((4, 4, 64, 64)), 0.1, torch.device("cpu")))
