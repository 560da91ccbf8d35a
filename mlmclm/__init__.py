"""mlmclm: masked vs causal language modelling, compared with controls and honest statistics.

``mlmclm.load_model(run_dir)`` returns a trained model in eval mode; everything else is reached through the
``mlmclm`` command line (``python train.py``, ``mlmclm analyze``, ``mlmclm export``).
"""

from __future__ import annotations

__version__ = "0.1.0"


def load_model(run_dir, device: str = "cpu"):
    """Load a trained run's model (``model.safetensors`` + ``config.json``) in eval mode."""
    from mlmclm.model import load_model as _load_model

    return _load_model(run_dir, device=device)


__all__ = ["__version__", "load_model"]
