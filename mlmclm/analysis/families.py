"""Comparison families: the sets of comparisons whose p-values are corrected together (docs/statistics.md).

A family is one metric and one *scope*: either every pair of objectives within each attention mechanism
(``mlm_vs_clm/<metric>``, named after its first pair for compatibility with older results), or every pair
of mechanisms within one objective (``attention_within_<objective>/<metric>``). The names are what the
analysis JSON records; code compares :class:`Family` values and never parses the names.
"""

from __future__ import annotations

from dataclasses import dataclass

MLM_VS_CLM = "mlm_vs_clm"
_WITHIN = "attention_within_"


@dataclass(frozen=True)
class Family:
    """One metric compared across objectives (``objective is None``) or across mechanisms within ``objective``."""

    metric: str
    objective: str | None = None

    @property
    def across_objectives(self) -> bool:
        """True for the cross-objective family, whose pairs differ in objective and share the mechanism."""
        return self.objective is None

    @property
    def scope(self) -> str:
        """The name without the metric: ``mlm_vs_clm`` or ``attention_within_<objective>``."""
        return MLM_VS_CLM if self.objective is None else f"{_WITHIN}{self.objective}"

    @property
    def name(self) -> str:
        """As the analysis JSON spells it, e.g. ``attention_within_mlm/val_loss``."""
        return f"{self.scope}/{self.metric}"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_name(cls, name: str) -> Family:
        """The family a JSON name denotes; ``ValueError`` for a name that is neither scope."""
        scope, _, metric = name.partition("/")
        if not metric:
            raise ValueError(f"not a comparison family name: {name!r}")
        if scope == MLM_VS_CLM:
            return cls(metric)
        if scope.startswith(_WITHIN) and len(scope) > len(_WITHIN):
            return cls(metric, scope[len(_WITHIN):])
        raise ValueError(f"not a comparison family name: {name!r}")
