"""Fixtures of the model tests."""

from __future__ import annotations

import pytest

from tests.model.tiny import MECHANISMS


@pytest.fixture(params=MECHANISMS)
def mechanism_name(request) -> str:
    return request.param
