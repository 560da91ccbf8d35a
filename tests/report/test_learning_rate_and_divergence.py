"""The report states each condition's learning rate (and the sweep behind it) and how diverged runs count."""

from __future__ import annotations

from mlmclm.analysis import analyze
from mlmclm.config import StatisticsConfig
from mlmclm.report.markdown import FIGURE_SUFFIXES, render_report
from tests.analysis.synthetic_results import make_raw_results
from tests.analysis.test_divergence import SEEDS, diverge

FAST = StatisticsConfig(bootstrap_resamples=200)
FIGURES = {kind: f"x_{suffix}" for kind, suffix in FIGURE_SUFFIXES.items()}


def sweep_section() -> dict:
    def result(condition: str, index: int, rate: float, status: str, val_loss: float | None) -> dict:
        return {"learning_rate": rate, "run_id": f"{condition}_lrsweep{index}", "status": status,
                "val_loss": val_loss}

    return {
        "rates": [1e-4, 3e-4], "seed": 7, "fold": 0, "criterion": "val_loss", "runs": [],
        "conditions": [
            {"objective": "mlm", "attention": "rope", "condition": "rope_mlm", "chosen_learning_rate": 3e-4,
             "reason": "lowest validation loss (2.1000)",
             "results": [result("rope_mlm", 0, 1e-4, "completed", 2.5), result("rope_mlm", 1, 3e-4, "completed", 2.1)]},
            {"objective": "clm", "attention": "rope", "condition": "rope_clm", "chosen_learning_rate": 1e-4,
             "reason": "lowest validation loss (3.0000); 1 rate(s) diverged and were not eligible",
             "results": [result("rope_clm", 0, 1e-4, "completed", 3.0), result("rope_clm", 1, 3e-4, "diverged", None)]},
        ],
    }


def report(raw: dict) -> str:
    return render_report(analyze(raw, FAST, metrics=["val_loss"]), raw, "x", FIGURES)


def test_setup_lists_each_conditions_chosen_rate_and_the_sweep_table():
    raw = {**make_raw_results(mechanisms=("rope",), failed_run=False), "lr_sweep": sweep_section()}
    text = report(raw)
    section = text.split("### Learning rate")[1].split("## Runs")[0]
    assert "chosen from 0.0001, 0.0003" in section and "seed 7, not a final seed; fold 0" in section
    assert "| `rope_mlm` | 0.0003 | 2.5 | **2.1** | lowest validation loss (2.1000) |" in section
    assert "| `rope_clm` | 0.0001 | **3** | diverged |" in section
    assert text.index("### Learning rate") < text.index("## Runs")


def test_without_a_sweep_the_report_says_the_shared_rate_was_not_tuned():
    raw = make_raw_results(mechanisms=("rope",), failed_run=False)
    raw["config"]["training"] = {"learning_rate": 1e-4}
    section = report(raw).split("### Learning rate")[1].split("## Runs")[0]
    assert "Peak learning rate 0.0001 for every condition" in section and "not tuned" in section


def test_diverged_runs_section_states_the_rule_and_tests_the_rates():
    raw = diverge(make_raw_results(seeds=SEEDS, failed_run=False), ("mlm", "rope"), 7)
    section = report(raw).split("## Diverged runs")[1].split("\n## ")[0]
    assert "excluded from the metric analyses" in section and "Fisher's exact" in section
    assert "| `rope_mlm` | 7 / 8 | 0.875 |" in section
    assert "| mlm_vs_clm | `rope_mlm` vs `rope_clm` | 7/8 vs 0/8 |" in section
    assert "standard_clm` vs `rope_clm" not in section  # neither diverged: p = 1, not listed
    clean = report(make_raw_results(failed_run=False)).split("## Diverged runs")[1].split("\n## ")[0]
    assert "No run diverged." in clean
