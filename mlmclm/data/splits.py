"""Length-stratified train/validation/test splits and k-fold cross-validation folds.

Documents are binned by length quantile (rank-based, so every bin holds n/B documents even with ties) and
each split or fold draws from every bin in proportion, so no condition gets the short or the long texts by
chance. The assignment is a pure function of the document lengths and ``split_seed``: every objective and
attention mechanism gets identical splits and folds. The test split is held out before folds are made and
never enters any fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from mlmclm.errors import DataError


@dataclass(frozen=True)
class Splits:
    """Sorted corpus document indices per split; ``folds`` partitions train + validation under CV."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    folds: tuple[np.ndarray, ...] | None
    length_bins: np.ndarray  # bin of every corpus document


def length_quantile_bins(lengths: np.ndarray, num_bins: int) -> np.ndarray:
    """Equal-count length bins: bin = floor(rank * B / n), ties broken by document order."""
    ranks = np.empty(len(lengths), dtype=np.int64)
    ranks[np.argsort(lengths, kind="stable")] = np.arange(len(lengths))
    return (ranks * num_bins) // len(lengths)


def split_documents(
    lengths: np.ndarray, ratios: list[float], num_bins: int, seed: int, folds: int | None = None
) -> Splits:
    """Stratified splits (and ``folds`` folds over train + validation) of documents with these lengths."""
    n = len(lengths)
    n_test = round(n * ratios[2])
    n_validation = round(n * ratios[1])
    n_train = n - n_test - n_validation
    smallest = min(n_train, n_validation, n_test)
    if smallest < num_bins:
        raise DataError(
            f"too few documents to split: {n} documents give train/validation/test {n_train}/{n_validation}/"
            f"{n_test} with data.split_ratios={ratios}, but each split needs at least data.length_bins="
            f"{num_bins} (one per length bin); add documents or lower data.length_bins"
        )
    bins = length_quantile_bins(np.asarray(lengths), num_bins)
    everything = np.arange(n)
    rest, test = train_test_split(everything, test_size=n_test, stratify=bins, random_state=seed)
    train, validation = train_test_split(
        rest, test_size=n_validation, stratify=bins[rest], random_state=seed + 1
    )
    fold_indices = None
    if folds is not None:
        pool = np.sort(np.concatenate([train, validation]))
        per_bin = np.bincount(bins[pool], minlength=num_bins)
        if per_bin.min() < folds:
            raise DataError(
                f"too few documents for {folds} folds: the {len(pool)} train+validation documents hold only "
                f"{per_bin.min()} in their smallest of {num_bins} length bins, and every fold needs one from "
                "each bin; lower folds or data.length_bins, or add documents"
            )
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        fold_indices = tuple(np.sort(pool[held]) for _, held in splitter.split(pool, bins[pool]))
    return Splits(
        train=np.sort(train),
        validation=np.sort(validation),
        test=np.sort(test),
        folds=fold_indices,
        length_bins=bins,
    )
