"""mlmclm: masked vs causal language modelling, compared with controls and honest statistics."""

from __future__ import annotations

__version__ = "0.1.0"
