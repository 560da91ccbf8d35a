"""Item-level probe analysis: hand-computed differences, McNemar against its definition, and the analysis rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from mlmclm.analysis import analyze
from mlmclm.analysis.item_level import (
    bootstrap_item_difference,
    compare_items,
    correctness_matrix,
    item_standard_error,
    mcnemar_exact,
)
from mlmclm.config import StatisticsConfig
from mlmclm.grid.records import RunRecord
from tests.analysis.synthetic_results import ITEMS_PER_TASK, make_raw_results

BOOT = {"confidence_level": 0.95, "n_resamples": 2000}


def test_difference_averages_each_items_correctness_over_seeds_first():
    a = np.array([[1, 0, 1, 1], [1, 1, 0, 1]], dtype=float)  # per item: 1, .5, .5, 1
    b = np.array([[0, 0, 1, 1], [0, 1, 1, 1]], dtype=float)  # per item: 0, .5, 1, 1
    difference, ci, p = bootstrap_item_difference(a, b, rng=np.random.default_rng(0), **BOOT)
    assert difference == pytest.approx((1 + 0 - 0.5 + 0) / 4)
    assert ci.low <= difference <= ci.high
    assert 0 < p <= 1


def test_a_constant_item_difference_has_a_degenerate_interval_and_no_difference_has_p_one():
    a = np.ones((2, 10))
    b = np.zeros((2, 10))
    difference, ci, _ = bootstrap_item_difference(a, b, rng=np.random.default_rng(0), **BOOT)
    assert difference == 1.0 and ci.low == ci.high == 1.0
    assert bootstrap_item_difference(a, a, rng=np.random.default_rng(0), **BOOT)[2] == 1.0


def test_a_clear_item_level_difference_is_significant():
    rng = np.random.default_rng(1)
    truth = rng.random(300) < 0.6
    better = np.array([truth | (rng.random(300) < 0.5) for _ in range(3)], dtype=float)
    same = np.array([truth for _ in range(3)], dtype=float)
    assert bootstrap_item_difference(better, same, rng=np.random.default_rng(0), **BOOT)[2] < 0.001


def test_mcnemar_exact_matches_the_binomial_test_on_discordant_items_and_statsmodels():
    a = np.array([1] * 20 + [1] * 9 + [0] * 2 + [0] * 5, dtype=bool)  # both right 20, a only 9, b only 2
    b = np.array([1] * 20 + [0] * 9 + [1] * 2 + [0] * 5, dtype=bool)
    statistic, p = mcnemar_exact(a, b)
    assert p == pytest.approx(stats.binomtest(2, 11, 0.5).pvalue)
    assert p == pytest.approx(mcnemar([[20, 9], [2, 5]], exact=True).pvalue)
    assert statistic == 2


def test_single_runs_use_mcnemar_and_unequal_item_records_are_refused():
    run_a = RunRecord("a_mlm_run0", "mlm", "a", None, 0, 0, probe_items={"t": "1110"})
    run_b = RunRecord("a_clm_run0", "clm", "a", None, 0, 0, probe_items={"t": "0110"})
    result = compare_items([run_a], [run_b], "t", family="f", labels=("a", "b"), rng=np.random.default_rng(0), **BOOT)
    assert result.test == "McNemar exact" and result.difference == pytest.approx(0.25)
    assert result.standard_error_a == pytest.approx(np.sqrt(0.75 * 0.25 / 4))
    assert item_standard_error(0.75, 4) == result.standard_error_a
    assert correctness_matrix([run_a, dataclasses.replace(run_b, probe_items={"t": "10"})], "t") is None
    rng = np.random.default_rng(0)
    no_items = dataclasses.replace(run_b, probe_items=None)
    assert compare_items([run_a], [no_items], "t", family="f", labels=("a", "b"), rng=rng, **BOOT) is None


def test_analysis_adds_one_item_level_row_per_task_and_mechanism_beside_the_seed_level_ones():
    raw = make_raw_results(baselines=True, mechanisms=("standard", "rope"), failed_run=False)
    analysis = analyze(raw, StatisticsConfig(bootstrap_resamples=200))
    rows = analysis.item_level
    assert {(r.task, r.group_a, r.group_b) for r in rows} == {
        (task, f"{m}_mlm", f"{m}_clm") for task in ("bigram_shift", "sentence_length") for m in ("standard", "rope")
    }
    assert all(r.n_items == ITEMS_PER_TASK and r.runs_a == 3 and r.p_adjusted is not None for r in rows)
    run_accuracy = np.mean([
        run["metrics"]["probe/bigram_shift/accuracy"] for run in raw["runs"]
        if run["objective"] == "mlm" and run["attention"] == "rope"
    ])
    row = next(r for r in rows if r.task == "bigram_shift" and r.group_a == "rope_mlm")
    assert row.accuracy_a == pytest.approx(run_accuracy)
