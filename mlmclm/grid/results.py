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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlmclm.atomic import atomic_write_json
from mlmclm.errors import UserError
from mlmclm.grid.invocations import carried_invocations
from mlmclm.grid.plan import RunSpec

SCHEMA_VERSION = 1
FINISHED = ("completed", "diverged")
RUN_RECORD_NAME = "metrics.json"
OWNER_NAME = "owner.json"  # which experiment (and configuration) a run directory belongs to
# Keys that may change between invocations without invalidating finished runs: where and how runs are
# executed, how they are analysed, and the grid's extent (new seeds or conditions simply add runs).
_NEUTRAL_KEYS = (
    "resume", "workers", "executor", "output_dir", "statistics", "objectives", "attention", "num_runs",
    "seeds",
)


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
    relevant = {k: v for k, v in _flatten(config).items() if k.split(".")[0] not in _NEUTRAL_KEYS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted keys whose values differ and that change what a run computes."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    changed = []
    for key in sorted(set(old_flat) | set(new_flat)):
        if key.split(".")[0] in _NEUTRAL_KEYS:
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

    @classmethod
    def open(cls, output_dir: Path, experiment_name: str, header: dict[str, Any], resume: bool) -> ResultsStore:
        """Start a new store, or (``resume``) continue the existing one if its configuration matches."""
        store = cls(output_dir, experiment_name, header)
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
        store.document["created"] = previous.get("created", store.document["created"])
        store.document["runs"] = [run for run in previous.get("runs", []) if run.get("status") in FINISHED]
        store.document["invocations"] = carried_invocations(previous, store.document["runs"])
        return store

    def _discard_previous(self) -> None:
        previous = load_raw_results(self.path)
        for run in previous.get("runs", []):
            run_dir = self.output_dir / "experiments" / Path(run.get("run_id", "")).name
            if run.get("run_id") and run_dir.is_dir():
                shutil.rmtree(run_dir)
        self.path.unlink()

    def finished(self, spec: RunSpec) -> dict[str, Any] | None:
        """The stored record of ``spec`` if it finished with the same seed and fold, else None."""
        for run in self.document["runs"]:
            if run["run_id"] == spec.run_id and run["seed"] == spec.seed and run["fold"] == spec.fold:
                return run if run["status"] in FINISHED else None
        record = read_run_record(run_directory(self.output_dir, spec))
        if record and record.get("status") in FINISHED and record.get("config_fingerprint") == self.fingerprint:
            self.record(record)  # finished on disk but not yet in the aggregate (crash in between)
            return record
        return None

    def record(self, run: dict[str, Any]) -> None:
        runs = [existing for existing in self.document["runs"] if existing["run_id"] != run["run_id"]]
        runs.append(run)
        runs.sort(key=lambda item: (self.order.get(item["run_id"], len(self.order)), item["run_id"]))
        self.document["runs"] = runs
        self.save()

    def save(self) -> None:
        self.document["updated"] = _now()
        atomic_write_json(self.path, self.document)


def check_run_directories(output_dir: Path, specs: list[RunSpec], experiment_name: str) -> None:
    """Refuse to touch run directories that another experiment owns (run ids are shared across experiments)."""
    for spec in specs:
        owner = _read_owner(run_directory(output_dir, spec))
        if owner and owner.get("experiment_name") != experiment_name:
            raise UserError(
                f"{run_directory(output_dir, spec)} belongs to experiment {owner.get('experiment_name')!r}; "
                f"give experiment {experiment_name!r} its own --output-dir"
            )


def claim_run_directory(run_dir: Path, experiment_name: str, fingerprint: str) -> None:
    """Start clean if the directory holds leftovers of another configuration; keep own checkpoints."""
    owner = _read_owner(run_dir)
    if run_dir.exists() and (owner or {}).get("config_fingerprint") != fingerprint:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / OWNER_NAME, {"experiment_name": experiment_name, "config_fingerprint": fingerprint})


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
