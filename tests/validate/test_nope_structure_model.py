"""Structural position blindness, exactly (Haviv et al. 2022): a bidirectional ``nope`` encoder's mean-pooled
features cannot tell a sentence from a permutation of it; the causal mask of a ``nope`` decoder leaks order.

These are the facts the ``nope_structure`` validation check expects the bigram-shift probe to recover.
"""

from __future__ import annotations

import torch

from mlmclm.config import ModelConfig
from mlmclm.model.attention.nope import NoPositions
from mlmclm.model.transformer import Transformer
from mlmclm.probes.features import pool

TOKENS = [2, 17, 5, 33, 9, 41, 12, 3]  # [CLS]-like start, six words, [SEP]-like end
SWAPPED = [2, 17, 33, 5, 9, 41, 12, 3]  # the bigram (5, 33) swapped, as the bigram-shift probe does


HIDDEN = 32


def mean_pooled(objective: str, sequences: list[list[int]]) -> torch.Tensor:
    torch.manual_seed(0)
    config = ModelConfig(hidden_size=HIDDEN, num_layers=2, num_heads=4, intermediate_size=64,
                         hidden_dropout=0.0, attention_dropout=0.0)
    model = Transformer(config, objective=objective, attention="nope", vocab_size=64, max_seq_length=16,
                        pad_token_id=0).eval()
    ids = torch.tensor(sequences)
    mask = torch.ones_like(ids)
    with torch.no_grad():
        return pool(model.encode(ids, mask), mask, "mean")


def test_mlm_nope_features_are_identical_for_a_sentence_and_its_bigram_swap():
    features = mean_pooled("mlm", [TOKENS, SWAPPED])
    torch.testing.assert_close(features[0], features[1], rtol=0, atol=1e-6)


def test_clm_nope_features_differ_because_the_causal_mask_leaks_order():
    features = mean_pooled("clm", [TOKENS, SWAPPED])
    assert (features[0] - features[1]).abs().max() > 1e-3


def test_position_information_leaking_into_nope_breaks_the_invariance(monkeypatch):
    """The broken condition the check must catch: ``nope`` handed sinusoidal positions (Vaswani et al. 2017)."""
    def leaky_positions(self, layout):
        seq_len, device = layout.seq_len, layout.device
        position = torch.arange(seq_len, device=device, dtype=torch.float32)[:, None]
        return torch.sin(position * torch.arange(1, HIDDEN + 1, device=device)[None, :] * 0.3)

    monkeypatch.setattr(NoPositions, "embed_positions", leaky_positions)
    features = mean_pooled("mlm", [TOKENS, SWAPPED])
    assert (features[0] - features[1]).abs().max() > 1e-3
