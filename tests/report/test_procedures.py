"""The methods lines name the tests and the CV correction the records carry, never a stale rule."""

from __future__ import annotations

from mlmclm.analysis import analyze
from mlmclm.config import StatisticsConfig
from mlmclm.report.procedures import procedure_lines
from tests.analysis.synthetic_results import make_raw_results

FAST = StatisticsConfig(bootstrap_resamples=200)


def test_cross_validation_grid_names_the_nadeau_bengio_correction():
    raw = make_raw_results(folds=(0, 1, 2), failed_run=False)
    raw["config"] = {**raw["config"], "cross_validation": True, "folds": 3}
    text = " ".join(procedure_lines(analyze(raw, FAST, metrics=["val_loss"])))
    assert "Nadeau–Bengio" in text and "n_test/n_train = 0.5" in text
    assert "corrected resampled t-test" in text and "sign-flip" not in text


def test_three_seeds_say_the_permutation_floor_blocks_significance():
    text = " ".join(procedure_lines(analyze(make_raw_results(), FAST, metrics=["val_loss"])))
    assert "sign-flip permutation test" in text and "0.25" in text
    assert "Nadeau" not in text and "Shapiro" in text
