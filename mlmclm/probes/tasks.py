"""Registry of the probe tasks built from held-out text."""

from __future__ import annotations

from mlmclm.registry import Registry

PROBE_TASKS: Registry = Registry("probe task")
