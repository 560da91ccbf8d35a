"""Every mechanism against an independent, explicit reference (loops over heads, queries and keys)."""

from __future__ import annotations

import math

import pytest
import torch

from mlmclm.config import ModelConfig
from mlmclm.errors import UserError
from mlmclm.model import ATTENTION_MECHANISMS, Transformer
from mlmclm.model.attention.base import TokenLayout
from mlmclm.model.attention.exposb import distance_buckets
from tests.model.tiny import MAX_SEQ_LENGTH, MECHANISMS, tiny_config

BATCH, HEADS, SEQ, HEAD_DIM = 2, 2, 7, 4


def layout_of(seq_len: int, key_mask: torch.Tensor | None = None) -> TokenLayout:
    """An unpacked batch's layout on the CPU: right padding ``key_mask`` (True = real) or none."""
    return TokenLayout(seq_len, torch.device("cpu"), key_padding_mask=key_mask)


def make_mechanism(name: str, causal: bool, **overrides):
    config = tiny_config(hidden_size=HEADS * HEAD_DIM, num_heads=HEADS, **overrides)
    return ATTENTION_MECHANISMS.get(name)(config, max_seq_length=MAX_SEQ_LENGTH, causal=causal).double()


def random_qkv(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.randn(BATCH, HEADS, SEQ, HEAD_DIM, generator=generator, dtype=torch.float64, requires_grad=True)
        for _ in range(3)
    ]


def padding(padded: bool) -> torch.Tensor | None:
    if not padded:
        return None
    mask = torch.ones(BATCH, SEQ, dtype=torch.bool)
    mask[1, 4:] = False  # second sequence: 4 real tokens, 3 pads
    return mask


# ------------------------------------------------------------------------------------ naive references


