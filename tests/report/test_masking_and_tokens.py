"""The setup section states the masking regime and what each condition's training saw and scored."""

from __future__ import annotations

from mlmclm.report.markdown import _masking_and_tokens
from tests.analysis.synthetic_results import make_raw_results


def test_setup_lists_the_masking_regime_and_mean_tokens_per_condition():
    raw = make_raw_results(mechanisms=("rope",), seeds=(1, 2))
    raw["config"]["data"] = {"mlm_strategy": "static", "clm_strategy": "packed"}
    raw["data"]["mlm_masking"] = "static masks: 10 per sequence"
    for index, run in enumerate(raw["runs"]):
        mlm = run["objective"] == "mlm"
        run["tokens"] = {
            "processed": 100_000 + 100 * index,
            "scored": 150 if mlm else 980,
            "targetable": 5000,
            "distinct_target_fraction": 0.25 if mlm else 0.99,
            "processed_vs_shared": 1.0 if mlm else 2.0,
        }
    text = "\n".join(_masking_and_tokens(raw))
    assert "- MLM masking: `static`, static masks: 10 per sequence" in text
    assert "- CLM sequences: `packed`" in text
    assert "| `rope_mlm` | 2 | 100,050 | 150 | 0.25 | 1 |" in text
    # the failed CLM run (the last one) is left out of the means
    assert "| `rope_clm` | 1 | 100,200 | 980 | 0.99 | 2 |" in text


def test_setup_says_so_when_no_run_recorded_tokens():
    assert "- No run recorded the tokens it saw." in _masking_and_tokens(make_raw_results())


def test_setup_names_only_the_objectives_that_were_run():
    raw = make_raw_results(objectives=("clm",), mechanisms=("rope",), seeds=(1, 2))
    raw["config"]["data"] = {"mlm_strategy": "dynamic", "clm_strategy": "standard"}
    raw["data"]["mlm_masking"] = "masks redrawn every epoch"
    text = "\n".join(_masking_and_tokens(raw))
    assert "MLM masking" not in text and "- CLM sequences: `standard`" in text
