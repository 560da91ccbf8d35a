"""``mlmclm bench``: the quick run's JSON holds both implementations for both objectives, bad flags are one line."""

from __future__ import annotations

import json
import os

import pytest
import torch

from mlmclm.cli import main
from mlmclm.model.attention import ATTENTION_MECHANISMS


def test_quick_bench_json_has_both_implementations_for_both_objectives(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0  # what CI runs
    data = json.loads(out.read_text())
    impl = [r for r in data["records"] if r["scenario"] == "impl"]
    pairs = {(r["impl"], r["objective"]) for r in impl}
    assert pairs == {("mlmclm", "mlm"), ("transformers", "mlm"), ("mlmclm", "clm"), ("transformers", "clm")}
    attention = {(r["objective"], r["attention"]) for r in data["records"] if r["scenario"] == "attention"}
    names = [*ATTENTION_MECHANISMS.names(), "stickbreaking[blocked]"]  # CPU, T = 32: auto is the reference
    assert attention == {(o, name) for o in ("mlm", "clm") for name in names}
    for record in data["records"]:
        assert record["tokens_per_s"] > 0
        ms = record["ms_per_step"]
        assert ms["min"] <= ms["median"] <= ms["max"]
        assert record["shape"]["seq"] * record["shape"]["batch"] / (ms["median"] / 1e3) == pytest.approx(
            record["tokens_per_s"]
        )
        assert record["device"].startswith("cpu") and record["precision"] == "fp32"
        assert 0 < record["mfu"] < 1
    strategies = {r["strategy"] for r in data["pipeline"] if r["stage"] == "batches"}
    assert {"mlm dynamic", "mlm span", "clm standard", "clm packed", "mlm dynamic, packed"} <= strategies
    per_batch = {r["strategy"]: r["tokens_per_s"] / r["batches_per_s"] for r in data["pipeline"]
                 if r["stage"] == "batches"}
    assert per_batch["mlm dynamic, packed"] > per_batch["mlm dynamic"]  # packed rows hold more real tokens
    assert "| mlmclm | mlm | standard |" in capsys.readouterr().out


def exit_code(argv: list[str]) -> int:
    """The command's exit status, whether argparse exits or the handler returns it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "flags",
    [["--preset", "huge"], ["--threads", "0"], ["--scenarios", "speed"], ["--precision", "fp16"],
     ["--steps", "-1"], ["--device", "tpu"]],
)
def test_bad_bench_flags_are_one_error_line_and_exit_2(flags, capsys):
    assert exit_code(["bench", "--quick", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_absent_cuda_is_one_error_line(capsys):
    assert exit_code(["bench", "--quick", "--device", "cuda"]) == 2
    assert capsys.readouterr().err.startswith("error: --device cuda was requested")


def test_sweep_holds_tokens_per_step_and_covers_each_length(tmp_path):
    out = tmp_path / "sweep.json"
    argv = ["bench", "--quick", "--scenarios", "sweep", "--seq-lengths", "16", "64", "--objectives", "clm",
            "--steps", "1", "--repeats", "1", "--json", str(out)]
    assert main(argv) == 0
    records = json.loads(out.read_text())["records"]
    by_seq = {r["shape"]["seq"]: r["shape"]["batch"] for r in records if r["note"].startswith("seq")}
    assert by_seq == {16: 8, 64: 2}  # QUICK's 4 x 32 = 128 tokens per step at every length
    assert {r["note"] for r in records} >= {"quick (64x2)", "mini (128x4)"}  # --quick's sizes


def test_contention_times_both_thread_counts_alone_and_beside_a_job(tmp_path):
    out = tmp_path / "threads.json"
    argv = ["bench", "--quick", "--scenarios", "contention", "--threads", "1", "--steps", "1", "--repeats", "2",
            "--json", str(out)]
    assert main(argv) == 0
    notes = {r["note"] for r in json.loads(out.read_text())["records"]}
    cores = os.cpu_count()
    expected = {f"1 thread {where}" for where in ("alone", "beside a CPU job")}
    if cores > 1:
        expected |= {f"{cores} threads {where}" for where in ("alone", "beside a CPU job")}
    assert notes == expected


def test_contention_mfu_is_against_the_peak_of_each_rows_thread_count(tmp_path, monkeypatch):
    """A row timed on n threads is measured against n threads' matmul peak, not the process's --threads peak."""
    import mlmclm.bench.run as bench_run

    monkeypatch.setattr(bench_run, "measured_cpu_peak_flops", lambda dtype=None: 1e9 * torch.get_num_threads())
    out = tmp_path / "threads.json"
    argv = ["bench", "--quick", "--scenarios", "contention", "--threads", "1", "--steps", "1", "--repeats", "2",
            "--json", str(out)]
    assert main(argv) == 0
    data = json.loads(out.read_text())
    for record in data["records"]:
        threads = record["threads"]
        seconds = record["ms_per_step"]["median"] / 1e3
        assert record["mfu"] == pytest.approx(record["flops_per_step"] / seconds / (1e9 * threads))
        assert data["environment"]["peak_flops_by_threads"][str(threads)] == 1e9 * threads


@pytest.fixture
def no_timing(monkeypatch):
    """Fail the test if the benchmark starts: every flag check comes before the first timed step."""
    import mlmclm.bench.run as bench_run

    def forbidden(options, device):
        raise AssertionError("run_bench was called before the error")

    monkeypatch.setattr(bench_run, "run_bench", forbidden)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--seq-lengths", "128"], "--seq-lengths 128 has no effect because the scenarios are impl, attention, "
                                   "pipeline: only the sweep scenario uses it"),
        (["--scenarios", "impl", "--attention", "rope"], "--attention rope has no effect because the scenarios are "
                                                         "impl: only the attention scenario uses it"),
        (["--scenarios", "pipeline", "contention", "--objectives", "mlm"], "--objectives mlm has no effect"),
        (["--steps", "99999999999999999999"], "--steps must be at most 10000"),
        (["--repeats", "100000"], "--repeats must be at most 10000"),
        (["--threads", "1000000"], "--threads 1000000 is more than the "),  # torch segfaulted at this count
    ],
)
def test_a_flag_without_effect_or_an_endless_count_fails_before_timing(flags, message, capsys, no_timing):
    """These used to be ignored (exit 0) or to time until killed."""
    assert exit_code(["bench", "--quick", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("where", ["directory", "below-a-file"])
def test_a_json_path_that_cannot_be_written_fails_before_timing(where, tmp_path, capsys, no_timing):
    """An existing directory was an IsADirectoryError traceback once the whole benchmark had run."""
    taken = tmp_path / "taken"
    if where == "directory":
        taken.mkdir()
        path, message = taken, f"error: --json {taken} is a directory, not a file"
    else:
        taken.write_text("a file\n")
        path = taken / "bench.json"
        message = f"error: --json {path} cannot be created: {taken} is a file, not a directory"
    assert exit_code(["bench", "--quick", "--scenarios", "impl", "--json", str(path)]) == 2
    assert capsys.readouterr().err.strip() == message


def test_flags_for_a_chosen_scenario_are_accepted(monkeypatch, capsys):
    import mlmclm.bench.run as bench_run

    seen = []
    monkeypatch.setattr(bench_run, "run_bench", lambda options, device: seen.append(options))
    argv = ["bench", "--quick", "--sweep", "--seq-lengths", "16", "--scenarios", "attention", "--attention", "rope"]
    assert exit_code(argv) == 0
    assert seen[0].scenarios == ("attention", "sweep") and seen[0].sweep_seq_lengths == (16,)
