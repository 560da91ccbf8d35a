"""Sample efficiency: per-point t-interval bands over seeds and the point from which two arms separate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmclm.analysis.curves import band_separations, t_band
from mlmclm.grid.records import RunRecord


def test_band_is_the_t_interval_of_the_mean_at_each_point():
    stacked = np.array([[1.0, 2.0], [2.0, 2.5], [4.0, np.nan]])
    mean, low, high = t_band(stacked, 0.95)
    expected = stats.t.interval(0.95, 2, loc=np.mean([1, 2, 4]), scale=stats.sem([1, 2, 4]))
    assert (low[0], high[0]) == pytest.approx(expected)
    expected = stats.t.interval(0.95, 1, loc=2.25, scale=stats.sem([2.0, 2.5]))
    assert (low[1], high[1]) == pytest.approx(expected)


def _runs(attention: str, curve: np.ndarray, noise: list[float]) -> list[dict]:
    tokens = (np.arange(curve.size) * 1000).tolist()
    return [
        {"objective": "mlm", "attention": attention, "status": "completed",
         "curves": {"tokens": tokens, "val_loss": (curve + shift).tolist()}}
        for shift in noise
    ]


def records(runs):
    return [RunRecord.from_json(run) for run in runs]


def test_separation_is_the_first_token_count_after_which_bands_never_overlap_again():
    x = np.arange(10)
    common = 5.0 - 0.1 * x
    apart = common - np.where(x >= 6, 1.0, 0.0)  # 1.0 lower from the 7th point (6000 tokens) on
    apart[2] -= 1.0  # a single early excursion: overlap again afterwards, so it does not count
    runs = _runs("rope", common, [-0.05, 0.0, 0.05]) + _runs("alibi", apart, [-0.05, 0.0, 0.05])
    (result,) = band_separations(records(runs), ["mlm"], ["rope", "alibi"], 0.95)
    assert result.axis == "tokens" and result.separated_from == 6000.0
    assert result.better_group == "alibi_mlm"


def test_bands_that_overlap_at_the_end_never_separate():
    x = np.arange(10)
    runs = _runs("rope", 5.0 - 0.1 * x, [-0.2, 0.0, 0.2]) + _runs("alibi", 5.01 - 0.1 * x, [-0.2, 0.0, 0.2])
    (result,) = band_separations(records(runs), ["mlm"], ["rope", "alibi"], 0.95)
    assert result.separated_from is None and result.better_group is None