def t5_bucket(offset: int, causal: bool, num_buckets: int, max_distance: int) -> int:
    """Scalar transcription of T5's _relative_position_bucket (offset = key − query)."""
    bucket = 0
    if causal:
        n = max(-offset, 0)
    else:
        num_buckets //= 2
        if offset > 0:
            bucket = num_buckets
        n = abs(offset)
    max_exact = num_buckets // 2
    if n < max_exact:
        return bucket + n
    large = max_exact + int(
        math.log(n / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    )
    return bucket + min(large, num_buckets - 1)


def reference_bias(name: str, mechanism, causal: bool) -> torch.Tensor:
    """The additive logit bias b[h, i, j] each softmax mechanism should use, built entry by entry."""
    bias = torch.zeros(HEADS, SEQ, SEQ, dtype=torch.float64)
    for h in range(HEADS):
        for i in range(SEQ):
            for j in range(SEQ):
                if name == "alibi":
                    bias[h, i, j] = -(2 ** (-8 * (h + 1) / HEADS)) * abs(i - j)
                elif name == "exposb":
                    bucket = t5_bucket(j - i, causal, mechanism.num_buckets, mechanism.max_distance)
                    bias[h, i, j] = mechanism.bucket_bias[h, bucket]
    return bias


def rotation(position: int, base: float) -> torch.Tensor:
    """Explicit block rotation matrix R_p for the rotate-half pairing (dim a with dim a + d/2)."""
    half = HEAD_DIM // 2
    matrix = torch.zeros(HEAD_DIM, HEAD_DIM, dtype=torch.float64)
    for a in range(half):
        angle = position * base ** (-2 * a / HEAD_DIM)
        c, s = math.cos(angle), math.sin(angle)
        matrix[a, a], matrix[a, a + half] = c, -s
        matrix[a + half, a], matrix[a + half, a + half] = s, c
    return matrix


def naive_softmax_attention(name, mechanism, q, k, v, causal, key_mask):
    if name == "rope":
        rotations = torch.stack([rotation(p, mechanism.base) for p in range(SEQ)])
        q = torch.einsum("pde,bhpe->bhpd", rotations, q)
        k = torch.einsum("pde,bhpe->bhpd", rotations, k)
    bias = reference_bias(name, mechanism, causal)
    out = torch.zeros_like(q)
    for b in range(BATCH):
        for h in range(HEADS):
            for i in range(SEQ):
                keys = [
                    j for j in range(SEQ) if (not causal or j <= i) and (key_mask is None or key_mask[b, j])
                ]
                scores = torch.stack(
                    [q[b, h, i] @ k[b, h, j] / math.sqrt(HEAD_DIM) + bias[h, i, j] for j in keys]
                )
                weights = torch.softmax(scores, dim=0)
                out[b, h, i] = sum(w * v[b, h, j] for w, j in zip(weights, keys, strict=True))
    return out


def sequential_stick_weights(q, k, causal, key_mask, include_self, decay):
    """Stick-breaking by walking each query's keys one at a time (Tan et al. 2024, eq. 1-3).

    Returns the weights each key takes and, separately, the stick left over after the walk.
    """
    weights = torch.zeros(BATCH, HEADS, SEQ, SEQ, dtype=torch.float64)
    leftover = torch.zeros(BATCH, HEADS, SEQ, dtype=torch.float64)
    for b in range(BATCH):
        for h in range(HEADS):
            slope = 2 ** (-8 * (h + 1) / HEADS)
            for i in range(SEQ):
                order = [i] if include_self else []
                for d in range(1, SEQ):
                    order += [i - d] if causal else [i - d, i + d]
                remaining = torch.tensor(1.0, dtype=torch.float64)
                for j in order:
                    if not 0 <= j < SEQ or (key_mask is not None and not key_mask[b, j]):
                        continue
                    logit = q[b, h, i] @ k[b, h, j] / math.sqrt(HEAD_DIM)
                    if decay:
                        logit = logit - slope * abs(i - j)
                    beta = torch.sigmoid(logit)
                    weights[b, h, i, j] = beta * remaining
                    remaining = remaining * (1 - beta)
                leftover[b, h, i] = remaining
    return weights, leftover


def sequential_stick_attention(q, k, v, causal, key_mask, include_self, decay):
    """o_i = Σ_j A_ij v_j + (unused stick) · v_i: the remainder goes to the query's own value, as in the
    authors' reference (``o + rem[..., None] * v``, shawntan/stickbreaking-attention)."""
    weights, leftover = sequential_stick_weights(q, k, causal, key_mask, include_self, decay)
    out = torch.zeros_like(v)
    for b in range(BATCH):
        for h in range(HEADS):
            for i in range(SEQ):
                taken = sum(weights[b, h, i, j] * v[b, h, j] for j in range(SEQ))
                out[b, h, i] = taken + leftover[b, h, i] * v[b, h, i]
    return out


def naive_attention(name, mechanism, q, k, v, causal, key_mask):
    if name == "stickbreaking":
        return sequential_stick_attention(
            q, k, v, causal, key_mask, mechanism.include_self, mechanism.distance_decay
        )
    return naive_softmax_attention(name, mechanism, q, k, v, causal, key_mask)


# ----------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("padded", [False, True], ids=["unpadded", "padded"])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", MECHANISMS)
def test_attention_matches_naive_reference_in_values_and_gradients(name, causal, padded):
    mechanism = make_mechanism(name, causal)
    if name == "exposb":  # start from random biases so the test does not rely on the structured init
        with torch.no_grad():
            mechanism.bucket_bias.normal_(generator=torch.Generator().manual_seed(7))
    q, k, v = random_qkv(seed=1)
    key_mask = padding(padded)
    state = mechanism.prepare(layout_of(SEQ, key_mask))
    ours = mechanism.attend(q, k, v, state, dropout_p=0.0)
    expected = naive_attention(name, mechanism, q, k, v, causal, key_mask)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)

    upstream = torch.randn(ours.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    inputs = [q, k, v] + ([mechanism.bucket_bias] if name == "exposb" else [])
    grads = torch.autograd.grad((ours * upstream).sum(), inputs)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), inputs)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("decay", [False, True], ids=["no_decay", "decay"])
