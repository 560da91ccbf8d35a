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
    # each fold trains its own tokenizer on its training part only
    fold_lines = [line for line in out.splitlines() if line.startswith("fold ") and "tokenizer: sha256" in line]
    assert len(fold_lines) == 3 and len({line.split()[-1] for line in fold_lines}) == 3


def test_dry_run_prints_the_resolved_config_with_cli_overrides(capsys, tiny_corpus):
    code, out, _ = run_cli(
        capsys, "train", "--quick-test", "--learning-rate", "0.003", "--batch-size", "5", "--seeds", "11", "12",
        "--data", tiny_corpus, "--dry-run", "--no-probes",
    )
    assert code == 0
    assert "learning_rate: 0.003" in out and "batch_size: 5" in out
    assert planned(out) == 2 * 4 * 2  # seeds set the runs


def test_dry_run_shows_the_learning_rate_sweep_before_the_final_runs(capsys, tiny_corpus):
    code, out, _ = run_cli(
        capsys, "train", "--quick-test", "--attention", "rope", "--lr-sweep", "1e-4", "3e-4", "1e-3",
        "--data", tiny_corpus, "--dry-run", "--no-probes",
    )
    assert code == 0
    assert "lr_sweep: [0.0001, 0.0003, 0.001]" in out
    sweep, plan = out.split("# Learning-rate sweep")[1].split("# Experiment plan")
    assert sweep.count("_lrsweep") == 2 * 3 and "rope_clm_lrsweep2" in sweep and "lr=0.001" in sweep
    assert "Sweep runs: 6 (seed 0, not a final seed)" in sweep
    assert "rope_mlm_run0" in plan and "lr=chosen by the sweep" in plan and "_lrsweep" not in plan
    assert planned(out) == 2 * 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr-sweep", "1e-4", "0"], "training.lr_sweep must be > 0"),
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
        (["--test", "asso"], "did you mean 'aso'"),
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
    for task in ("bigram_shift", "word_order", "sentence_length", "word_content", "coherence"):
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


