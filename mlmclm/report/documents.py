"""The two JSON documents: per-condition summaries and one record per comparison (strict JSON, no NaN).

The analysis document's layout is specified by ``docs/statistical_analysis.schema.json``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from mlmclm.analysis import Analysis, Comparison, ConditionSummary
from mlmclm.analysis.conditions import metric_direction

SCHEMA_VERSION = 1


def plain(value: Any) -> Any:
    """Frozen result objects as plain JSON values; numpy scalars unwrapped, NaN/inf as ``None``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _settings(analysis: Analysis) -> dict[str, Any]:
    return plain(analysis.settings)


def comparison_record(comparison: Comparison) -> dict[str, Any]:
    return plain(comparison.to_json())


def _condition_record(summary: ConditionSummary) -> dict[str, Any]:
    record = plain(summary)
    record["runs"] = record.pop("observations")
    record["excluded_runs"] = record.pop("excluded")
    record["variance_components"] = record.pop("variance")
    return record


def summary_document(analysis: Analysis, experiment_name: str) -> dict[str, Any]:
    """``<exp>_summary.json``: per metric, per condition n, mean, SD, median, range, CI and exclusions."""
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment_name": experiment_name,
        "settings": _settings(analysis),
        "unfinished_runs": plain(analysis.unfinished_runs),
        "metrics": {
            metric: {
                "direction": metric_direction(metric),
                "conditions": [_condition_record(summary) for summary in analysis.summaries_for(metric)],
            }
            for metric in analysis.metrics
        },
    }


def analysis_document(analysis: Analysis, experiment_name: str) -> dict[str, Any]:
    """``<exp>_statistical_analysis.json``: settings, families and one record per comparison."""
    return {
        "schema_version": SCHEMA_VERSION,
        "experiment_name": experiment_name,
        "settings": _settings(analysis),
        "metrics": list(analysis.metrics),
        "families": list(dict.fromkeys(comparison.family.name for comparison in analysis.comparisons)),
        "unfinished_runs": plain(analysis.unfinished_runs),
        "comparisons": [comparison_record(comparison) for comparison in analysis.comparisons],
        "rankings": plain(analysis.rankings),
        "probe_aggregates": {
            "iqm": plain(analysis.probe_iqm),
            "probability_of_improvement": plain(analysis.probe_improvement),
            "performance_profiles": plain(analysis.probe_profiles),
        },
        "divergence": {
            "rates": plain(analysis.divergence_rates),
            "comparisons": plain(analysis.divergence_comparisons),
        },
        **endpoint_records(analysis),
    }


def endpoint_records(analysis: Analysis) -> dict[str, Any]:
    """The primary endpoint, family roles, headline families, item-level and sample-efficiency results, and the
    analysis log (docs/statistics.md)."""
    return {
        "primary_endpoint": plain(analysis.primary_endpoint),
        "family_roles": {family.name: role for family, role in analysis.family_roles.items()},
        # Only the primary family may lead the report (endpoint_sections.headline_lines reads the same role).
        "headline_families": [family.name for family, role in analysis.family_roles.items() if role == "primary"],
        "item_level": plain(analysis.item_level),
        "band_separations": plain(analysis.band_separations),
        "analysis_log": plain(analysis.analysis_log),
        "attainable_p": plain(analysis.attainable_p),
    }
