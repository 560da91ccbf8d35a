"""``mlmclm validate``: designed experiments whose answers are known, run through the ordinary pipeline.

Each check trains real grids (:func:`mlmclm.grid.runner.run_grid`, exactly as ``mlmclm train`` does) and reads
them with the ordinary statistics (:func:`mlmclm.analysis.compare.analyze`); only the *labels* of the runs are
chosen by the check (:mod:`mlmclm.validate.arms`). docs/validation.md says what each check asks.
"""

from mlmclm.validate.runner import CHECKS, run_validation

__all__ = ["CHECKS", "run_validation"]
