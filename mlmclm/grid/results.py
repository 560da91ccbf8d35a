"""The resumable results store: ``<experiment>_raw_results.json`` plus one ``metrics.json`` per run.

Each finished run is written atomically to its own directory first, then the aggregate file is rewritten
atomically, so a crash at any moment loses at most the run in flight. A rerun reads both back, skips the
runs that finished (completed or diverged; failed runs are retried) and refuses to mix results produced
under a different configuration.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlmclm.atomic import atomic_write_json
from mlmclm.config import is_plain_name
from mlmclm.errors import UserError, did_you_mean
from mlmclm.grid.invocations import carried_invocations
from mlmclm.grid.plan import LR_SWEEP, RunSpec
from mlmclm.objectives import OBJECTIVES

SCHEMA_VERSION = 1
FINISHED = ("completed", "diverged")
RUN_RECORD_NAME = "metrics.json"
OWNER_NAME = "owner.json"  # which experiment (and configuration) a run directory belongs to
# Keys that may change between invocations without invalidating finished runs: where and how runs are
# executed, how they are analysed, and the grid's extent (new seeds or conditions simply add runs).
_NEUTRAL_KEYS = (
    "resume", "workers", "executor", "output_dir", "statistics", "objectives", "attention", "num_runs",
    "seeds", "ray",
)
# Dotted keys likewise neutral: where the data cache lives (the data themselves are checked by hash).
_NEUTRAL_DOTTED_KEYS = ("data.cache_dir",)
PROVENANCE_KEYS = ("data_hash", "tokenizer_hash")  # run-record fields naming the exact data a run used


def raw_results_path(output_dir: Path, experiment_name: str) -> Path:
    return output_dir / f"{experiment_name}_raw_results.json"


def run_directory(output_dir: Path, spec: RunSpec) -> Path:
    return output_dir / "experiments" / spec.run_id


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_fingerprint(config: dict[str, Any]) -> str:
    """Hash of every setting that changes what a run computes (the keys config_differences compares)."""
    relevant = {k: v for k, v in _flatten(config).items() if not _is_neutral(k)}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _is_neutral(key: str) -> bool:
    return key.split(".")[0] in _NEUTRAL_KEYS or key in _NEUTRAL_DOTTED_KEYS


def data_differences(
    previous: dict[str, Any], runs: list[dict[str, Any]], provenance: Callable[[int | None], dict[str, str]]
) -> list[str]:
    """Why finished ``runs`` were trained on other data than this invocation would use (empty: same data).

    Each run is compared with what its own fold gets now (``provenance(fold)``); a record written before
    runs stored their hashes is judged by the corpus and tokenizer hashes of its file's data manifest.
    """
    manifest = previous.get("data", {})
    fallback = {"data_hash": manifest.get("corpus_sha256"), "tokenizer_hash": manifest.get("tokenizer_sha256")}
    names = {"data_hash": "corpus", "tokenizer_hash": "tokenizer"}
    reasons: list[str] = []
    for run in runs:
        expected = provenance(run.get("fold"))
        for key in PROVENANCE_KEYS:
            old = run.get(key) or fallback[key]
            reason = f"{names[key]} sha256 {str(old)[:12]} -> {expected[key][:12]}"
            if old != expected[key] and reason not in reasons:
                reasons.append(reason)
    return reasons


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ and that change what a run computes."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    changed = []
    for key in sorted(set(old_flat) | set(new_flat)):
        if _is_neutral(key):
            continue
        if old_flat.get(key) != new_flat.get(key):
            changed.append(f"{key} ({old_flat.get(key)!r} -> {new_flat.get(key)!r})")
    return changed


class ResultsStore:
    """Holds the raw-results document of one experiment and keeps it on disk after every change."""

    def __init__(self, output_dir: Path, experiment_name: str, header: dict[str, Any]) -> None:
        self.output_dir = output_dir
        self.path = raw_results_path(output_dir, experiment_name)
        self.document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "experiment_name": experiment_name,
            "created": _now(),
            **header,
            "runs": [],
        }
        self.order: dict[str, int] = {}  # run_id -> plan position, so the file lists runs in plan order
        self.fingerprint = config_fingerprint(header["config"])
        self.provenance: Callable[[int | None], dict[str, str]] | None = None

    @classmethod
    def open(
        cls,
        output_dir: Path,
        experiment_name: str,
        header: dict[str, Any],
        resume: bool,
        provenance: Callable[[int | None], dict[str, str]] | None = None,
    ) -> ResultsStore:
        """Start a new store, or (``resume``) continue the existing one if its configuration and data match.

        ``provenance(fold)`` gives the ``data_hash``/``tokenizer_hash`` a run of that fold gets now; finished
        runs trained on other data are never pooled with new ones.
        """
        store = cls(output_dir, experiment_name, header)
        store.provenance = provenance
        if not store.path.exists():
            return store
        if not resume:
            store._discard_previous()
            return store
        previous = load_raw_results(store.path)
        changed = config_differences(previous.get("config", {}), header["config"])
        if changed:
            raise UserError(
                f"{store.path} was produced with a different configuration ({'; '.join(changed[:5])}"
                f"{'; ...' if len(changed) > 5 else ''}); use --overwrite to start over, or another "
                "--output-dir to keep both"
            )
        finished = [run for run in previous.get("runs", []) if run.get("status") in FINISHED]
        sweep_runs = (previous.get("lr_sweep") or {}).get("runs", [])
        finished_sweep = [run for run in sweep_runs if run.get("status") in FINISHED]
        other_data = data_differences(previous, finished + finished_sweep, provenance) if provenance else []
        if other_data:
            raise UserError(
                f"{store.path} holds runs trained on other data ({'; '.join(other_data[:4])}); use --overwrite "
                "to start over, or another --output-dir to keep both"
            )
        store.document["created"] = previous.get("created", store.document["created"])
        store.document["runs"] = finished
        if finished_sweep:
            store.document["lr_sweep"] = {"runs": finished_sweep}
        store.document["invocations"] = carried_invocations(previous, store.document["runs"])
        return store

    def _discard_previous(self) -> None:
        previous = load_raw_results(self.path)
        for run in previous.get("runs", []) + (previous.get("lr_sweep") or {}).get("runs", []):
            run_dir = self.output_dir / "experiments" / Path(run.get("run_id", "")).name
            if run.get("run_id") and run_dir.is_dir():
                shutil.rmtree(run_dir)
        self.path.unlink()

    def finished(self, spec: RunSpec) -> dict[str, Any] | None:
        """The stored record of ``spec`` if it finished with the same seed, fold and learning rate, else None."""
        for run in self._runs(spec.phase):
            if run["run_id"] == spec.run_id and _same_run(run, spec):
                return run if run["status"] in FINISHED else None
        record = read_run_record(run_directory(self.output_dir, spec))
        if (
            record
            and record.get("status") in FINISHED
            and record.get("config_fingerprint") == self.fingerprint
            and _same_run(record, spec)
            and self._same_data(record)
        ):
            self.record(record)  # finished on disk but not yet in the aggregate (crash in between)
            return record
        return None

    def _runs(self, phase: str) -> list[dict[str, Any]]:
        """Final runs live in ``runs``; learning-rate sweep runs in ``lr_sweep.runs``, never pooled with them."""
        if phase == LR_SWEEP:
            return self.document.get("lr_sweep", {}).get("runs", [])
        return self.document["runs"]

    def sweep_records(self) -> dict[str, dict[str, Any]]:
        """The recorded sweep runs by run id."""
        return {run["run_id"]: run for run in self._runs(LR_SWEEP)}

    def set_lr_sweep(self, summary: dict[str, Any]) -> None:
        """Store the sweep's rates, per-condition results and choices beside its run records."""
        self.document["lr_sweep"] = {**summary, "runs": self._runs(LR_SWEEP)}
        self.save()

    def _same_data(self, record: dict[str, Any]) -> bool:
        if self.provenance is None:
            return True
        expected = self.provenance(record.get("fold"))
        return all(record.get(key) == expected[key] for key in PROVENANCE_KEYS)

    def record(self, run: dict[str, Any]) -> None:
        phase = run.get("phase", "final")
        runs = [existing for existing in self._runs(phase) if existing["run_id"] != run["run_id"]]
        runs.append(run)
        runs.sort(key=lambda item: (self.order.get(item["run_id"], len(self.order)), item["run_id"]))
        if phase == LR_SWEEP:
            self.document.setdefault("lr_sweep", {})["runs"] = runs
        else:
            self.document["runs"] = runs
        self.save()

    def save(self) -> None:
        self.document["updated"] = _now()
        atomic_write_json(self.path, self.document)


