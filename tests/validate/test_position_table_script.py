"""The position-table measurement of docs/validation.md (benchmarks/validation/position_table.py)."""

import math

import torch

from benchmarks.validation.position_table import lag_cosines


def test_an_ordered_table_has_similar_neighbours_and_a_random_one_does_not():
    positions = torch.arange(128, dtype=torch.float64)[:, None]
    frequencies = 1.0 / 10000 ** (torch.arange(0, 64, dtype=torch.float64) / 64)
    ordered = torch.cat([torch.sin(positions * frequencies), torch.cos(positions * frequencies)], dim=1)
    random = torch.randn(128, 128, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    smooth, noise = lag_cosines(ordered), lag_cosines(random)
    assert smooth[1] > 0.9 and smooth[1] > smooth[5] > smooth[50]
    assert all(abs(value) < 0.05 for value in noise.values())


def test_lags_beyond_the_table_are_left_out():
    cosines = lag_cosines(torch.eye(8, dtype=torch.float64) + 1.0)
    assert set(cosines) == {1, 5}
    assert math.isclose(cosines[1], -1 / 7, rel_tol=1e-9)
