"""Shared fixtures: keep every test's caches and outputs inside its own temporary directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_working_directory(tmp_path, monkeypatch):
    """Relative paths (outputs/ and its cache) land in the test's tmp dir, never in the checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
