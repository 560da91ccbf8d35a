"""Under --cross-validation every record says how the fold overlap was handled (issue 12's done-when)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from scipy import stats

from mlmclm.analysis import analyze
from mlmclm.analysis.aggregate import probe_score_matrix
from mlmclm.analysis.hypothesis_tests import CORRECTED_T, CORRECTED_WELCH
from mlmclm.analysis.ranking import CV_BLOCK_STATEMENT
from mlmclm.analysis.resampled import NADEAU_BENGIO
from mlmclm.config import StatisticsConfig
from mlmclm.grid.records import RunRecord
from mlmclm.report.documents import analysis_document
from mlmclm.report.endpoint_sections import band_separation_lines, headline_lines
from mlmclm.report.markdown import comparison_table
from mlmclm.report.ranking_section import ranking_section
from tests.analysis.synthetic_results import make_raw_results

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "statistical_analysis.schema.json"
SEEDS, FOLDS = (42, 43, 44), (0, 1, 2)


@pytest.fixture(scope="module")
def cv():
    raw = make_raw_results(seeds=SEEDS, folds=FOLDS)  # the last run (alibi CLM, seed 44, fold 2) failed
    raw["config"].update(cross_validation=True, folds=len(FOLDS))
    return raw, analyze(raw, StatisticsConfig(bootstrap_resamples=200), metrics=["val_loss"])


def test_every_comparison_records_the_nadeau_bengio_correction(cv):
    _, analysis = cv
    assert analysis.comparisons
    for comparison in analysis.comparisons:
        assert comparison.test.name in (CORRECTED_T, CORRECTED_WELCH)
        assert comparison.test.cv_correction == NADEAU_BENGIO
        assert comparison.test.cv_test_train_ratio == pytest.approx(1 / (len(FOLDS) - 1))  # n_test/n_train of 3 folds


def test_rankings_state_why_their_blocks_are_seeds_averaged_over_folds(cv):
    _, analysis = cv
    assert analysis.rankings
    assert all(r.block == "seed (mean over folds)" and r.cv_statement == CV_BLOCK_STATEMENT for r in analysis.rankings)


def test_probe_aggregates_resample_seeds_averaged_over_folds(cv):
    raw, analysis = cv
    tasks = analysis.probe_iqm[0].tasks
    runs = [RunRecord.from_json(run) for run in raw["runs"]]
    by_seed = probe_score_matrix(runs, "mlm", "rope", tasks, "accuracy", average_folds=True)
    by_run = probe_score_matrix(runs, "mlm", "rope", tasks, "accuracy")
    assert by_seed.shape == (3, 2) and by_run.shape == (9, 2)
    assert by_seed[0] == pytest.approx(by_run[0::3].mean(axis=0))  # runs are listed seed by seed within a fold
    rope = next(a for a in analysis.probe_iqm if a.condition == "rope_mlm")
    assert rope.n_runs == 3 and rope.iqm == pytest.approx(stats.trim_mean(by_seed, 0.25, axis=None))
    assert {p.n_runs for p in analysis.probe_profiles} == {3}
    assert all(np.isfinite(p.band_low).all() for p in analysis.probe_profiles)


def test_cv_analysis_json_validates_against_the_schema(cv):
    _, analysis = cv
    document = json.loads(json.dumps(analysis_document(analysis, "cv")))
    jsonschema.validate(document, json.loads(SCHEMA.read_text(encoding="utf-8")))
    comparison_floors = [f for f in document["attainable_p"] if not f["family"].startswith("posthoc_")]
    assert comparison_floors and all(f["can_reach_alpha"] and f["runs_needed"] is None for f in comparison_floors)


def test_report_names_the_corrected_test_and_the_cv_blocks_without_claiming_a_permutation_p(cv):
    """The CV reason says "no permutation or rank test is valid"; the table once read that as a permutation p."""
    _, analysis = cv
    table = "\n".join(comparison_table(analysis.comparisons_in("mlm_vs_clm/val_loss"), analysis))
    assert "corrected resampled t-test: t = " in table and "permutation" not in table
    assert "variance inflated for 3-fold cross-validation overlap" in table
    assert CV_BLOCK_STATEMENT in "\n".join(ranking_section(analysis, {"critical_difference": "cd.png"}))
    assert "Mechanisms under MLM (3 blocks, each a seed's mean over the folds)" in "\n".join(headline_lines(analysis))


def test_band_separations_are_over_seeds_with_their_folds_averaged(cv):
    _, analysis = cv
    assert analysis.band_separations
    assert all(s.folds_averaged and (s.units_a, s.units_b) == (3, 3) for s in analysis.band_separations)
    text = "\n".join(band_separation_lines(analysis))
    assert "each seed's folds are averaged into one curve first" in text and "(n = 3 vs 3 seeds)" in text
