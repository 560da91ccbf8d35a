"""``compile: true``: the training step's loss under torch.compile trains the same run as eager."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import load_file
from torch._dynamo.utils import counters

from mlmclm.grid.plan import RunSpec
from mlmclm.grid.results import config_fingerprint
from mlmclm.model import Transformer
from mlmclm.train.trainer import train_run, training_loss
from tests.train.tiny_setup import tiny_experiment


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Packed rows, no dropout (dropout draws differ between compiled and eager code)."""
    return tiny_experiment(tmp_path_factory.mktemp("cache"), data={"packing": True},
                           training={"batch_size": 4, "eval_interval": 3, "checkpoint_interval": 100})


def test_compile_is_off_by_default_and_part_of_what_a_run_computes(tiny):
    config, _ = tiny
    assert config.compile is False
    compiled = dataclasses.replace(config, compile=True)
    assert config_fingerprint(compiled.to_dict()) != config_fingerprint(config.to_dict())


def test_the_step_loss_is_the_model_loss_unless_compiled(tiny):
    config, data = tiny
    model = Transformer(config.model, objective="mlm", attention="rope", vocab_size=data.tokenizer.vocab_size,
                        max_seq_length=config.data.max_seq_length, pad_token_id=data.tokenizer.pad_id)
    assert training_loss(model, compile_loss=False) == model.loss
    compiled = training_loss(model, compile_loss=True)
    assert compiled != model.loss and callable(compiled)


@pytest.mark.slow  # inductor compiles C++ kernels: tens of seconds on 2 cores
@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_a_compiled_run_trains_like_an_eager_one(tiny, tmp_path, objective):
    """Same seed, same batches (packed rows of varying width, so the compiled loss meets several shapes):
    the same training losses and final weights within float tolerance, saved under the model's own names."""
    config, data = tiny
    spec = RunSpec(objective, "rope", None, seed=3, run_index=0)
    eager = train_run(spec, config, data, tmp_path / "eager", total_steps=6)
    torch._dynamo.reset()
    counters.clear()
    compiled = train_run(spec, dataclasses.replace(config, compile=True), data, tmp_path / "compiled", total_steps=6)
    # The encoder ran compiled, in a graph or two (static, then dynamic widths); the scored positions stay
    # eager, since a compiled gather would recompile for every new count and hit dynamo's recompile limit.
    assert 1 <= counters["stats"]["unique_graphs"] <= 3
    assert compiled.status == eager.status == "completed"
    torch.testing.assert_close(compiled.curves["train_loss"], eager.curves["train_loss"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(compiled.metrics["val_loss"], eager.metrics["val_loss"], rtol=1e-4, atol=1e-5)
    eager_weights = load_file(tmp_path / "eager" / "model.safetensors")
    compiled_weights = load_file(tmp_path / "compiled" / "model.safetensors")
    assert compiled_weights.keys() == eager_weights.keys()
    for name, weight in eager_weights.items():
        torch.testing.assert_close(compiled_weights[name], weight, rtol=1e-3, atol=1e-5, msg=name)
