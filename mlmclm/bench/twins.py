"""The contenders: mlmclm's model and its ``transformers`` twin at one shape, with the batches they train on.

mlmclm's block is BERT's: post-LN, exact GELU, learned absolute positions plus an embedding LayerNorm, a
prediction head (dense, GELU, LayerNorm) tied to the token embeddings. The twins are therefore BERT twins:
``BertForMaskedLM`` for MLM and ``BertLMHeadModel(is_decoder=True)`` for CLM, the same block under a causal
mask. GPT-2 would differ in more than the implementation (pre-LN, tanh-approximated GELU, no embedding
LayerNorm, no head transform). Both sides use dropout 0.1, eps 1e-12, one token type and SDPA attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mlmclm.bench.shapes import BenchShape
from mlmclm.config import ModelConfig
from mlmclm.model import Transformer

MLM_PROBABILITY = 0.15
LossFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class Contender:
    """One model to time: who implements it, what it trains, and how to build it (lazily, to measure memory)."""

    impl: str  # "mlmclm" | "transformers"
    objective: str  # "mlm" | "clm"
    attention: str
    build: Callable[[torch.device], tuple[torch.nn.Module, LossFn]]

    @property
    def label(self) -> str:
        return f"{self.impl} {self.objective} {self.attention}"


def make_batches(
    shape: BenchShape, objective: str, count: int = 4, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """``count`` unpadded random batches; MLM labels 15% of positions, CLM labels the next token.

    ``labels`` is mlmclm's format (-100 = not scored); ``hf_labels`` is what the twin expects (BertLMHeadModel
    shifts its labels itself, so it receives the input ids)."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(5, shape.vocab, (shape.batch, shape.seq), generator=generator)
        labels = torch.full_like(ids, -100)
        if objective == "mlm":
            chosen = torch.rand(ids.shape, generator=generator) < MLM_PROBABILITY
            labels[chosen] = ids[chosen]
            hf_labels = labels
        else:
            labels[:, :-1] = ids[:, 1:]
            hf_labels = ids
        batches.append(
            {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels, "hf_labels": hf_labels}
        )
    return batches


def scored_positions(batches: list[dict[str, torch.Tensor]]) -> float:
    """Mean positions per batch that reach the prediction head (for the FLOP count)."""
    return sum(int((b["labels"] != -100).sum()) for b in batches) / len(batches)


def mlmclm_contender(
    shape: BenchShape, objective: str, attention: str, dropout: float = 0.1, label: str | None = None, **settings: Any
) -> Contender:
    """mlmclm's model; ``settings`` are mechanism keys users write (``stickbreaking_kernel="blocked"``), and
    ``label`` names the contender in the tables (default: the mechanism)."""

    def build(device: torch.device) -> tuple[torch.nn.Module, LossFn]:
        config = ModelConfig(
            hidden_size=shape.hidden, num_layers=shape.layers, num_heads=shape.heads,
            intermediate_size=shape.ffn, hidden_dropout=dropout, attention_dropout=dropout,
        )
        if settings:
            config = config.replace(**settings)
        model = Transformer(
            config, objective=objective, attention=attention, vocab_size=shape.vocab,
            max_seq_length=shape.seq, pad_token_id=0,
        ).to(device)
        # the batches are unpadded: say so, so the fused (causal) SDPA kernels run as in training
        return model, lambda b: model.loss(b["input_ids"], b["attention_mask"], b["labels"], has_padding=False).loss

    return Contender("mlmclm", objective, label or attention, build)


def transformers_contender(shape: BenchShape, objective: str, dropout: float = 0.1) -> Contender:
    def build(device: torch.device) -> tuple[torch.nn.Module, LossFn]:
        from transformers import BertConfig, BertForMaskedLM, BertLMHeadModel

        config = BertConfig(
            vocab_size=shape.vocab, hidden_size=shape.hidden, num_hidden_layers=shape.layers,
            num_attention_heads=shape.heads, intermediate_size=shape.ffn, max_position_embeddings=shape.seq,
            type_vocab_size=1, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
            layer_norm_eps=1e-12, hidden_act="gelu", is_decoder=objective == "clm",
            attn_implementation="sdpa",
        )
        model = (BertForMaskedLM if objective == "mlm" else BertLMHeadModel)(config).to(device)
        return model, lambda b: model(
            input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["hf_labels"]
        ).loss

    return Contender("transformers", objective, "standard", build)
