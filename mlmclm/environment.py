"""What produced a result: package versions, platform, device and git commit, recorded in every output."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

import mlmclm

_PACKAGES = ("torch", "numpy", "scipy", "statsmodels", "tokenizers", "scikit-learn", "matplotlib", "safetensors")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def git_commit(directory: Path | None = None) -> str | None:
    """The commit of the mlmclm checkout (None for an installed wheel or without git)."""
    directory = directory or Path(mlmclm.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def collect_environment(device: str) -> dict[str, object]:
    env: dict[str, object] = {
        "mlmclm": mlmclm.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "device": device,
        "cuda": torch.version.cuda,
        "torch_threads": torch.get_num_threads(),
        "git_commit": git_commit(),
    }
    env.update({package.replace("-", "_"): _version(package) for package in _PACKAGES})
    return env
