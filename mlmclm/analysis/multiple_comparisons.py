"""Family-wise corrections with :func:`statsmodels.stats.multitest.multipletests`.

Holm (1979) step-down controls the family-wise error rate and is uniformly more powerful than Bonferroni;
``fdr_bh`` is Benjamini & Hochberg (1995) false-discovery-rate control; ``none`` leaves p-values as they are.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.multitest import multipletests

from mlmclm.config import CORRECTIONS
from mlmclm.errors import ConfigError


@dataclass(frozen=True)
class AdjustedPValues:
    """Adjusted p-values and decisions, aligned with the input; ``None`` where the input p was ``None``."""

    p_adjusted: tuple[float | None, ...]
    reject: tuple[bool, ...]
    method: str
    alpha: float


def adjust_pvalues(pvalues: Sequence[float | None], *, method: str, alpha: float) -> AdjustedPValues:
    """Correct one family; comparisons without a p-value (no test possible) are left out of the family."""
    if method not in CORRECTIONS:
        raise ConfigError(f"unknown correction {method!r} (valid: {', '.join(CORRECTIONS)})")
    index = [i for i, p in enumerate(pvalues) if p is not None]
    adjusted: list[float | None] = [None] * len(pvalues)
    reject = [False] * len(pvalues)
    if index:
        raw = np.array([pvalues[i] for i in index], dtype=float)
        if method == "none":
            decisions, corrected = raw <= alpha, raw
        else:
            with _without_forced_collection():
                decisions, corrected, _, _ = multipletests(raw, alpha=alpha, method=method)
        for position, i in enumerate(index):
            adjusted[i] = float(corrected[position])
            reject[i] = bool(decisions[position])
    return AdjustedPValues(tuple(adjusted), tuple(reject), method, alpha)


def family_alpha(method: str, alpha: float, m: int) -> float:
    """The level at which a comparison is significant in a family of ``m`` tested ones whatever the others' p.

    Notes
    -----
    α/m under every correction (α under ``none``). Each correction rejects every p ≤ α/m: Bonferroni exactly
    those; Holm's steps α/m, α/(m−1), ... and Benjamini–Hochberg's kα/m all start there. So P(p ≤ α/m) is a
    lower bound on a comparison's power after correction: exact for Bonferroni, and for Holm and BH the worst
    case, reached when only that comparison carries an effect (up to the chance that a null comparison is
    rejected first). The power analogue of G*Power's Bonferroni-adjusted α (Faul et al. 2007).

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scand. J. Stat.* 6:65–70.
    Faul, F., Erdfelder, E., Lang, A.-G. & Buchner, A. (2007). G*Power 3. *Behav. Res. Methods* 39:175–191.
    """
    if method not in CORRECTIONS:
        raise ConfigError(f"unknown correction {method!r} (valid: {', '.join(CORRECTIONS)})")
    return alpha if method == "none" else alpha / max(m, 1)


@contextmanager
def _without_forced_collection() -> Iterator[None]:
    """statsmodels' Holm branch ends with ``gc.collect()`` (multitest.py) to free one temporary array. In a
    process that holds torch that full collection costs ~70 ms and grows with the heap: it was nearly all of
    an analysis's time (3.1 of 3.2 s in one report test) and made the test suite 4x slower. The p-values do
    not depend on it; Python's own collector still runs as usual."""
    collect = gc.collect
    gc.collect = lambda *args, **kwargs: 0
    try:
        yield
    finally:
        gc.collect = collect
