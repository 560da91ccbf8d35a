"""The package's layers import one way: a lower layer never imports a higher one, not even lazily.

``train/`` trains one run and is called by ``grid/``; the probes reach it as a callback the grid worker
builds (``train/protocols.py``). ``probes/`` writes metrics that ``analysis/`` and ``report/`` read; the
names they share live in the leaf module ``probe_metrics.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlmclm"

FORBIDDEN = {
    "train": ("grid", "analysis", "report", "probes"),
    "probes": ("analysis", "report", "grid"),
    "analysis": ("probes", "train", "grid", "report"),
}
# The typed records the grid hands the statistics (RunRecord and the RunSpec it carries) are the one way in:
# they import only config, so the analysis still loads neither torch nor the grid's machinery.
ALLOWED = {"analysis": ("mlmclm.grid.records", "mlmclm.grid.plan")}


def imported_modules(source: str, module: str) -> set[str]:
    """Every module an ``import`` statement anywhere in ``source`` names (inside functions and
    ``if TYPE_CHECKING:`` blocks too); relative imports are resolved against ``module``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")[: -node.level] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names)  # `from mlmclm import grid`
    return names


def forbidden_imports(layer: str) -> list[str]:
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        module = "mlmclm." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for name in imported_modules(path.read_text(encoding="utf-8"), module):
            if name.startswith(ALLOWED.get(layer, ())):
                continue
            if any(name == f"mlmclm.{up}" or name.startswith(f"mlmclm.{up}.") for up in FORBIDDEN[layer]):
                found.append(f"{path.relative_to(PACKAGE)} imports {name}")
    return found


def test_the_import_finder_sees_lazy_type_checking_and_relative_imports():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mlmclm.grid.plan import RunSpec\n"
        "def f():\n    import mlmclm.probes.run\n    from ..analysis import conditions\n"
        "from mlmclm import report\n"
    )
    names = imported_modules(source, "mlmclm.train.trainer")
    assert {"mlmclm.grid.plan", "mlmclm.probes.run", "mlmclm.analysis.conditions", "mlmclm.report"} <= names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_from_the_layers_above_it(layer):
    assert forbidden_imports(layer) == []


def test_the_probe_metric_names_module_imports_nothing_from_the_package():
    names = imported_modules((PACKAGE / "probe_metrics.py").read_text(encoding="utf-8"), "mlmclm.probe_metrics")
    assert not [name for name in names if name.startswith("mlmclm")]


def test_the_records_the_analysis_may_read_import_only_config():
    for module in ("grid/records.py", "grid/plan.py"):
        dotted = "mlmclm." + module[:-3].replace("/", ".")
        names = imported_modules((PACKAGE / module).read_text(encoding="utf-8"), dotted)
        package = {name for name in names if name.startswith("mlmclm")}
        assert package <= {"mlmclm.config", "mlmclm.config.ExperimentConfig", "mlmclm.grid.plan",
                           "mlmclm.grid.plan.RunSpec"}, (module, package)
