"""Hybrid models: one set of weights, the attention mask chosen per forward pass."""

from __future__ import annotations

import pytest
import torch

from mlmclm.model.attention.base import TokenLayout
from tests.model.test_transformer import random_ids
from tests.model.tiny import MAX_SEQ_LENGTH, VOCAB_SIZE, tiny_model


@pytest.mark.parametrize("objective", ["clm_mlm", "mntp"])
def test_a_hybrid_attends_causally_only_when_the_batch_asks(mechanism_name, objective):
    torch.manual_seed(0)
    model = tiny_model(objective, mechanism_name, initializer_range=0.2).eval()
    ids = random_ids(2, MAX_SEQ_LENGTH, seed=1)
    changed = ids.clone()
    t = 5
    changed[:, t + 1 :] = (changed[:, t + 1 :] + 7) % (VOCAB_SIZE - 1) + 1
    with torch.no_grad():
        causal_before, causal_after = model(ids, causal=True), model(changed, causal=True)
        default_before, default_after = model(ids), model(changed)
        bidirectional = model(ids, causal=False)
    torch.testing.assert_close(causal_before[:, : t + 1], causal_after[:, : t + 1], rtol=0, atol=1e-6)
    assert (default_before[:, : t + 1] - default_after[:, : t + 1]).abs().max() > 1e-2  # default: bidirectional
    torch.testing.assert_close(bidirectional, default_before, rtol=0, atol=0)
    assert not model.causal  # the view is set per call, never left behind


@pytest.mark.parametrize("mechanism", ["standard", "rope", "alibi", "absolute", "nope", "stickbreaking"])
def test_a_hybrid_in_its_causal_view_computes_what_a_clm_model_with_its_weights_computes(mechanism):
    torch.manual_seed(0)
    hybrid = tiny_model("clm_mlm", mechanism, initializer_range=0.2).eval()
    clm = tiny_model("clm", mechanism, initializer_range=0.2).eval()  # absolute scales its table by it
    clm.load_state_dict(hybrid.state_dict())
    ids = random_ids(2, MAX_SEQ_LENGTH, seed=2)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # padding too
    with torch.no_grad():
        torch.testing.assert_close(hybrid(ids, mask, causal=True), clm(ids, mask), rtol=1e-5, atol=1e-6)


def test_exposb_keeps_its_bidirectional_bucket_layout_under_the_causal_mask():
    """Offsets left of the query use the same buckets under both masks, so the learned table means one thing."""
    torch.manual_seed(0)
    model = tiny_model("mntp", "exposb").eval()
    with torch.no_grad():
        model.mechanism.bucket_bias.copy_(torch.randn_like(model.mechanism.bucket_bias))
    seq_len = 6
    layout = TokenLayout(seq_len, torch.device("cpu"))
    causal = model._prepare_attention(layout, causal=True).attn_mask[0]
    bidirectional = model._prepare_attention(layout, causal=False).attn_mask[0]
    left = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    torch.testing.assert_close(causal[:, left], bidirectional[:, left], rtol=0, atol=0)
    assert torch.isinf(causal[:, ~left]).all() and torch.isfinite(bidirectional).all()


def test_a_saved_hybrid_loads_as_the_same_hybrid(tmp_path):
    from mlmclm.model import load_model, save_model

    torch.manual_seed(0)
    model = tiny_model("mntp", "exposb", initializer_range=0.2).eval()
    save_model(model, tmp_path)
    loaded = load_model(tmp_path).eval()
    ids = random_ids(2, MAX_SEQ_LENGTH, seed=3)
    assert loaded.config["objective"] == "mntp" and not loaded.causal
    with torch.no_grad():
        for causal in (True, False):
            torch.testing.assert_close(loaded(ids, causal=causal), model(ids, causal=causal), rtol=0, atol=0)
