"""The run record: what one training run leaves in the raw results (``runs`` items of
docs/raw_results.schema.json), written by the grid's worker and read by the statistics.

A typed record rather than a dict so that the writer and the readers agree on the field names. Optional
fields that are ``None`` are left out of the JSON, as the schema expects; keys this version does not know
(written by a newer version, or added by hand) are kept in ``extra`` and written back after the known ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from mlmclm.grid.plan import RunSpec

_REQUIRED = ("run_id", "objective", "attention", "fold", "seed", "run_index", "status", "metrics", "curves")


@dataclass(frozen=True)
class RunRecord:
    """One run: its condition, fold and seed, its outcome, and what it trained on (field order = JSON order)."""

    run_id: str
    objective: str
    attention: str
    fold: int | None
    seed: int | None
    run_index: int | None
    learning_rate: float | None = None
    phase: str | None = None  # "final" | "lr_sweep"; absent in hand-assembled files means final
    model_dir: str | None = None
    config_fingerprint: str | None = None
    data_hash: str | None = None
    tokenizer_hash: str | None = None
    status: str = "unknown"  # completed | diverged | failed
    metrics: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    precision: str | None = None
    device: str | None = None
    early_stopped: bool | None = None
    resumed_from_step: int | None = None
    tokens: dict[str, Any] | None = None
    hybrid: dict[str, Any] | None = None
    probe_items: dict[str, str] | None = None
    length_generalisation: list[dict[str, Any]] | None = None
    error: str | None = None
    failed_attempts: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as read

    @classmethod
    def planned(cls, spec: RunSpec, **outcome: Any) -> RunRecord:
        """The record of ``spec`` with the given outcome fields (status, metrics, ...); an outcome field this
        class does not name goes to ``extra``, so a new field from training is recorded, not lost."""
        known = {item.name for item in fields(cls)} - {"extra"}
        return cls(
            run_id=spec.run_id, objective=spec.objective, attention=spec.attention, fold=spec.fold,
            seed=spec.seed, run_index=spec.run_index, learning_rate=spec.learning_rate, phase=spec.phase,
            **{key: value for key, value in outcome.items() if key in known},
            extra={key: value for key, value in outcome.items() if key not in known},
        )

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def to_json(self) -> dict[str, Any]:
        """The raw-results form: required fields always (``fold`` may be null), optional ones when set."""
        record = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "extra" or (value is None and item.name not in _REQUIRED):
                continue
            record[item.name] = value
        return {**record, **{key: value for key, value in self.extra.items() if key not in record}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRecord:
        """A record from the raw results; ``objective`` and ``attention`` are required (``KeyError``), the rest
        defaults as the analysis always treated it (a run without a status does not count)."""
        known = {item.name for item in fields(cls)} - {"extra"}
        values = {key: value for key, value in data.items() if key in known}
        values["run_id"] = str(data.get("run_id", "?"))
        values["objective"], values["attention"] = str(data["objective"]), str(data["attention"])
        values["status"] = str(data.get("status", "unknown"))
        values["metrics"] = dict(data.get("metrics") or {})
        values["curves"] = dict(data.get("curves") or {})
        for name in ("fold", "seed", "run_index"):
            values.setdefault(name, None)
        return cls(**values, extra={key: value for key, value in data.items() if key not in known})


def completed_runs(runs: Sequence[RunRecord], objective: str, attention: str) -> list[RunRecord]:
    """The completed runs of one condition: what every per-condition curve and figure averages."""
    return [run for run in runs if run.objective == objective and run.attention == attention and run.completed]
