"""Command line: argument parsing and sub-commands only; the science lives in the packages it calls.

``mlmclm train`` (also ``python train.py``), ``mlmclm analyze``, ``mlmclm setup-tokenizer`` (also
``python setup_tokenizer.py``), ``mlmclm export``, ``mlmclm validate`` (docs/validation.md) and ``mlmclm bench``
(docs/performance.md). A bad input ends with one ``error:`` line on stderr and exit code 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlmclm.atomic import check_output_location
from mlmclm.errors import UserError
from mlmclm.objectives import OBJECTIVES
from mlmclm.train.threads import check_threads

log = logging.getLogger("mlmclm")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line (and exit code 2) instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", help="DEBUG logs and full tracebacks")
    parser.add_argument("--quiet", action="store_true", help="only warnings, errors and the final summary")


def _registered(key: str) -> str:
    """The registered choices for a config key, e.g. ``"standard | rope | ..."``: help derived, not copied."""
    from mlmclm.components import REGISTRIES

    return " | ".join(REGISTRIES[key].names())


def _train_parser(parser: argparse.ArgumentParser) -> None:
    from mlmclm.config import CORRECTIONS, TEST_CHOICES

    add = parser.add_argument
    add("--config", metavar="YAML", help="experiment config file (e.g. configs/default.yaml)")
    add("--quick-test", action="store_true", help="tiny model, small data slice, few steps (configs/quick_test.yaml)")
    add("--dry-run", action="store_true", help="validate everything and print the plan, without training")
    add("--objectives", nargs="+", metavar="OBJ", help=f"{', '.join(OBJECTIVES)}, or both (= mlm clm)")
    add("--attention", nargs="+", metavar="NAME",
        help=f"attention / position mechanisms to compare: {_registered('attention')}")
    add("--num-runs", type=int, metavar="N", help="runs (seeds) per condition (default 3)")
    add("--seeds", type=int, nargs="+", metavar="SEED", help="explicit seeds; they set the number of runs")
    add("--cross-validation", action="store_true", default=None, help="k-fold cross-validation")
    add("--folds", type=int, metavar="K", help="folds for cross-validation (default 3)")
    add("--significance-level", type=float, metavar="ALPHA", help="alpha for the tests (default 0.05)")
    add("--confidence-level", type=float, metavar="LEVEL", help="for confidence intervals (default 0.95)")
    add("--correction", metavar="METHOD", help=f"multiple-comparison correction: {' | '.join(CORRECTIONS)}")
    add("--test", metavar="TEST", help=f"{' | '.join(TEST_CHOICES)} (aso: also Almost Stochastic Order per comparison)")
    add("--epochs", type=int, metavar="N")
    add("--max-steps", type=int, metavar="N", help="optimizer steps per run (overrides --epochs)")
    add("--hybrid-clm-fraction", type=float, metavar="F",
        help="clm_mlm: share of the steps in the CLM phase before MLM (default 0.5)")
    add("--mntp-causal-fraction", type=float, metavar="F",
        help="mntp: share of causal micro-batches, the rest masked (default 0.0625 = GPT-BERT's 1:15)")
    add("--batch-size", type=int, metavar="N")
    add("--learning-rate", type=float, metavar="LR")
    add("--lr-sweep", type=float, nargs="+", metavar="LR",
        help="peak rates to sweep; each condition picks its best on validation (training.lr_sweep)")
    add("--data", metavar="PATH", help="corpus: .txt/.jsonl/.json/.csv/.parquet (.gz), a directory, or hf:NAME")
    add("--document-separator", metavar="SEP",
        help=".txt corpora: line (default), blank_line, or the text of separator lines, e.g. %%")
    add("--tokenizer", metavar="PATH", help="tokenizer.json, a transformers tokenizer directory, or hf:NAME")
    add("--mlm-strategy", metavar="NAME", help=_registered("data.mlm_strategy"))
    add("--clm-strategy", metavar="NAME", help=_registered("data.clm_strategy"))
    add("--max-seq-length", type=int, metavar="N")
    add("--gradient-checkpointing", action="store_true", default=None, help="recompute activations per block")
    add("--mixed-precision", action="store_true", default=None, help="bf16 autocast (fp16 + scaler on old GPUs)")
    add("--compile", action="store_true", default=None,
        help="torch.compile the training loss (compile; off by default: slower on CPU, see docs/performance.md)")
    add("--device", choices=["auto", "cpu", "cuda", "mps"], help="default auto: cuda, then mps, then cpu")
    add("--output-dir", metavar="DIR", help="where results go (default outputs)")
    add("--experiment-name", metavar="NAME", help="prefix of the output files (a plain file name)")
    add("--workers", type=int, metavar="N", help="runs executed at the same time (separate processes)")
    add("--threads", type=int, metavar="N",
        help="torch CPU threads per run (training.threads; default: 1 for small models, else cores / workers)")
    add("--executor", choices=["local", "ray"], help="local processes (default) or a Ray cluster")
    add("--ray-address", metavar="ADDRESS", help="existing Ray cluster to join (ray.address; default RAY_ADDRESS)")
    add("--max-retries", type=int, metavar="N",
        help="Ray: resubmit a run whose worker or node died up to N times (ray.max_retries, default 1)")
    add("--probe-data", action="append", metavar="FILE.jsonl", help="extra labelled probe task (repeatable)")
    add("--probe-mode", choices=["linear", "finetune"], help="frozen linear probes (default) or light fine-tuning")
    add("--probe-tasks", nargs="+", metavar="TASK", help=f"built-in probe tasks to run: {_registered('probes.tasks')}")
    add("--no-probes", action="store_true", help="skip the downstream probe tasks")
    add("--probe-every", type=int, metavar="N", help="also probe every N optimizer steps: probe curves")
    add("--length-multipliers", type=int, nargs="+", metavar="K",
        help="also evaluate each run at K x max_seq_length (length generalisation), e.g. 1 2 4")
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=None,
                        help="skip finished runs and continue (default)")
    resume.add_argument("--overwrite", dest="resume", action="store_false", help="discard previous results")
    _add_common(parser)


# CLI flag -> dotted config key. One table, so precedence and documentation stay in one place.
_FLAG_TO_KEY = {
    "objectives": "objectives",
    "attention": "attention",
    "num_runs": "num_runs",
    "seeds": "seeds",
    "cross_validation": "cross_validation",
    "folds": "folds",
    "significance_level": "statistics.significance_level",
    "confidence_level": "statistics.confidence_level",
    "correction": "statistics.correction",
    "test": "statistics.test",
    "epochs": "training.epochs",
    "max_steps": "training.max_steps",
    "hybrid_clm_fraction": "training.hybrid_clm_fraction",
    "mntp_causal_fraction": "training.mntp_causal_fraction",
    "batch_size": "training.batch_size",
    "learning_rate": "training.learning_rate",
    "lr_sweep": "training.lr_sweep",
    "data": "data.path",
    "document_separator": "data.document_separator",
    "tokenizer": "data.tokenizer",
    "mlm_strategy": "data.mlm_strategy",
    "clm_strategy": "data.clm_strategy",
    "max_seq_length": "data.max_seq_length",
    "gradient_checkpointing": "gradient_checkpointing",
    "mixed_precision": "mixed_precision",
    "compile": "compile",
    "device": "device",
    "output_dir": "output_dir",
    "experiment_name": "experiment_name",
    "workers": "workers",
    "threads": "training.threads",
    "executor": "executor",
    "ray_address": "ray.address",
    "max_retries": "ray.max_retries",
    "probe_data": "probes.data_files",
    "probe_mode": "probes.mode",
    "probe_tasks": "probes.tasks",
    "probe_every": "probes.eval_every",
    "length_multipliers": "evaluation.length_multipliers",
    "resume": "resume",
}


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags the user actually gave, as a nested dict for the highest-precedence config layer."""
    overrides: dict[str, Any] = {}
    for flag, key in _FLAG_TO_KEY.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        if flag == "objectives":
            value = ["mlm", "clm"] if value == ["both"] else value
        node = overrides
        *parents, leaf = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    if getattr(args, "no_probes", False):
        overrides.setdefault("probes", {})["enabled"] = False
    return overrides


