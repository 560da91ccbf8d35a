"""Weight decay by parameter shape, plus the no-decay set a mechanism declares (not a name suffix)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from mlmclm.components import resolve_config
from mlmclm.config import ModelConfig, TrainingConfig
from mlmclm.model import Transformer
from mlmclm.model.attention import ATTENTION_MECHANISMS, AttentionMechanism
from mlmclm.train.optim import build_optimizer, decay_groups


@functools.cache
def model_config(norm: str) -> ModelConfig:
    return resolve_config(overrides={"model": {"hidden_size": 16, "num_layers": 2, "num_heads": 2,
                                               "intermediate_size": 32, "norm": norm}}).model


def tiny_model(attention: str, objective: str = "mlm", norm: str = "post") -> nn.Module:
    return Transformer(model_config(norm), objective=objective, attention=attention, vocab_size=40, max_seq_length=16,
                       pad_token_id=0)


def suffix_rule_groups(model: nn.Module) -> tuple[list[int], list[int]]:
    """The rule before the shape rule (reference): LayerNorms and any parameter named ``bias``/``*_bias``
    are exempt, everything else decays."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            exempt = isinstance(module, nn.LayerNorm) or name == "bias" or name.endswith("_bias")
            (no_decay if exempt else decay).append(id(param))
    return decay, no_decay


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("objective", ["mlm", "clm"])
@pytest.mark.parametrize("attention", list(ATTENTION_MECHANISMS))
def test_every_built_in_mechanism_keeps_the_groups_of_the_suffix_rule(attention, objective, norm):
    """Same parameters, same order in each group: training numbers stay identical."""
    model = tiny_model(attention, objective, norm)
    decay, no_decay = decay_groups(model)
    assert ([id(p) for p in decay], [id(p) for p in no_decay]) == suffix_rule_groups(model)


class PriorAttention(AttentionMechanism):
    """A made-up mechanism with a learned [heads, T] prior (declared no-decay) and a mixing matrix (not)."""

    no_weight_decay = frozenset({"distance_prior"})

    def __init__(self, config, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        self.distance_prior = nn.Parameter(torch.zeros(self.num_heads, max_seq_length))
        self.head_mixing = nn.Parameter(torch.eye(self.num_heads))
        self.temperature = nn.Parameter(torch.ones(self.num_heads))


def test_a_mechanism_declares_which_of_its_matrices_do_not_decay_whatever_their_names():
    model = tiny_model("standard")
    model.mechanism = PriorAttention(model_config("post"), max_seq_length=16, causal=False)
    decay, no_decay = (set(map(id, group)) for group in decay_groups(model))
    mechanism = model.mechanism
    assert id(mechanism.distance_prior) in no_decay  # declared, though a matrix not named *_bias
    assert id(mechanism.head_mixing) in decay  # an undeclared matrix decays
    assert id(mechanism.temperature) in no_decay  # a vector never decays
    groups = build_optimizer(model, TrainingConfig(weight_decay=0.1)).param_groups
    assert [group["weight_decay"] for group in groups] == [0.1, 0.0]
    assert {id(p) for p in groups[1]["params"]} == no_decay


def test_a_no_decay_name_that_is_no_parameter_is_an_error():
    class Misspelt(PriorAttention):
        no_weight_decay = frozenset({"distance_priors"})

    model = tiny_model("standard")
    model.mechanism = Misspelt(model_config("post"), max_seq_length=16, causal=False)
    with pytest.raises(ValueError, match="distance_priors"):
        decay_groups(model)


def test_exposb_declares_its_bucket_table_no_decay():
    model = tiny_model("exposb")
    table = model.mechanism.bucket_bias
    assert table.ndim == 2 and id(table) in {id(p) for p in decay_groups(model)[1]}
