"""``nope``: no position information at all, the control condition.

With bidirectional attention the model is then permutation-equivariant (a bag of words); with causal attention
the mask alone leaks order, which is known to let decoders learn positions implicitly (Haviv et al. 2022,
"Transformer Language Models without Positional Encodings Still Learn Positional Information").
"""

from __future__ import annotations

from mlmclm.model.attention.base import ATTENTION_MECHANISMS, AttentionMechanism


@ATTENTION_MECHANISMS.register("nope")
class NoPositions(AttentionMechanism):
    """Softmax attention without any position signal (the base class unchanged)."""

    summary = "no position information at all"
    extrapolates = True  # nothing depends on position (Kazemnejad et al. 2023)