def _resolve(args: argparse.Namespace):
    from mlmclm.components import resolve_config

    return resolve_config(args.config, args.quick_test, cli_overrides(args), overrides_are_flags=True)


def _check_device(name: str) -> None:
    """An absent --device is an error before any corpus or tokenizer work, not after it."""
    from mlmclm.train.device import resolve_device

    resolve_device(name)


def cmd_train(args: argparse.Namespace, command: str) -> int:
    from mlmclm.config import dump_yaml
    from mlmclm.grid.plan import plan_runs

    config = _resolve(args)
    _check_device(config.device)
    if config.executor == "local":  # a Ray cluster's nodes may have more cores than this one
        check_threads(config.training.threads, "--threads" if args.threads else "training.threads")
    check_output_location(config.output_dir, "--output-dir" if args.output_dir else "output_dir")
    rank = _join_data_parallel_job(config)
    from mlmclm.train import distributed

    if args.dry_run:
        status = _dry_run(config) if rank == 0 else 0
        distributed.barrier()  # as below: the ranks leave together
        return status
    from mlmclm.grid.lock import experiment_lock, removed_if_refused
    from mlmclm.grid.results import load_raw_results
    from mlmclm.grid.runner import run_grid

    sweep = len(config.training.lr_sweep) * len(config.objectives) * len(config.attention)
    log.info(
        "experiment %s: %d runs%s -> %s", config.experiment_name, len(plan_runs(config)),
        f" after {sweep} learning-rate sweep runs" if sweep else "", config.output_dir,
    )
    log.debug("resolved config:\n%s", dump_yaml(config))
    if rank > 0:  # rank 0 alone holds the lock, analyses, reports and prints
        run_grid(config, command, quiet=True)
        distributed.barrier()  # leave with rank 0: a rank tearing down gloo while its peer works can abort
        return 0
    output_dir = Path(config.output_dir)
    with removed_if_refused(output_dir), experiment_lock(output_dir, config.experiment_name, command):
        raw_path = run_grid(config, command, quiet=args.quiet)
        status = _analyze_and_print(load_raw_results(raw_path), raw_path, config.statistics, output_dir)
    distributed.barrier()
    return status


