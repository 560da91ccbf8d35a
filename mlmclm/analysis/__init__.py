"""Statistics for MLM-vs-CLM experiments: pure functions from numbers to named, frozen results (no I/O)."""

from mlmclm.analysis.compare import Analysis, ConditionSummary, analyze, compare_samples
from mlmclm.analysis.comparison import Comparison
from mlmclm.analysis.conditions import metric_direction
from mlmclm.analysis.families import Family
from mlmclm.analysis.intervals import ConfidenceInterval, bootstrap_ci
from mlmclm.analysis.multiple_comparisons import adjust_pvalues

__all__ = [
    "Analysis",
    "Comparison",
    "ConditionSummary",
    "ConfidenceInterval",
    "Family",
    "adjust_pvalues",
    "analyze",
    "bootstrap_ci",
    "compare_samples",
    "metric_direction",
]