def test_a_refused_train_leaves_no_new_output_directory_behind(capsys, tmp_path):
    """A bad corpus found after the lock was taken: the new output directory (lock file, cache) goes again;
    an existing one keeps what it had."""
    corpus = tmp_path / "latin1.txt"
    corpus.write_bytes(b"\xff\xfe caf\xe9 is not UTF-8\n" * 3)
    argv = ["train", "--quick-test", "--max-steps", "2", "--no-probes", "--data", str(corpus)]
    fresh = tmp_path / "fresh"
    assert main([*argv, "--output-dir", str(fresh)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err and not fresh.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "notes.txt").write_text("mine", encoding="utf-8")
    assert main([*argv, "--output-dir", str(existing)]) == 2
    assert (existing / "notes.txt").read_text(encoding="utf-8") == "mine"


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
def no_data_work(monkeypatch):
    """Fail the test if the corpus is read or the tokenizer obtained (by the dry run or the grid runner)."""
    import mlmclm.data
    import mlmclm.grid.runner

    def forbidden(config):
        raise AssertionError("prepare_data was called before the error")

    monkeypatch.setattr(mlmclm.data, "prepare_data", forbidden)
    monkeypatch.setattr(mlmclm.grid.runner, "prepare_data", forbidden)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--quick-test", "--epochs", "2"], "training.max_steps = 80 (from --quick-test)"),
        (["--epochs", "3", "--max-steps", "10"], "training.epochs = 3 (from the command line) has no effect"),
        (["--no-probes", "--probe-mode", "finetune"], "probes.mode = 'finetune' (from the command line)"),
        (["--no-probes", "--probe-data", "tasks.jsonl"], "probes.data_files"),
        (["--workers", "2", "--executor", "ray"], "workers = 2 (from the command line) has no effect"),
        (["--folds", "5"], "folds = 5 (from the command line) has no effect because cross_validation"),
        (["--objectives", "clm", "--mlm-strategy", "span"], "data.mlm_strategy = 'span'"),
        (["--objectives", "mlm", "--clm-strategy", "packed"], "data.clm_strategy = 'packed'"),
        (["--document-separator", "%"], "the separator only splits .txt corpora"),
        (["--document-separator", ""], "data.document_separator must not be empty"),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_flag_without_effect_fails_before_any_data_work(capsys, no_data_work, argv, message, dry_run):
    code, _, err = run_cli(capsys, "train", *argv, *(["--dry-run"] if dry_run else []))
    assert code == 2
    _assert_one_line(err, message)


@pytest.mark.parametrize("dry_run", [True, False])
def test_device_cuda_without_cuda_fails_before_any_data_work(capsys, monkeypatch, tmp_path, no_data_work, dry_run):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli(capsys, "train", "--quick-test", "--device", "cuda", *(["--dry-run"] if dry_run else []))
    assert code == 2
    _assert_one_line(err, "--device cuda was requested but no CUDA device is available")
    assert not (tmp_path / ".cache").exists() and not (tmp_path / "outputs").exists()


def test_device_mps_without_mps_fails_before_any_data_work(capsys, monkeypatch, tmp_path, no_data_work):
    import torch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    code, _, err = run_cli(capsys, "train", "--quick-test", "--device", "mps", "--dry-run")
    assert code == 2
    _assert_one_line(err, "--device mps was requested but MPS is not available")
    assert not (tmp_path / ".cache").exists()


def _budget_line(out: str) -> str:
    lines = out.splitlines()
    return lines[lines.index("# Budget (every run)") + 1]


def test_dry_run_prints_the_step_budget_from_max_steps(capsys, tiny_corpus):
    code, out, _ = run_cli(capsys, "train", "--quick-test", "--data", tiny_corpus, "--dry-run", "--no-probes")
    assert code == 0
    assert _budget_line(out).startswith("80 optimizer steps per run (set by training.max_steps) = ")


def test_dry_run_prints_the_step_budget_from_epochs(capsys, tmp_path, tiny_corpus):
    config = tmp_path / "small.yaml"
    config.write_text("data: {vocab_size: 200, max_seq_length: 64}\ntraining: {epochs: 2, batch_size: 4}\n")
    code, out, _ = run_cli(
        capsys, "train", "--config", str(config), "--data", tiny_corpus, "--dry-run", "--no-probes"
    )
    assert code == 0
    line = _budget_line(out)
    steps = int(line.split()[0])
    sequences = int(line.split(" epochs of ")[1].split()[0])
    assert "(set by training.epochs) = 2.00 epochs of" in line
    assert steps == 2 * -(-sequences // 4)  # two passes of ceil(sequences / batch) steps


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
    [("synthetic", "would overwrite the training report"), ("../x", "plain file name"), ("", "plain file name")],
)
def test_analyze_refuses_a_name_that_overwrites_or_escapes(capsys, trained, name, message):
    raw_path, training_report = trained
    before = training_report.read_bytes()
    code, _, err = run_cli(capsys, "analyze", str(raw_path), "--name", name)
    assert code == 2
    _assert_one_line(err, message)
    assert training_report.read_bytes() == before


def _set(path: str, value):
    """A change to the raw results: set the dotted ``path`` (``runs.3.metrics``) to ``value``."""
    def change(raw: dict) -> None:
        *parents, last = path.split(".")
        target = raw
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[int(last) if isinstance(target, list) else last] = value
    return change


def _repeat_run(new_id: str | None = None):
    def change(raw: dict) -> None:
        raw["runs"].append({**raw["runs"][0], **({"run_id": new_id} if new_id else {})})
    return change


BAD_RAW_RESULTS = {
    "config is a number": (_set("config", 5), "config must be an object"),
    "config is null": (_set("config", None), "config must be an object"),
    "config is a list": (_set("config", []), "config must be an object"),
    "config.statistics is a number": (_set("config.statistics", 5), "config.statistics must be an object"),
    "config.data is a number": (_set("config.data", 5), "config.data must be an object"),
    "config.model is a number": (_set("config.model", 5), "config.model must be an object"),
    "no experiment_name": (lambda raw: raw.pop("experiment_name"), "experiment_name must be a plain name"),
    "metrics is a string": (_set("runs.3.metrics", "abc"), "runs[3].metrics must be an object"),
    "curves is a string": (_set("runs.3.curves", "x"), "runs[3].curves must be an object"),
    "invocations is a string": (_set("invocations", "x"), "invocations must be a list"),
    "data is a number": (_set("data", 5), "data must be an object"),
    "budget is a number": (_set("budget", 5), "budget must be an object"),
    "environment is a number": (_set("environment", 5), "environment must be an object"),
    "no runs": (_set("runs", []), "has no runs"),
    "unknown objective": (_set("runs.1.objective", "bogus"), "runs[1].objective \"bogus\" is not one of mlm, clm"),
    "objective is a number": (_set("runs.1.objective", 5), "runs[1].objective 5 is not one of"),
    "attention is a number": (_set("runs.2.attention", 5), "runs[2].attention must be a mechanism name"),
    "attention is empty": (_set("runs.2.attention", ""), "runs[2].attention must be a mechanism name"),
    "seed is a string": (_set("runs.0.seed", "42"), "runs[0].seed must be an integer or null"),
    "fold is a string": (_set("runs.0.fold", "0"), "runs[0].fold must be an integer >= 0 or null"),
    "run listed twice": (_repeat_run(), "repeats the run_id 'standard_mlm_run0' of runs[0]"),
    "run repeated under another id": (
        _repeat_run("standard_mlm_run9"), "repeats the objective mlm, attention standard, fold null, seed 42"
    ),
    "schema_version 99": (_set("schema_version", 99), "schema_version 99 is not one this version reads (1)"),
    "schema_version a string": (_set("schema_version", "x"), "schema_version \"x\" is not one this version reads"),
}


@pytest.mark.parametrize("case", list(BAD_RAW_RESULTS))
def test_analyze_refuses_malformed_raw_results_in_one_line_before_writing_anything(capsys, trained, case):
    """Valid JSON of the wrong shape used to end in a traceback, a half-written report, or a report of
    nonsense (no runs, an unknown objective, a run counted twice); now one line, exit 2, nothing written."""
    import json

    raw_path, _ = trained
    raw = json.loads(raw_path.read_text())
    run_ids = [run["run_id"] for run in raw["runs"]]
    raw["invocations"] = [{"command": raw["command"], "started": None, "runs_added": run_ids}]
    change, message = BAD_RAW_RESULTS[case]
    change(raw)
    raw_path.write_text(json.dumps(raw))
    before = sorted(raw_path.parent.iterdir())
    out_dir = raw_path.parent / "reanalysis"
    code, out, err = run_cli(capsys, "analyze", str(raw_path), "--output-dir", str(out_dir), "--quiet")
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: raw results: ") and message in lines[0], err
    assert sorted(raw_path.parent.iterdir()) == before and not out_dir.exists()  # not even the analysis log


def test_analyze_still_reads_hand_assembled_and_older_raw_results(capsys, trained):
    """No schema_version, invocations, environment, data or budget; runs without a phase, hashes, fold or
    seed (unpaired, so seedless runs are not repeats): what the project read before it checked the shape."""
    import json

    raw_path, _ = trained
    raw = json.loads(raw_path.read_text())
    for key in ("schema_version", "environment", "data", "budget", "probe_tasks"):
        raw.pop(key)
    for run in raw["runs"]:
        for key in ("fold", "seed", "run_index"):
            run.pop(key)
    raw_path.write_text(json.dumps(raw))
    code, out, err = run_cli(capsys, "analyze", str(raw_path), "--metric", "val_loss", "--quiet")
    assert code == 0, err
    assert "Runs: 6 completed, 0 not completed" in out
    assert (raw_path.parent / "synthetic_reanalysis_report.md").is_file()


@pytest.mark.parametrize("module", ["mlmclm", "mlmclm.cli"])
def test_python_dash_m_runs_the_cli_instead_of_exiting_silently(module):
    """``python -m mlmclm.cli`` used to import the module and exit 0 having done nothing."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", module, "train", "--num-runs", "0"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: num_runs must be > 0, got 0"


@pytest.mark.parametrize("command", ["analyze", "validate", "bench", "export"])
def test_help_of_commands_other_than_train_does_not_import_torch(command):
    """Only train's help lists the registries (which import torch): the other commands answer at once."""
    code = (
        "import sys\nfrom mlmclm.cli import main\n"
        f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"
    assert "usage: mlmclm " + command in result.stdout


def _files_under(path: Path) -> set[Path]:
    return set(path.rglob("*"))


@pytest.mark.parametrize("below", [False, True], ids=["the-file", "below-the-file"])
@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["train", "--quick-test", "--dry-run", "--no-probes", "--output-dir"], "--output-dir"),
        (["analyze", "RAW", "--output-dir"], "--output-dir"),
        (["setup-tokenizer", "--data", "CORPUS", "--output"], "--output"),
        (["export", "RUN", "--hf"], "--hf"),
        (["validate", "--only", "aa", "--output-dir"], "--output-dir"),
    ],
    ids=["train", "analyze", "setup-tokenizer", "export", "validate"],
)
def test_an_output_directory_that_is_a_file_is_one_line_before_any_work(
    capsys, tmp_path, no_data_work, trained, tiny_corpus, argv, flag, below
):
    """It used to be a NotADirectoryError or FileExistsError traceback, after the work for analyze."""
    taken = tmp_path / "taken"
    taken.write_text("a file, not a directory\n")
    out = taken / "sub" if below else taken
    raw_path, _ = trained
    fill = {"RAW": str(raw_path), "CORPUS": tiny_corpus, "RUN": str(tmp_path / "run")}
    before = _files_under(tmp_path)
    code, _, err = run_cli(capsys, *[fill.get(arg, arg) for arg in argv], str(out))
    assert code == 2
    reason = f"cannot be created: {taken} is a file" if below else "is a file"
    _assert_one_line(err, f"error: {flag} {out} {reason}, not a directory")
    assert _files_under(tmp_path) == before  # nothing written anywhere