def _join_data_parallel_job(config) -> int:
    """Under torchrun (``WORLD_SIZE`` > 1) join the process group and return this rank; else 0.

    Data parallelism splits each run over the ranks, so runs execute one at a time in this process.
    """
    from mlmclm.errors import ConfigError
    from mlmclm.train import distributed
    from mlmclm.train.device import resolve_device

    context = distributed.init_from_environment(resolve_device(config.device).type)
    if context.enabled and (config.executor != "local" or config.workers != 1):
        raise ConfigError(
            f"under torchrun ({context.world_size} processes) each run is data-parallel: use --executor local "
            f"and --workers 1 (got executor {config.executor!r}, workers {config.workers})"
        )
    if context.rank > 0:
        logging.getLogger("mlmclm").setLevel(logging.WARNING)
    return context.rank


def _dry_run(config) -> int:
    from mlmclm.config import dump_yaml
    from mlmclm.data import prepare_data
    from mlmclm.grid.plan import plan_runs
    from mlmclm.grid.worker import build_probe_tasks
    from mlmclm.train.budget import compute_budget

    data = prepare_data(config)  # reads the corpus and obtains the tokenizer (both cached)
    manifest = data.manifest
    budget = compute_budget(config, data)
    probe_tasks = build_probe_tasks(config, data)  # builds the held-out tasks and reads --probe-data files
    runs = plan_runs(config)
    print("# Resolved configuration")
    print(dump_yaml(config).rstrip())
    print("\n# Data")
    print(f"corpus: {manifest['corpus_name']} (sha256 {manifest['corpus_sha256'][:12]})")
    print(f"documents: {manifest['documents']}")
    print(f"split sizes: {manifest['split_sizes']}; tokens: {manifest['token_counts']}")
    print(f"tokenizer: {manifest['tokenizer_path']} (sha256 {manifest['tokenizer_sha256'][:12]})")
    for k, sha in enumerate(manifest.get("fold_tokenizer_sha256", [])):  # one per fold, on its training part
        print(f"fold {k} tokenizer: sha256 {sha[:12]}")
    for note in manifest.get("notes", []):
        print(f"note: {note}")
    print("\n# Budget (every run)")
    print(_describe_budget(budget, config.training.max_steps is not None))
    print("\n# Probe tasks" + ("" if probe_tasks else ": none (--no-probes)"))
    for task in probe_tasks:
        print(f"{task.name}: {len(task.train)} train / {len(task.test)} test examples, {len(task.label_names)} labels")
    _print_sweep_plan(config)
    print("\n# Experiment plan")
    for spec in runs:
        print(spec.describe())
    print(f"Planned experiments: {len(runs)}")
    return 0