def _same_run(record: dict[str, Any], spec: RunSpec) -> bool:
    return (
        record.get("seed") == spec.seed
        and record.get("fold") == spec.fold
        and record.get("learning_rate") == spec.learning_rate
        and record.get("phase", "final") == spec.phase
    )


def check_run_directories(output_dir: Path, specs: list[RunSpec], experiment_name: str) -> None:
    """Refuse to touch run directories that another experiment owns (run ids are shared across experiments)."""
    for spec in specs:
        owner = _read_owner(run_directory(output_dir, spec))
        if owner and owner.get("experiment_name") != experiment_name:
            raise UserError(
                f"{run_directory(output_dir, spec)} belongs to experiment {owner.get('experiment_name')!r}; "
                f"give experiment {experiment_name!r} its own --output-dir"
            )


def claim_run_directory(
    run_dir: Path, experiment_name: str, fingerprint: str, provenance: dict[str, str] | None = None
) -> None:
    """Start clean if the directory holds leftovers of another configuration or other data; keep own checkpoints."""
    owner = _read_owner(run_dir) or {}
    provenance = provenance or {}
    same_data = all(owner.get(key) == value for key, value in provenance.items())
    if run_dir.exists() and (owner.get("config_fingerprint") != fingerprint or not same_data):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / OWNER_NAME,
        {"experiment_name": experiment_name, "config_fingerprint": fingerprint, **provenance},
    )


