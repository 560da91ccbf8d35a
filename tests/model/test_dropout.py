"""The CPU dropout (16-bit integer mask) is dropout, and the written-out CPU attention with dropout is SDPA's.

References: ``F.scaled_dot_product_attention`` without dropout for the attention path (the mask forced to
keep everything), and a step-by-step loop over (query, key) pairs with the mask drawn from the same seed.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from mlmclm.model import dropout as dropout_module
from mlmclm.model.attention import base
from mlmclm.model.attention.base import SoftmaxMask, softmax_attention
from mlmclm.model.dropout import Dropout, dropout, effective_rate, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.03, 0.9])
def test_dropout_zeroes_a_binomial_share_and_scales_the_rest(p):
    x = torch.ones(400_000)
    y = dropout(x, p)
    zeroed = int((y == 0).sum())
    # a two-sided binomial test (scipy) at 1e-4: a wrong rate (1 - p, or a biased bit of the draw) fails it
    assert stats.binomtest(zeroed, x.numel(), p).pvalue > 1e-4
    rate = effective_rate(p)
    assert abs(rate - p) <= 2**-17
    torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - rate)))


def test_every_16_bit_slice_of_the_draw_is_uniform():
    """The four 16-bit integers of one 64-bit draw each drop at the rate: no slice has a stuck sign bit."""
    torch.manual_seed(0)
    kept = keep_mask((100_000, 4), 0.5)  # consecutive elements come from one 64-bit word
    for column in range(4):
        assert stats.binomtest(int(kept[:, column].sum()), 100_000, 0.5).pvalue > 1e-4


def test_rates_the_16_bit_draw_cannot_express_fall_back_to_torch():
    """p = 5e-6 rounds to 0 in 16 bits and 1 - 5e-6 to 1: they still drop at about p (expected 10 of 2M)."""
    torch.manual_seed(0)
    x = torch.ones(2_000_000)
    assert 0 < int((dropout(x, 5e-6) == 0).sum()) < 30
    assert 0 < int((dropout(x, 1 - 5e-6) != 0).sum()) < 30  # no division by 1 - 1 either


def test_dropout_is_identity_in_eval_and_repeats_under_a_seed():
    x = torch.randn(4, 8)
    assert torch.equal(Dropout(0.3).eval()(x), x)
    assert torch.equal(dropout(x, 0.0), x)
    torch.manual_seed(3)
    first = Dropout(0.3)(x)
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.3)(x), first)
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))


def test_dropout_gradient_is_the_mask_scaled():
    x = torch.randn(64, 32, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x, 0.25)
    y.sum().backward()
    kept = y.detach() != 0
    torch.testing.assert_close(x.grad, kept.float() / (1 - effective_rate(0.25)))


def qkv(seed: int = 0, batch: int = 2, heads: int = 3, seq: int = 7, dim: int = 4, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, seq, dim, generator=generator, dtype=dtype, requires_grad=True)
            for _ in range(3)]


def masks(seq: int = 7) -> dict[str, SoftmaxMask]:
    generator = torch.Generator().manual_seed(1)
    keys = torch.rand(2, seq, generator=generator) > 0.3
    keys[:, 0] = True  # every row keeps a key
    bias = torch.randn(1, 3, seq, seq, generator=generator, dtype=torch.float64)
    return {
        "none": SoftmaxMask(None, False),
        "causal": SoftmaxMask(None, True),
        "bool": SoftmaxMask(keys[:, None, None, :], False),
        "bias": SoftmaxMask(bias.masked_fill(~keys[:, None, None, :], float("-inf")), False),
    }


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "bias"])
def test_cpu_attention_with_dropout_equals_sdpa_when_nothing_is_dropped(kind, monkeypatch):
    mask = masks()[kind]
    q, k, v = qkv()
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.attn_mask, is_causal=mask.is_causal)
    monkeypatch.setattr(base, "dropout", lambda x, p: x)  # keep every probability: only the attention is left
    got = softmax_attention(q, k, v, mask, dropout_p=0.5)
    torch.testing.assert_close(got, expected)
    grads = torch.autograd.grad(got.sum(), (q, k, v))
    expected_grads = torch.autograd.grad(expected.sum(), (q, k, v))
    for g, e in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(g, e)


def loop_attention_with_dropout(q, k, v, mask: SoftmaxMask, p: float, seed: int) -> torch.Tensor:
    """Pair by pair: allowed scores, softmax per query, the keep-mask drawn as dropout draws it, weighted sum."""
    batch, heads, seq, dim = q.shape
    torch.manual_seed(seed)
    # the documented draw: 16-bit integers from 64-bit words, kept at or above round(p * 2^16) - 2^15
    words = torch.empty(-(-batch * heads * seq * seq // 4), dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    draws = words.view(torch.int16)[: batch * heads * seq * seq].view(batch, heads, seq, seq)
    keep = (draws >= round(p * 65536) - 32768).to(q.dtype) / (1 - round(p * 65536) / 65536)
    out = torch.zeros_like(q)
    for b in range(batch):
        for h in range(heads):
            for i in range(seq):
                scores = []
                for j in range(seq):
                    allowed = j <= i if mask.is_causal else (
                        mask.attn_mask is None or bool(mask.attn_mask.expand(batch, heads, seq, seq)[b, h, i, j]))
                    if mask.attn_mask is not None and mask.attn_mask.is_floating_point():
                        bias = mask.attn_mask.expand(batch, heads, seq, seq)[b, h, i, j]
                        allowed = bool(torch.isfinite(bias))
                    s = float(q[b, h, i] @ k[b, h, j]) / math.sqrt(dim)
                    if mask.attn_mask is not None and mask.attn_mask.is_floating_point() and allowed:
                        s += float(bias)
                    scores.append(s if allowed else -math.inf)
                weights = torch.softmax(torch.tensor(scores, dtype=q.dtype), dim=0) * keep[b, h, i]
                out[b, h, i] = weights @ v[b, h].detach()
    return out


@pytest.mark.parametrize("kind", ["none", "causal", "bool", "bias"])
def test_cpu_attention_with_dropout_matches_a_loop_with_the_same_mask(kind):
    mask = masks()[kind]
    q, k, v = qkv(seed=2)
    torch.manual_seed(11)
    got = softmax_attention(q, k, v, mask, dropout_p=0.3)
    torch.testing.assert_close(got.detach(), loop_attention_with_dropout(q.detach(), k.detach(), v, mask, 0.3, 11))


def test_cpu_attention_with_dropout_has_exact_gradients():
    q, k, v = qkv(seed=4, batch=1, heads=2, seq=5, dim=3)
    mask = masks(5)["causal"]

    def seeded(q, k, v):
        torch.manual_seed(5)  # the same keep-mask at every gradcheck evaluation
        return softmax_attention(q, k, v, mask, dropout_p=0.4)

    assert torch.autograd.gradcheck(seeded, (q, k, v))


def test_the_model_drops_through_this_dropout_and_repeats_under_a_seed():
    """Every dropout module of the model is this one, and a seeded training-mode forward pass repeats."""
    from tests.model.tiny import tiny_model

    model = tiny_model("clm", "standard", hidden_dropout=0.2, attention_dropout=0.2).train()
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(isinstance(m, dropout_module.Dropout) for m in dropouts)
    ids = torch.randint(1, 40, (2, 12))
    torch.manual_seed(0)
    first = model(ids)
    torch.manual_seed(0)
    assert torch.equal(model(ids), first)
    torch.manual_seed(1)
    assert not torch.equal(model(ids), first)  # dropout is on: another seed, another mask