def _describe_budget(budget, from_max_steps: bool) -> str:
    """The step budget, the epochs it amounts to, and which setting decided it."""
    source = "training.max_steps" if from_max_steps else "training.epochs"
    if budget.packing:
        of = (f"{budget.train_sequences} training sequences packed into {budget.train_rows} rows at "
              f"{budget.sequences_per_step} rows per step")
    else:
        of = f"{budget.train_sequences} training sequences at {budget.sequences_per_step} sequences per step"
    return (
        f"{budget.optimizer_steps} optimizer steps per run (set by {source}) = {budget.epochs:.2f} epochs of "
        f"{of} ({budget.steps_per_epoch} steps per epoch)"
    )


def _print_sweep_plan(config) -> None:
    from mlmclm.grid.plan import plan_sweep_runs

    sweep = plan_sweep_runs(config)
    if not sweep:
        return
    print("\n# Learning-rate sweep (each condition's final runs use its rate with the lowest val_loss)")
    for spec in sweep:
        print(spec.describe())
    print(f"Sweep runs: {len(sweep)} (seed {config.training.lr_sweep_seed}, not a final seed)")


def _analyze_and_print(
    raw: dict, raw_path: Path, stats_cfg, output_dir: Path, metrics=None, file_prefix=None, analyze_command=None
) -> int:
    """Write the statistics, report and plots of ``raw`` and list the files (shared by train and analyze)."""
    from mlmclm.report import write_analysis
    from mlmclm.report.write import analysis_log_path

    written = write_analysis(
        raw, stats_cfg, output_dir, raw["experiment_name"], metrics=metrics, file_prefix=file_prefix,
        analyze_command=analyze_command, log_path=analysis_log_path(raw_path, raw["experiment_name"]),
    )
    runs = raw["runs"]
    done = sum(run.get("status") == "completed" for run in runs)
    print(f"Runs: {done} completed, {len(runs) - done} not completed (see the report)")
    print(f"Raw results: {raw_path}")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0


def cmd_analyze(args: argparse.Namespace, command: str) -> int:
    from mlmclm.config import StatisticsConfig, from_dict, validate_statistics
    from mlmclm.grid.results import load_raw_results, validate_raw_results

    if args.output_dir:
        check_output_location(args.output_dir, "--output-dir")
    raw = load_raw_results(args.raw_results)
    validate_raw_results(raw, args.raw_results)  # before anything is written
    stored = (raw.get("config") or {}).get("statistics") or {}
    overrides = {
        key: value
        for key, value in (
            ("significance_level", args.significance_level),
            ("confidence_level", args.confidence_level),
            ("correction", args.correction),
            ("test", args.test),
        )
        if value is not None
    }
    stats_cfg = from_dict(StatisticsConfig, {**stored, **overrides}, "statistics.")
    validate_statistics(stats_cfg)
    output_dir = Path(args.output_dir) if args.output_dir else Path(args.raw_results).resolve().parent
    prefix = _reanalysis_prefix(args.name, raw["experiment_name"])
    if (output_dir / f"{prefix}_report.md").exists():
        print(f"note: replacing the previous {prefix}_* files in {output_dir} (choose another --name to keep them)")
    return _analyze_and_print(
        raw, Path(args.raw_results), stats_cfg, output_dir, metrics=args.metric, file_prefix=prefix,
        analyze_command=command,
    )


