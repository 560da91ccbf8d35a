"""What the package declares matches what it uses: every third-party import is a declared dependency, and
the package-data globs name files that exist."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mlmclm"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def normalise(name: str) -> str:
    """PEP 503: ``PyYAML`` and ``pyyaml``, ``scikit_learn`` and ``scikit-learn`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalise(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)) for requirement in requirements}


def third_party_imports() -> dict[str, bool]:
    """Top-level module -> whether some file imports it at module level (else only inside functions, lazily).

    ``importlib.import_module("pyarrow.parquet")`` with a literal name counts as a lazy import.
    """
    found: dict[str, bool] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "mlmclm" or top in sys.stdlib_module_names:
                    continue
                found[top] = found.get(top, False) or id(node) in module_level
    return found


def distributions_of(module: str) -> set[str]:
    """The installed distributions providing ``module``; one of the module's own name when not installed
    (an optional extra such as ``datasets``, whose module and distribution names agree)."""
    distributions = importlib.metadata.packages_distributions().get(module) or [module]
    return {normalise(name) for name in distributions}


def test_the_import_scan_sees_known_imports():
    imports = third_party_imports()
    assert imports["torch"] is True and imports["yaml"] is True  # module-level
    assert imports["transformers"] is False and imports["pyarrow"] is False  # only inside functions


def test_every_module_level_import_is_a_declared_dependency():
    declared = requirement_names(PYPROJECT["project"]["dependencies"])
    missing = {
        module: distributions_of(module) for module, eager in third_party_imports().items()
        if eager and not distributions_of(module) & declared
    }
    assert not missing, f"imported at module level but not in [project.dependencies]: {missing}"


def test_every_lazy_import_is_a_dependency_or_an_extra_other_than_test():
    extras = PYPROJECT["project"]["optional-dependencies"]
    declared = requirement_names(PYPROJECT["project"]["dependencies"])
    for name, requirements in extras.items():
        if name != "test":
            declared |= requirement_names(requirements)
    missing = {
        module: distributions_of(module) for module in third_party_imports()
        if not distributions_of(module) & declared
    }
    assert not missing, f"imported but declared nowhere a user can install it: {missing}"


def test_package_data_globs_match_files_and_cover_what_the_code_reads():
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["mlmclm"]
    for pattern in globs:
        assert list(PACKAGE.glob(pattern)), f"package-data glob {pattern!r} matches no file"
    packaged = {path for pattern in globs for path in PACKAGE.glob(pattern)}
    data_files = {path for path in PACKAGE.rglob("*") if path.is_file() and path.suffix not in (".py", ".pyc")}
    assert data_files <= packaged, f"files under mlmclm/ that the wheel would leave out: {data_files - packaged}"
