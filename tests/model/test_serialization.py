"""Saving into a run directory and loading back: same logits, safe formats, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mlmclm.errors import DataError
from mlmclm.model import load_model, save_model
from tests.model.tiny import MAX_SEQ_LENGTH, VOCAB_SIZE, tiny_model


@pytest.mark.parametrize("objective", ["mlm", "clm"])
def test_save_load_round_trip_gives_identical_logits(tmp_path, mechanism_name, objective):
    torch.manual_seed(0)
    model = tiny_model(objective, mechanism_name, norm="pre" if objective == "clm" else "post")
    with torch.no_grad():  # move every parameter away from its init so a skipped tensor would show
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert not loaded.training
    assert loaded.config == model.config
    ids = torch.randint(1, VOCAB_SIZE, (2, MAX_SEQ_LENGTH))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        assert torch.equal(loaded(ids, mask), model.eval()(ids, mask))


def test_saved_files_load_with_weights_only_torch_and_safetensors(tmp_path):
    model = tiny_model("mlm", "exposb")
    save_model(model, tmp_path)
    payload = torch.load(tmp_path / "final_model.pt", weights_only=True)
    assert payload["config"] == model.config
    tensors = load_file(str(tmp_path / "model.safetensors"))
    assert tensors.keys() == model.state_dict().keys() == payload["state_dict"].keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensors[name], tensor) and torch.equal(payload["state_dict"][name], tensor)
    assert json.loads((tmp_path / "config.json").read_text()) == model.config
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "final_model.pt",
        "model.safetensors",
    ]


def test_loading_falls_back_to_the_torch_file(tmp_path):
    model = tiny_model("clm", "alibi")
    save_model(model, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    ids = torch.randint(1, VOCAB_SIZE, (1, 8))
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path)(ids), model.eval()(ids))


def test_missing_or_corrupt_files_raise_one_line_data_errors(tmp_path):
    with pytest.raises(DataError, match="no saved model in"):
        load_model(tmp_path)
    save_model(tiny_model("mlm", "rope"), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(DataError, match="cannot read the saved model") as error:
        load_model(tmp_path)
    assert "\n" not in str(error.value)

    save_model(tiny_model("mlm", "rope"), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["hidden_size"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="do not fit its config: size mismatch for ") as error:
        load_model(tmp_path)  # the first mismatch says what, not only torch's header line
    assert "\n" not in str(error.value)

    config["hidden_sise"] = config.pop("hidden_size")
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="cannot build"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num_heads", 0, "model.num_heads must be > 0, got 0"),  # was a ZeroDivisionError in the attention
        ("num_heads", 3, "must be divisible by model.num_heads"),
        ("attention_dropout", 1.5, "model.attention_dropout must lie in"),
    ],
)
def test_a_saved_config_gets_the_checks_train_applies(tmp_path, key, value, message):
    save_model(tiny_model("mlm", "standard"), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[key] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=f"cannot build.*{message}"):
        load_model(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a torch file", b"\x80\x02}q\x00."], ids=["empty", "text", "pickle"])
def test_an_empty_or_foreign_torch_file_is_a_data_error(tmp_path, content):
    """An empty final_model.pt was a bare EOFError traceback from torch's weights-only unpickler."""
    save_model(tiny_model("mlm", "standard"), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "final_model.pt").write_bytes(content)
    with pytest.raises(DataError, match="cannot read .*final_model.pt: ") as error:
        load_model(tmp_path)
    assert "\n" not in str(error.value)