def _reanalysis_prefix(name: str | None, experiment_name: str) -> str:
    """File prefix of an ``analyze`` run: never the experiment's own, so the training report is kept."""
    from mlmclm.config import is_plain_name

    prefix = f"{experiment_name}_reanalysis" if name is None else name  # "" is a mistake, not the default
    if not is_plain_name(prefix):
        raise UserError(f"--name {prefix!r} must be a plain file name (letters, digits, '.', '_', '-')")
    if prefix == experiment_name:
        raise UserError(
            f"--name {prefix!r} is the experiment's own prefix and would overwrite the training report; "
            "choose another name"
        )
    return prefix


def cmd_setup_tokenizer(args: argparse.Namespace, command: str) -> int:
    from mlmclm.components import resolve_config
    from mlmclm.data import setup_tokenizer

    if args.output:
        check_output_location(args.output, "--output")
    overrides: dict[str, Any] = {"data": {}}
    if args.data is not None:
        overrides["data"]["path"] = args.data
    if args.vocab_size is not None:
        overrides["data"]["vocab_size"] = args.vocab_size
    config = resolve_config(args.config, False, overrides)
    path = setup_tokenizer(config, Path(args.output) if args.output else None)
    print(f"Tokenizer: {path}")
    return 0


def cmd_export(args: argparse.Namespace, command: str) -> int:
    from mlmclm.model.export import export_huggingface

    check_output_location(args.hf, "--hf")
    out = export_huggingface(Path(args.run_dir), Path(args.hf))
    print(f"Exported a transformers BertForMaskedLM to {out}")
    return 0


def cmd_validate(args: argparse.Namespace, command: str) -> int:
    """Known-answer checks through the ordinary grid and analysis; exit 1 when a check fails."""
    from mlmclm.environment import collect_environment
    from mlmclm.train.device import describe_device, resolve_device
    from mlmclm.validate.report import write_validation
    from mlmclm.validate.runner import (
        check_devices,
        estimate_seconds,
        run_validation,
        select_checks,
        select_preset,
    )

    preset, checks = select_preset(args.preset), select_checks(args.only)
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be at least 1 (got {args.workers})")
    output_dir = check_output_location(args.output_dir, "--output-dir")
    check_devices(checks, preset, output_dir)
    estimate = estimate_seconds(checks, preset, output_dir, args.workers or 1)
    print(f"validate --preset {preset.name}: {', '.join(check.NAME for check in checks)}; planned about "
          f"{estimate / 60:.0f} min for the runs not yet finished (estimate, from the preset's seconds per run)")
    results = run_validation(preset, checks, output_dir, command, workers=args.workers or 1)
    environment = collect_environment(describe_device(resolve_device("auto")))
    written = write_validation(results, preset, output_dir, command, environment)
    passed = sum(result.passed for result in results)
    print(f"Validation: {passed}/{len(results)} checks passed")
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0 if passed == len(results) else 1


def _bench_parser(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--preset", choices=["tiny", "small", "bert-base"], default="tiny",
        help="shapes: tiny = 256x4, seq 128 (the CPU target); bert-base = 768x12, seq 512 (the GPU target)")
    add("--quick", action="store_true", help="tiny shapes and few steps: every path in seconds (CI)")
    add("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"], help="default cpu")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="autocast dtype (default fp32)")
    precision.add_argument("--bf16", action="store_const", const="bf16", dest="precision", help="= --precision bf16")
    add("--threads", type=int, metavar="N", help="torch intra-op threads (default: torch's)")
    add("--compile", action="store_true", help="torch.compile every contender's loss")
    add("--scenarios", nargs="+", metavar="NAME", help="impl attention pipeline sweep contention "
        "(default: impl attention pipeline)")
    add("--sweep", action="store_true", help="also sweep sequence length (128-2048) and model size")
    add("--seq-lengths", type=int, nargs="+", metavar="T", help="the sweep's sequence lengths")
    add("--contention", action="store_true", help="also time threads alone and beside a competing CPU job")
    add("--objectives", nargs="+", choices=["mlm", "clm"], help="default both")
    add("--attention", nargs="+", metavar="NAME", help="mechanisms of the attention scenario (default: all)")
    add("--steps", type=int, metavar="N", help="timed steps per repeat (default 10; --quick 2)")
    add("--warmup", type=int, metavar="N", help="warm-up steps (default 3)")
    add("--repeats", type=int, metavar="N", help="interleaved repeats (default 5)")
    add("--json", metavar="PATH", help="also write the records as JSON")
    _add_common(parser)


