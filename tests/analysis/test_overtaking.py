"""The step where one objective overtakes the other on a probe, on fabricated curves with a known crossing."""

from __future__ import annotations

import numpy as np
import pytest

from mlmclm.analysis.overtaking import analyze_overtaking, crossing_step, overtaking_step
from mlmclm.grid.records import RunRecord

STEPS = np.arange(10, 110, 10, dtype=float)
OFFSETS = np.array([-0.02, -0.01, 0.0, 0.01, 0.02])[:, None]  # five seeds, mean offset exactly 0


def curves(intercept: float, slope: float) -> np.ndarray:
    return intercept + slope * STEPS[None, :] + OFFSETS


def test_linear_curves_cross_where_the_lines_meet():
    # MLM 0.5 + 0.004 t, CLM 0.6 + 0.002 t: CLM ahead early, MLM ahead from t = 50 on
    result = overtaking_step(STEPS, curves(0.5, 0.004), curves(0.6, 0.002), rng=np.random.default_rng(0))
    assert (result.early_leader, result.late_leader) == ("clm", "mlm")
    assert result.step == pytest.approx(50.0)
    assert result.low is not None and result.low < 50.0 < result.high
    assert 30 <= result.low and result.high <= 70
    assert 0.5 < result.crossing_share <= 1.0


def test_the_crossing_is_interpolated_between_checkpoints():
    # difference -0.03 at t = 40 and +0.01 at t = 50: zero three quarters of the way
    assert crossing_step(np.array([30.0, 40.0, 50.0]), np.array([-0.05, -0.03, 0.01])) == pytest.approx(47.5)
    # a tie at the first checkpoint (both at chance) does not hide the early leader
    assert crossing_step(np.array([10.0, 20.0, 30.0]), np.array([0.0, -0.1, 0.1])) == pytest.approx(25.0)
    # the last sign change counts: from there on the late leader stays ahead
    assert crossing_step(np.array([1.0, 2.0, 3.0, 4.0]), np.array([-1.0, 1.0, -1.0, 1.0])) == pytest.approx(3.5)


def test_no_overtaking_when_one_objective_leads_throughout():
    result = overtaking_step(STEPS, curves(0.7, 0.004), curves(0.6, 0.002), rng=np.random.default_rng(0))
    assert result.early_leader == result.late_leader == "mlm"
    assert result.step is None and result.low is None and result.crossing_share is None


def test_lower_is_better_swaps_the_leaders():
    result = overtaking_step(
        STEPS, curves(0.5, 0.004), curves(0.6, 0.002), higher_is_better=False, rng=np.random.default_rng(0)
    )
    assert (result.early_leader, result.late_leader) == ("mlm", "clm") and result.step == pytest.approx(50.0)


def test_noisy_seeds_widen_the_interval_and_lower_the_crossing_share():
    rng = np.random.default_rng(1)
    noisy_a = curves(0.5, 0.004) + rng.normal(0, 0.05, (5, STEPS.size))
    noisy_b = curves(0.6, 0.002) + rng.normal(0, 0.05, (5, STEPS.size))
    clean = overtaking_step(STEPS, curves(0.5, 0.004), curves(0.6, 0.002), rng=np.random.default_rng(0))
    noisy = overtaking_step(STEPS, noisy_a, noisy_b, rng=np.random.default_rng(0))
    assert noisy.high - noisy.low > clean.high - clean.low
    assert noisy.crossing_share < clean.crossing_share


def test_analyze_overtaking_reads_run_records():
    def run(objective, seed, values):
        return RunRecord.from_json({
            "objective": objective, "attention": "rope", "seed": seed, "status": "completed",
            "curves": {"probe_step": STEPS.tolist(), "probe_tokens": (STEPS * 100).tolist(),
                       "probe/coherence/accuracy": values.tolist()},
        })

    runs = [run("mlm", s, v) for s, v in enumerate(curves(0.5, 0.004))]
    runs += [run("clm", s, v) for s, v in enumerate(curves(0.6, 0.002))]
    (result,) = analyze_overtaking(runs, ["rope", "alibi"], confidence_level=0.95, n_resamples=500, seed=0)
    assert result.metric == "probe/coherence/accuracy" and result.attention == "rope"
    assert result.n_first == result.n_second == 5 and result.step == pytest.approx(50.0)


def _probe_run(objective: str, fold: int | None, seed: int, values: np.ndarray) -> RunRecord:
    return RunRecord.from_json({
        "objective": objective, "attention": "rope", "fold": fold, "seed": seed, "status": "completed",
        "curves": {"probe_step": STEPS.tolist(), "probe_tokens": (STEPS * 100).tolist(),
                   "probe/coherence/accuracy": values.tolist()},
    })


def test_under_cross_validation_the_bootstrap_resamples_seeds_with_their_folds_averaged():
    # every fold of a seed has the same curve: the seed is one unit, so the CV result must equal the result on
    # one fold's runs; resampling the 15 (fold, seed) runs independently would narrow the interval
    rng = np.random.default_rng(2)
    mlm = curves(0.5, 0.004) + rng.normal(0, 0.03, (5, STEPS.size))
    clm = curves(0.6, 0.002) + rng.normal(0, 0.03, (5, STEPS.size))
    grid = [_probe_run(o, f, s, v[s]) for f in range(3) for o, v in (("mlm", mlm), ("clm", clm)) for s in range(5)]
    one_fold = [_probe_run(o, None, s, v[s]) for o, v in (("mlm", mlm), ("clm", clm)) for s in range(5)]
    (cv,) = analyze_overtaking(grid, ["rope"], confidence_level=0.95, n_resamples=500, seed=0, average_folds=True)
    (plain,) = analyze_overtaking(one_fold, ["rope"], confidence_level=0.95, n_resamples=500, seed=0)
    assert cv.folds_averaged and not plain.folds_averaged
    assert (cv.n_first, cv.n_second) == (5, 5)
    assert (cv.step, cv.low, cv.high, cv.crossing_share) == pytest.approx(
        (plain.step, plain.low, plain.high, plain.crossing_share)
    )
    (runs,) = analyze_overtaking(grid, ["rope"], confidence_level=0.95, n_resamples=500, seed=0)
    assert (runs.n_first, runs.high - runs.low < cv.high - cv.low) == (15, True)  # the old, too narrow interval


def test_the_learning_over_time_table_counts_seeds_under_cross_validation():
    from mlmclm.report.length_and_learning import probe_curve_lines

    grid = [_probe_run(o, f, s, v[s]) for f in range(3)
            for o, v in (("mlm", curves(0.5, 0.004)), ("clm", curves(0.6, 0.002))) for s in range(5)]
    cv = analyze_overtaking(grid, ["rope"], confidence_level=0.95, n_resamples=100, seed=0, average_folds=True)
    text = "\n".join(probe_curve_lines(cv, "figure.png"))
    assert "| seeds |" in text and "bootstrap over seeds" in text and "| 5/5 |" in text