def _read_owner(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / OWNER_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def read_run_record(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / RUN_RECORD_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None  # a record we cannot read is a run to redo, never a reason to stop the grid


def load_raw_results(path: str | Path) -> dict[str, Any]:
    """Read a raw-results file; a missing or malformed file is a one-line user error."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"raw-results file not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read raw-results file {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
        raise UserError(f"{path} is not an mlmclm raw-results file (no 'runs' list)")
    return document


def validate_raw_results(document: Mapping[str, Any], path: str | Path) -> None:
    """Check, before anything is written, that a raw-results document has the shape the analysis reads.

    The first problem is a one-line :class:`UserError` naming its key path (``runs[3].metrics must be an
    object``). Lenient where older or hand-assembled files are still read: ``schema_version``, the header
    sections, ``invocations`` and a run's ``run_id``, ``fold``, ``seed`` and ``status`` may be absent (a run
    without hashes or a phase is judged as before). A run's attention is any non-empty name, not checked
    against the registry: the analysis imports no model, and a mechanism registered elsewhere still analyses.
    """
    _check_header(document)
    runs = document["runs"]
    for index, run in enumerate(runs):
        _check_run(run, f"runs[{index}]")
    if not [run for run in runs if run.get("phase") != LR_SWEEP]:
        raise UserError(f"raw results: {path} has no runs to analyse")
    _check_unique_runs(runs)


def _invalid(where: str, what: str) -> UserError:
    return UserError(f"raw results: {where} {what}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """A value as the JSON file spells it, cut short for a one-line message."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_kind(value: Any, where: str, kind: type, name: str, optional: bool = True) -> None:
    """``value`` (``None`` meaning absent when ``optional``) is a JSON ``name`` (object, list, string)."""
    if not (isinstance(value, kind) or (optional and value is None)):
        raise _invalid(where, f"must be {name} (got {_shown(value)})")


def _check_header(document: Mapping[str, Any]) -> None:
    version = document.get("schema_version", SCHEMA_VERSION)  # absent: a hand-assembled file, read as v1
    if not _is_int(version) or version != SCHEMA_VERSION:
        raise _invalid("schema_version", f"{_shown(version)} is not one this version reads ({SCHEMA_VERSION})")
    name = document.get("experiment_name")
    if not isinstance(name, str) or not is_plain_name(name):
        raise _invalid("experiment_name", f"must be a plain name (letters, digits, '.', '_', '-'), got {_shown(name)}")
    _check_kind(document.get("command"), "command", str, "a string")
    for key in ("config", "environment", "data", "budget", "probe_tasks", "lr_sweep"):
        if key in document:
            _check_kind(document[key], key, dict, "an object", optional=False)
    _check_config(document.get("config") or {})
    _check_kind((document.get("data") or {}).get("notes"), "data.notes", list, "a list")
    _check_invocations(document.get("invocations"))
    sweep = document.get("lr_sweep") or {}
    for key in ("rates", "conditions", "runs"):
        _check_kind(sweep.get(key), f"lr_sweep.{key}", list, "a list")
    for index, item in enumerate(sweep.get("conditions") or []):
        _check_kind(item, f"lr_sweep.conditions[{index}]", dict, "an object", optional=False)


def _check_config(config: Mapping[str, Any]) -> None:
    for key in ("statistics", "data", "model", "training", "probes", "evaluation"):
        if key in config:
            _check_kind(config[key], f"config.{key}", dict, "an object", optional=False)
    for key in ("objectives", "attention"):
        values = config.get(key)
        if values is not None and not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
            raise _invalid(f"config.{key}", f"must be a list of names (got {_shown(values)})")


def _check_invocations(invocations: Any) -> None:
    _check_kind(invocations, "invocations", list, "a list")
    for index, entry in enumerate(invocations or []):
        where = f"invocations[{index}]"
        _check_kind(entry, where, dict, "an object", optional=False)
        _check_kind(entry.get("command"), f"{where}.command", str, "a string")
        added = entry.get("runs_added")
        if added is not None and not (isinstance(added, list) and all(isinstance(r, str) for r in added)):
            raise _invalid(f"{where}.runs_added", "must be a list of run ids")


# Optional run fields and the JSON type each must have when present (docs/raw_results.schema.json).
_RUN_FIELD_KINDS: dict[str, tuple[type, str]] = {
    "run_id": (str, "a string"), "status": (str, "a string"), "error": (str, "a string"),
    "metrics": (dict, "an object"), "curves": (dict, "an object"), "tokens": (dict, "an object"),
    "hybrid": (dict, "an object"), "probe_items": (dict, "an object"),
    "length_generalisation": (list, "a list"), "failed_attempts": (list, "a list"),
}


def _check_run(run: Any, where: str) -> None:
    _check_kind(run, where, dict, "an object", optional=False)
    objective = run.get("objective")
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise _invalid(
            f"{where}.objective", f"{_shown(objective)} is not one of {', '.join(OBJECTIVES)}"
            + did_you_mean(objective, OBJECTIVES)
        )
    if not isinstance(run.get("attention"), str) or not run["attention"]:
        raise _invalid(f"{where}.attention", f"must be a mechanism name (got {_shown(run.get('attention'))})")
    for key in ("fold", "seed", "run_index"):
        value = run.get(key)
        if value is not None and not (_is_int(value) and (key == "seed" or value >= 0)):
            raise _invalid(f"{where}.{key}", f"must be an integer{'' if key == 'seed' else ' >= 0'} or null "
                           f"(got {_shown(value)})")
    if run.get("phase") not in (None, "final", LR_SWEEP):
        raise _invalid(f"{where}.phase", f"must be 'final' or '{LR_SWEEP}' (got {_shown(run['phase'])})")
    for key, (kind, name) in _RUN_FIELD_KINDS.items():
        if key in run:
            _check_kind(run[key], f"{where}.{key}", kind, name, optional=False)
    for key, curve in (run.get("curves") or {}).items():
        _check_kind(curve, f"{where}.curves.{key}", list, "a list", optional=False)


def _check_unique_runs(runs: list[Mapping[str, Any]]) -> None:
    """No run twice: one run_id per record, and one final run per objective, attention, fold and seed (a
    repeated one would be counted as two independent observations)."""
    seen: dict[str, int] = {}
    for index, run in enumerate(runs):
        keys = [f"run_id {run['run_id']!r}"] if "run_id" in run else []
        if run.get("phase") != LR_SWEEP and run.get("seed") is not None:
            condition = {key: run.get(key) for key in ("objective", "attention", "fold", "seed")}
            keys.append(", ".join(f"{k} {v if isinstance(v, str) else _shown(v)}" for k, v in condition.items()))
        for key in keys:
            if key in seen:
                raise _invalid(f"runs[{index}]", f"repeats the {key} of runs[{seen[key]}]")
            seen[key] = index


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
