"""The command line: dry-run plans, flag precedence, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlmclm.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_corpus(tmp_path) -> str:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    lines = [" ".join(words[(i + j) % len(words)] for j in range(8 + i % 20)) + f" doc {i}" for i in range(120)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def run_cli(capsys, *argv):
    """Run the CLI in-process; argparse errors exit, our own errors return, both give the code."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def planned(out: str) -> int:
    last = out.strip().splitlines()[-1]
    assert last.startswith("Planned experiments: "), last
    return int(last.split(": ")[1])


def test_dry_run_quick_test_two_mechanisms_plans_12(capsys, tiny_corpus):
    code, out, _ = run_cli(
        capsys, "train", "--quick-test", "--objectives", "both", "--attention", "standard", "rope",
        "--data", tiny_corpus, "--dry-run", "--no-probes",
    )
    assert code == 0
    assert planned(out) == 12
    assert "rope_clm_run2" in out and "standard_mlm_run0" in out


def test_dry_run_cross_validation_plans_120(capsys, tiny_corpus):
    code, out, _ = run_cli(
        capsys, "train", "--num-runs", "5", "--cross-validation", "--folds", "3", "--data", tiny_corpus,
        "--dry-run", "--no-probes",
    )
    assert code == 0
    assert planned(out) == 120
    assert "absolute_clm_fold2_run4" in out


def test_dry_run_prints_the_resolved_config_with_cli_overrides(capsys, tiny_corpus):
    code, out, _ = run_cli(
        capsys, "train", "--quick-test", "--learning-rate", "0.003", "--batch-size", "5", "--seeds", "11", "12",
        "--data", tiny_corpus, "--dry-run", "--no-probes",
    )
    assert code == 0
    assert "learning_rate: 0.003" in out and "batch_size: 5" in out
    assert planned(out) == 2 * 4 * 2  # seeds set the runs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--learning-rate", "0"], "training.learning_rate must be > 0"),
        (["--learning-rate", "abc"], "invalid float value"),
        (["--attention", "roap"], "did you mean 'rope'"),
        (["--objectives", "plm"], "unknown value 'plm'"),
        (["--folds", "1", "--cross-validation"], "folds must be >= 2"),
        (["--significance-level", "1.2"], "significance_level must lie strictly between 0 and 1"),
        (["--batch-size", "-3"], "batch_size must be > 0"),
        (["--experiment-name", "../x"], "plain file name"),
        (["--num-runs", "2", "--seeds", "1", "2", "3"], "num_runs is 2 but 3 seeds"),
        (["--data", "/nonexistent/corpus.txt"], "/nonexistent/corpus.txt"),
        (["--config", "/nonexistent/config.yaml"], "config file not found"),
        (["--device", "tpu"], "invalid choice"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, message):
    code, _, err = run_cli(capsys, "train", "--quick-test", "--dry-run", *argv)
    assert code == 2
    _assert_one_line(err, message)


def _assert_one_line(err: str, message: str) -> None:
    """One ``error:`` line, last on stderr (progress logs may precede it), and no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert message in errors[0]
    assert "Traceback" not in err


def test_dry_run_builds_the_probe_tasks_and_reads_probe_files(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", "--quick-test", "--dry-run")
    assert code == 0
    for task in ("bigram_shift", "sentence_length", "word_content", "coherence"):
        assert f"{task}: " in out and "train /" in out
    code, _, err = run_cli(
        capsys, "train", "--quick-test", "--dry-run", "--probe-data", str(tmp_path / "missing.jsonl")
    )
    assert code == 2
    _assert_one_line(err, "missing.jsonl")


def test_empty_data_file_is_one_line_and_exit_code_2(capsys, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, _, err = run_cli(capsys, "train", "--quick-test", "--dry-run", "--data", str(empty))
    assert code == 2
    _assert_one_line(err, "empty.txt")


def test_malformed_yaml_via_cli_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {hidden_size: 64\n")
    code, _, err = run_cli(capsys, "train", "--config", str(bad), "--dry-run")
    assert code == 2
    _assert_one_line(err, "malformed YAML")


def test_debug_shows_the_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--dry-run", "--learning-rate", "0", "--debug"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_train_py_shim_exits_2_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "--dry-run", "--attention", "nonsense"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 2
    _assert_one_line(result.stderr, "unknown value 'nonsense'")


@pytest.fixture
def trained(tmp_path):
    """A raw-results file (fabricated runs, fast bootstrap) and a training report beside it."""
    import json

    from tests.analysis.synthetic_results import make_raw_results

    raw = make_raw_results(objectives=("mlm",), mechanisms=("standard", "rope"), failed_run=False)
    raw["config"]["statistics"] = {"bootstrap_resamples": 200}
    raw_path = tmp_path / "synthetic_raw_results.json"
    raw_path.write_text(json.dumps(raw))
    training_report = tmp_path / "synthetic_report.md"
    training_report.write_text("# the report `mlmclm train` wrote\n")
    return raw_path, training_report


def test_analyze_writes_beside_the_training_report_and_reproduces_itself(capsys, trained):
    raw_path, training_report = trained
    before = training_report.read_bytes()
    options = ["--correction", "bonferroni", "--significance-level", "0.01", "--metric", "val_loss"]
    code, out, _ = run_cli(capsys, "analyze", str(raw_path), *options)
    assert code == 0
    assert training_report.read_bytes() == before  # the training report is not overwritten
    report = (raw_path.parent / "synthetic_reanalysis_report.md").read_text(encoding="utf-8")
    assert f"report: {raw_path.parent / 'synthetic_reanalysis_report.md'}" in out
    assert (raw_path.parent / "synthetic_reanalysis_statistical_analysis.png").is_file()
    reproduce = report.split("## Reproduce")[1]
    assert "mlmclm train --config configs/synthetic.yaml" in reproduce
    assert f"mlmclm analyze {raw_path} {' '.join(options)}" in reproduce
    assert "Bonferroni correction" in report and "leaves it unchanged" in report
    for _ in range(2):
        code, out, _ = run_cli(capsys, "analyze", str(raw_path), "--name", "strict", "--metric", "val_loss")
        assert code == 0 and (raw_path.parent / "strict_report.md").is_file()
    assert "note: replacing the previous strict_* files" in out


@pytest.mark.parametrize(
    ("name", "message"),
    [("synthetic", "would overwrite the training report"), ("../x", "plain file name")],
)
def test_analyze_refuses_a_name_that_overwrites_or_escapes(capsys, trained, name, message):
    raw_path, training_report = trained
    before = training_report.read_bytes()
    code, _, err = run_cli(capsys, "analyze", str(raw_path), "--name", name)
    assert code == 2
    _assert_one_line(err, message)
    assert training_report.read_bytes() == before
