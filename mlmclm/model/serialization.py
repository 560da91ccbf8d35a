"""Saving a trained model into its run directory and loading it back.

A run directory holds the same weights twice, for two audiences: ``model.safetensors`` (safe, fast, the
ecosystem's format) and ``final_model.pt`` (``{"state_dict", "config"}``, readable with
``torch.load(..., weights_only=True)``), plus ``config.json`` (the model's plain config dict). The output
projection is tied to the token embeddings by construction (the head reads ``token_embeddings.weight``), so
the state dict holds every tensor once and safetensors' no-shared-tensors rule is met without special cases.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from mlmclm.atomic import atomic_write, atomic_write_json
from mlmclm.config import ModelConfig, from_dict, validate_model
from mlmclm.errors import ConfigError, DataError
from mlmclm.model.transformer import Transformer

WEIGHTS_NAME = "model.safetensors"
TORCH_NAME = "final_model.pt"
CONFIG_NAME = "config.json"
_CONDITION_KEYS = ("objective", "attention", "vocab_size", "max_seq_length", "pad_token_id")


def save_model(model: Transformer, run_dir: str | Path) -> Path:
    """Write ``model.safetensors``, ``final_model.pt`` and ``config.json`` atomically; returns ``run_dir``."""
    run_dir = Path(run_dir)
    state_dict = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    config = dict(model.config)
    atomic_write(
        run_dir / WEIGHTS_NAME,
        lambda tmp: save_file(state_dict, str(tmp), metadata={"config": json.dumps(config)}),
    )
    atomic_write(
        run_dir / TORCH_NAME, lambda tmp: torch.save({"state_dict": state_dict, "config": config}, tmp)
    )
    atomic_write_json(run_dir / CONFIG_NAME, config)
    return run_dir


def model_from_config(config: dict[str, Any], source: Path) -> Transformer:
    """An initialised model with the architecture recorded in a saved config dict."""
    if not isinstance(config, dict) or any(key not in config for key in _CONDITION_KEYS):
        raise DataError(f"{source} is not a mlmclm model config (needs {', '.join(_CONDITION_KEYS)})")
    fields = {key: value for key, value in config.items() if key not in _CONDITION_KEYS}
    try:
        model_config = from_dict(ModelConfig, fields, "model.")
        validate_model(model_config)  # the checks train applies: a corrupt num_heads is an error, not a crash
        return Transformer(model_config, **{key: config[key] for key in _CONDITION_KEYS})
    except ConfigError as exc:
        raise DataError(f"{source} describes a model this mlmclm version cannot build: {exc}") from exc


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> Transformer:
    """The saved model of a run directory, on ``device``, in eval mode."""
    run_dir = Path(run_dir)
    weights, config_path, torch_path = run_dir / WEIGHTS_NAME, run_dir / CONFIG_NAME, run_dir / TORCH_NAME
    try:
        if weights.is_file() and config_path.is_file():
            source = weights
            config = json.loads(config_path.read_text(encoding="utf-8"))
            state_dict = load_file(str(weights))
        elif torch_path.is_file():
            source = torch_path
            payload = torch.load(torch_path, map_location="cpu", weights_only=True)
            config, state_dict = payload["config"], payload["state_dict"]
        else:
            raise DataError(
                f"no saved model in {run_dir}: expected {WEIGHTS_NAME} + {CONFIG_NAME} or {TORCH_NAME} "
                "(did the run finish?)"
            )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, SafetensorError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the saved model in {run_dir}: {exc}".splitlines()[0]) from exc
    except pickle.UnpicklingError as exc:  # its message advises weights_only=False: wrong for a corrupt file
        raise DataError(f"cannot read {torch_path}: not a saved mlmclm model (torch's safe loader refused it)") from exc
    except (RuntimeError, EOFError) as exc:  # torch.load on a truncated or foreign file; EOFError: an empty one
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "the file is empty or truncated"
        raise DataError(f"cannot read {torch_path}: {reason}") from exc
    model = model_from_config(config, source)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        # torch's message is a header line, then one line per mismatch: keep the first mismatch, which says what
        details = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        raise DataError(f"weights in {source} do not fit its config: {details[0] if details else exc}") from exc
    return model.to(device).eval()