# Bench flags only some scenarios read (flag -> those scenarios): given without any of them, a flag would be
# silently ignored, so it is refused, as train refuses a flag without effect.
_BENCH_SCENARIO_FLAGS = {
    "seq_lengths": ("sweep",),
    "attention": ("attention",),
    "objectives": ("impl", "attention", "sweep"),
}
# Steps, warm-up steps and repeats beyond this are a typo, not a benchmark (the defaults are 10, 3 and 5).
_BENCH_MAX_COUNT = 10_000


def _check_bench_flags_apply(args: argparse.Namespace, scenarios: list[str]) -> None:
    for flag, readers in _BENCH_SCENARIO_FLAGS.items():
        value = getattr(args, flag)
        if value is None or set(readers) & set(scenarios):
            continue
        option = "--" + flag.replace("_", "-")
        which = f"the {readers[0]} scenario uses" if len(readers) == 1 else f"the {', '.join(readers)} scenarios use"
        raise UserError(
            f"{option} {' '.join(map(str, value))} has no effect because the scenarios are {', '.join(scenarios)}: "
            f"only {which} it (add {' or '.join(readers)} to --scenarios)"
        )


def cmd_bench(args: argparse.Namespace, command: str) -> int:
    from mlmclm.bench.run import DEFAULT_SCENARIOS, SCENARIOS, SWEEP_SEQ_LENGTHS, BenchOptions, run_bench
    from mlmclm.train.device import resolve_device

    scenarios = list(args.scenarios or DEFAULT_SCENARIOS)
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        raise UserError(f"unknown --scenarios {', '.join(unknown)} (valid: {', '.join(SCENARIOS)})")
    scenarios += ["sweep"] * args.sweep + ["contention"] * args.contention
    for flag in ("threads", "steps", "warmup", "repeats"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag} must be a positive integer (got {value})")
        if value is not None and flag != "threads" and value > _BENCH_MAX_COUNT:
            raise UserError(f"--{flag} must be at most {_BENCH_MAX_COUNT} (got {value})")
    check_threads(args.threads, "--threads")
    _check_bench_flags_apply(args, scenarios)
    if args.json:
        check_output_location(args.json, "--json", is_file=True)
    if args.seq_lengths and min(args.seq_lengths) < 2:
        raise UserError("--seq-lengths must be at least 2")
    if args.attention:
        from mlmclm.model.attention import ATTENTION_MECHANISMS

        for name in args.attention:
            ATTENTION_MECHANISMS.get(name)  # an unknown name is a one-line error listing the valid ones
    device = resolve_device(args.device)
    if args.precision == "fp16" and device.type == "cpu":
        raise UserError("--precision fp16 is for GPUs; on CPU use bf16 or fp32")
    options = BenchOptions(
        preset=args.preset, quick=args.quick, device=args.device, precision=args.precision or "fp32",
        threads=args.threads, compile=args.compile, scenarios=tuple(scenarios),
        objectives=tuple(args.objectives or ("mlm", "clm")), steps=args.steps, warmup=args.warmup,
        repeats=args.repeats, json_path=Path(args.json) if args.json else None,
        sweep_seq_lengths=tuple(args.seq_lengths or SWEEP_SEQ_LENGTHS), attention=tuple(args.attention or ()),
    )
    run_bench(options, device)
    return 0


