"""Adding an attention mechanism with one setting needs only its own module and its registration.

The mechanism below lives in this test module, as a new ``model/attention/<name>.py`` would: its setting is a
nested ``Config`` with a ``check()``. Nothing in ``mlmclm/config.py`` names it, yet the config accepts its key,
suggests it for a typo, checks it, writes it to YAML and reads it back, and the saved model reloads with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from mlmclm import config as config_module
from mlmclm.components import resolve_config
from mlmclm.config import ExperimentConfig, ModelConfig, dump_yaml, require_positive
from mlmclm.errors import ConfigError
from mlmclm.model import ATTENTION_MECHANISMS, load_model, save_model
from mlmclm.model.attention.base import AttentionMechanism, softmax_attention
from tests.model.tiny import tiny_model

NAME = "tempered"


class TemperedLogits(AttentionMechanism):
    """Softmax attention with logits divided by a temperature: softmax(q kᵀ / (τ √d)) v."""

    summary = "softmax attention at a fixed temperature"

    @dataclass(frozen=True)
    class Config:
        temperature: float = 1.0

        def check(self, config: ExperimentConfig) -> None:
            require_positive(f"model.{NAME}_temperature", self.temperature)

    def __init__(self, config: ModelConfig, *, max_seq_length: int, causal: bool) -> None:
        super().__init__(config, max_seq_length=max_seq_length, causal=causal)
        self.temperature = config.settings(NAME).temperature

    def attend(self, q, k, v, state, dropout_p):
        return softmax_attention(q / self.temperature, k, v, state, dropout_p)


@pytest.fixture
def registered(monkeypatch):
    """Register the mechanism for one test and forget it afterwards."""
    monkeypatch.setattr(ATTENTION_MECHANISMS, "_items", dict(ATTENTION_MECHANISMS._items))
    monkeypatch.setitem(config_module._SETTINGS, "model", dict(config_module._SETTINGS["model"]))
    ATTENTION_MECHANISMS.register(NAME)(TemperedLogits)
    return TemperedLogits


def test_a_registered_mechanism_setting_is_read_from_its_flat_yaml_key(registered):
    config = resolve_config(overrides={"attention": [NAME], "model": {f"{NAME}_temperature": 2.5}})
    assert config.model.settings(NAME).temperature == 2.5
    assert config.to_dict()["model"][f"{NAME}_temperature"] == 2.5
    assert resolve_config().model.settings(NAME).temperature == 1.0  # the Config's default


def test_a_typo_in_the_new_key_or_name_gets_a_did_you_mean(registered):
    with pytest.raises(ConfigError, match=f"unknown config key 'model.{NAME}_temprature'; did you mean "
                                          f"'model.{NAME}_temperature'"):
        resolve_config(overrides={"model": {f"{NAME}_temprature": 2.0}})
    with pytest.raises(ConfigError, match=f"attention: unknown value 'tempred'; did you mean '{NAME}'"):
        resolve_config(overrides={"attention": ["tempred"]})


def test_the_mechanism_checks_its_own_setting(registered):
    with pytest.raises(ConfigError, match=f"model.{NAME}_temperature must be > 0, got -1.0"):
        resolve_config(overrides={"model": {f"{NAME}_temperature": -1}})
    with pytest.raises(ConfigError, match=f"model.{NAME}_temperature must be a number"):
        resolve_config(overrides={"model": {f"{NAME}_temperature": "hot"}})


def test_the_setting_survives_a_yaml_round_trip(registered, tmp_path):
    config = resolve_config(overrides={"attention": [NAME, "rope"], "model": {f"{NAME}_temperature": 0.5}})
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_yaml(config))
    assert f"{NAME}_temperature: 0.5" in path.read_text()
    assert resolve_config(path) == config


def test_the_model_uses_the_setting_and_reloads_with_it(registered, tmp_path):
    model = tiny_model("mlm", NAME, **{f"{NAME}_temperature": 4.0}).eval()
    assert model.mechanism.temperature == 4.0
    ids = torch.randint(1, 40, (2, 12), generator=torch.Generator().manual_seed(0))
    reference = tiny_model("mlm", "nope").eval()
    reference.load_state_dict(model.state_dict())
    assert not torch.allclose(model(ids), reference(ids))  # a temperature of 4 changes the attention
    reloaded = load_model(save_model(model, tmp_path / "run"))
    assert reloaded.mechanism.temperature == 4.0
    torch.testing.assert_close(reloaded(ids), model(ids))