@pytest.mark.parametrize("include_self", [True, False], ids=["self", "no_self"])
@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_stickbreaking_weights_equal_sequential_stick_and_rows_plus_remainder_sum_to_one(
    causal, include_self, decay
):
    mechanism = make_mechanism(
        "stickbreaking", causal, stickbreaking_include_self=include_self, stickbreaking_distance_decay=decay
    )
    q, k, _ = random_qkv(seed=3)
    key_mask = padding(True)
    weights = mechanism.attention_weights(q, k, mechanism.prepare(layout_of(SEQ, key_mask)))
    expected_stick, expected_remainder = sequential_stick_weights(q, k, causal, key_mask, include_self, decay)
    torch.testing.assert_close(weights.stick, expected_stick, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(weights.remainder, expected_remainder, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(weights.stick.sum(-1) + weights.remainder, torch.ones(BATCH, HEADS, SEQ).double())
    assert (weights.stick[1, :, :, 4:] == 0).all(), "padded keys must take nothing"
    diagonal = weights.stick.diagonal(dim1=-2, dim2=-1)
    if include_self:
        assert (diagonal[0] > 0).all()
    else:
        assert (diagonal == 0).all()
    if causal:
        assert (weights.stick.triu(1) == 0).all()


@pytest.mark.parametrize("include_self", [True, False], ids=["self", "no_self"])
def test_stickbreaking_gives_the_unused_stick_to_the_query_so_position_zero_is_never_empty(include_self):
    """Issue 10.3: without the remainder, causal position 0 with include_self false attended to nothing."""
    mechanism = make_mechanism("stickbreaking", causal=True, stickbreaking_include_self=include_self)
    q, k, v = random_qkv(seed=4)
    out = mechanism.attend(q, k, v, mechanism.prepare(layout_of(SEQ, None)), dropout_p=0.0)
    torch.testing.assert_close(out[..., 0, :], v[..., 0, :])  # position 0 has no one else to attend to
    ones = torch.ones(1, 1, SEQ, 1, dtype=torch.float64)
    constant = mechanism.attend(q, k, ones.expand_as(v), mechanism.prepare(layout_of(SEQ, None)), 0.0)
    torch.testing.assert_close(constant, torch.ones_like(constant), msg="weights plus remainder must sum to one")


def test_stickbreaking_visits_left_neighbour_before_right_one():
    """With every β = 1/2 the stick halves at each step: self 1/2, left 1/4, right 1/8, next left 1/16."""
    mechanism = make_mechanism("stickbreaking", causal=False)
    zeros = torch.zeros(1, HEADS, SEQ, HEAD_DIM, dtype=torch.float64)
    weights = mechanism.attention_weights(zeros, zeros, mechanism.prepare(layout_of(SEQ, None)))
    row = weights.stick[0, 0, 3]
    torch.testing.assert_close(
        row[[3, 2, 4, 1, 5]], torch.tensor([1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32]).double()
    )
    assert weights.remainder[0, 0, 3].item() == pytest.approx(2.0**-SEQ), "all 7 keys visited, 1/2 each"


def test_rope_scores_depend_only_on_the_offset():
    mechanism = make_mechanism("rope", causal=False)
    generator = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, HEAD_DIM, generator=generator, dtype=torch.float64)
    state = mechanism.prepare(layout_of(SEQ + 6, None))
    from mlmclm.model.attention.rope import apply_rotary

    rotated_q = apply_rotary(q.expand(SEQ + 6, HEAD_DIM), state.cos, state.sin)
    rotated_k = apply_rotary(k.expand(SEQ + 6, HEAD_DIM), state.cos, state.sin)
    scores = rotated_q @ rotated_k.T
    for m, n in [(0, 3), (2, 1), (4, 4)]:
        for shift in (1, 5):
            torch.testing.assert_close(scores[m, n], scores[m + shift, n + shift])
    assert not torch.allclose(scores[0, 3], scores[0, 4]), "scores must depend on the offset"


def test_exposb_buckets_cover_every_distance_monotonically_with_separate_sides():
    num_buckets, max_distance = 8, 10
    offsets = torch.arange(-40, 41)
    both = distance_buckets(offsets, causal=False, num_buckets=num_buckets, max_distance=max_distance)
    left, right = both[offsets <= 0].flip(0), both[offsets >= 0]  # indexed by distance 0..40
    assert set(left.tolist()) == set(range(4)), "the left half uses buckets 0..3"
    assert set(right[1:].tolist()) == {5, 6, 7}, "the right half: bucket 4 (offset 0) is never used"
    assert (left.diff() >= 0).all() and (right[1:].diff() >= 0).all()
    assert (left[max_distance:] == 3).all() and (right[max_distance:] == 7).all()
    assert right[0] == left[0] == 0, "offset 0 (the query itself) counts as left, as in T5"
    expected = [t5_bucket(int(o), False, num_buckets, max_distance) for o in offsets]
    assert both.tolist() == expected

    causal = distance_buckets(offsets, causal=True, num_buckets=num_buckets, max_distance=max_distance)
    causal_left = causal[offsets <= 0].flip(0)
    assert set(causal_left.tolist()) == set(range(num_buckets)), (
        "causal models spend every bucket on the left"
    )
    assert (causal_left.diff() >= 0).all() and (causal_left[max_distance:] == num_buckets - 1).all()
    assert causal_left[:4].tolist() == [0, 1, 2, 3], "small distances are exact"
    assert causal.tolist() == [t5_bucket(int(o), True, num_buckets, max_distance) for o in offsets]


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
def test_exposb_initial_bias_is_minus_head_slope_times_bin_distance(causal):
    mechanism = make_mechanism("exposb", causal, exposb_num_buckets=8, exposb_max_distance=10)
    side = 8 if causal else 4
    exact = side // 2
    for h in range(HEADS):
        slope = 2 ** (-8 * (h + 1) / HEADS)
        for bucket in range(8):
            b = bucket % side
            distance = b if b < exact else exact * (10 / exact) ** ((b - exact) / (side - exact))
            assert mechanism.bucket_bias[h, bucket].item() == pytest.approx(-slope * distance, rel=1e-6)


def test_sinusoidal_positions_follow_vaswani_formula_at_the_embedding_scale():
    mechanism = make_mechanism("absolute", causal=False, initializer_range=0.05)
    table = mechanism.embed_positions(layout_of(SEQ))
    dim = HEADS * HEAD_DIM
    scale = math.sqrt(2) * 0.05  # entries of root-mean-square initializer_range, as the token embeddings
    for p in range(SEQ):
        for i in range(dim // 2):
            angle = p / 10000 ** (2 * i / dim)
            assert table[p, 2 * i].item() == pytest.approx(scale * math.sin(angle), abs=1e-7)
            assert table[p, 2 * i + 1].item() == pytest.approx(scale * math.cos(angle), abs=1e-7)


def test_absolute_positions_do_not_drown_the_tokens_at_bert_size():
    """Issue 10.2: unscaled sinusoids (norm ≈ 19.6 vs ≈ 0.55 for a token at hidden 768) made two different
    tokens at one position nearly identical after the embedding LayerNorm (cosine 0.999)."""
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=768, num_heads=12, num_layers=1, intermediate_size=32)
    model = Transformer(
        config, objective="mlm", attention="absolute", vocab_size=201, max_seq_length=64, pad_token_id=0
    )
    with torch.no_grad():
        tokens = model.token_embeddings.weight[1:]  # 200 rows; row 0 is the (zero) padding embedding
        positions = model.mechanism.embed_positions(layout_of(64))
        ratio = tokens.norm(dim=-1).mean() / positions.norm(dim=-1).mean()
        first = model.embedding_norm(tokens[:100, None, :] + positions)
        second = model.embedding_norm(tokens[100:, None, :] + positions)
        cosine = torch.nn.functional.cosine_similarity(first, second, dim=-1).mean()
    assert 0.8 < ratio.item() < 1.25, "token and position vectors should start at the same scale"
    assert cosine.item() < 0.6, "different tokens at one position must stay distinguishable"


def test_standard_positions_refuse_sequences_longer_than_trained():
    mechanism = make_mechanism("standard", causal=False)
    assert mechanism.embed_positions(layout_of(MAX_SEQ_LENGTH)).shape == (MAX_SEQ_LENGTH, 8)
    with pytest.raises(UserError, match="exceeds the 12 learned positions"):
        mechanism.embed_positions(layout_of(MAX_SEQ_LENGTH + 1))


@pytest.mark.parametrize("num_buckets", [2, 7])
def test_config_rejects_exposb_bucket_counts_that_cannot_split_into_two_sides(num_buckets):
    from mlmclm.components import resolve_config
    from mlmclm.errors import ConfigError

    with pytest.raises(ConfigError, match="exposb_num_buckets must be even and >= 4"):
        resolve_config(overrides={"model": {"exposb_num_buckets": num_buckets}})


@pytest.mark.parametrize("name", ["alibi", "exposb"])
def test_bias_is_built_once_in_the_autocast_dtype_so_layers_share_one_mask(name):
    """SDPA needs the bias in q's dtype; casting it in every layer would keep one [B, H, T, T] copy per layer."""
    config = tiny_config(hidden_size=HEADS * HEAD_DIM, num_heads=HEADS)
    mechanism = ATTENTION_MECHANISMS.get(name)(config, max_seq_length=MAX_SEQ_LENGTH, causal=False)
    key_mask = padding(True)
    assert mechanism.prepare(layout_of(SEQ, key_mask)).attn_mask.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        state = mechanism.prepare(layout_of(SEQ, key_mask))
    assert state.attn_mask.dtype == torch.bfloat16 and state.attn_mask.shape == (BATCH, HEADS, SEQ, SEQ)
    assert torch.isinf(state.attn_mask[1, :, :, 4:]).all(), "padded keys stay -inf after the cast"