def build_parser(prog: str = "mlmclm", command: str | None = "train") -> argparse.ArgumentParser:
    """Every subcommand; ``train``'s options only when ``command`` is ``train``: their help lists the
    registered mechanisms and strategies, which imports torch, and ``mlmclm analyze --help`` should not wait
    for that (main passes the command it is about to run)."""
    from mlmclm.config import CORRECTIONS, TEST_CHOICES

    parser = OneLineParser(prog=prog, description="Masked vs causal language modelling, compared properly.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = sub.add_parser("train", help="train the experiment grid, then analyse it")
    if command == "train":
        _train_parser(train)
    train.set_defaults(handler=cmd_train)

    analyze = sub.add_parser("analyze", help="recompute statistics, report and plots from a raw-results file")
    analyze.add_argument("raw_results", metavar="RAW_RESULTS.json")
    analyze.add_argument("--output-dir", metavar="DIR", help="default: the raw-results file's directory")
    analyze.add_argument("--significance-level", type=float, metavar="ALPHA")
    analyze.add_argument("--confidence-level", type=float, metavar="LEVEL")
    analyze.add_argument("--correction", metavar="METHOD", help=" | ".join(CORRECTIONS))
    analyze.add_argument("--test", metavar="TEST", help=f"{' | '.join(TEST_CHOICES)} (aso: Almost Stochastic Order)")
    analyze.add_argument("--metric", action="append", metavar="NAME",
                         help="metric(s) to analyse (repeatable; default: the configured primary + secondary)")
    analyze.add_argument("--name", metavar="PREFIX",
                         help="file prefix of the outputs (default <exp>_reanalysis; the training report is kept)")
    _add_common(analyze)
    analyze.set_defaults(handler=cmd_analyze)

    tok = sub.add_parser("setup-tokenizer", help="train the WordPiece tokenizer offline on the training split")
    tok.add_argument("--config", metavar="YAML")
    tok.add_argument("--data", metavar="PATH", help="corpus (default: the embedded standard-library docs)")
    tok.add_argument("--vocab-size", type=int, metavar="N")
    tok.add_argument("--output", metavar="DIR", help="directory for tokenizer.json (default: the cache)")
    _add_common(tok)
    tok.set_defaults(handler=cmd_setup_tokenizer)

    export = sub.add_parser("export", help="export a trained run to the Hugging Face transformers format")
    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--hf", required=True, metavar="OUT_DIR", help="output transformers directory")
    _add_common(export)
    export.set_defaults(handler=cmd_export)

    validate = sub.add_parser("validate", help="known-answer checks of the whole pipeline (docs/validation.md)")
    validate.add_argument("--preset", default="cpu", metavar="NAME", help="cpu (default) | gpu")
    validate.add_argument("--only", action="append", metavar="CHECK",
                          help="run only this check (repeatable): aa | planted | nope_structure | probe_validity")
    validate.add_argument("--output-dir", default="validation_outputs", metavar="DIR",
                          help="grids, validation_report.md and validation.json (a rerun resumes here)")
    validate.add_argument("--workers", type=int, metavar="N", help="runs trained at the same time (default 1)")
    _add_common(validate)
    validate.set_defaults(handler=cmd_validate)
    bench = sub.add_parser("bench", help="training-step throughput against transformers, per mechanism, pipeline")
    _bench_parser(bench)
    bench.set_defaults(handler=cmd_bench)
    return parser


def configure_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if debug else "%(message)s"
    logging.basicConfig(level=logging.WARNING, format=fmt, stream=sys.stderr, force=True)
    logging.getLogger("mlmclm").setLevel(level)


def main(argv: Sequence[str] | None = None, prog: str = "mlmclm") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from mlmclm.train.threads import yield_while_waiting

    yield_while_waiting()  # before anything imports torch
    command_name = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(prog, command_name).parse_args(argv)
    configure_logging(args.debug, args.quiet)
    command = shlex.join(["mlmclm", *argv])
    try:
        return args.handler(args, command)
    except UserError as exc:
        if args.debug:
            raise
        print("error: " + " ".join(str(exc).splitlines()), file=sys.stderr)  # one line, always
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: finished runs are saved; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        _leave_data_parallel_job()


def _leave_data_parallel_job() -> None:
    """Destroy the process group if this command joined one (torch warns at exit otherwise)."""
    if "mlmclm.train.distributed" in sys.modules:
        sys.modules["mlmclm.train.distributed"].shutdown()


def train_main() -> None:
    """``python train.py ...`` is ``mlmclm train ...``."""
    sys.exit(main(["train", *sys.argv[1:]]))


def setup_tokenizer_main() -> None:
    """``python setup_tokenizer.py ...`` is ``mlmclm setup-tokenizer ...``."""
    sys.exit(main(["setup-tokenizer", *sys.argv[1:]]))


if __name__ == "__main__":  # ``python -m mlmclm.cli ...`` (the same as ``mlmclm ...``), not a silent no-op
    sys.exit(main())
