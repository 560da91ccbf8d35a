"""Splits and folds: length-stratified, disjoint, deterministic; the test split never enters a fold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mlmclm.data.splits import length_quantile_bins, split_documents
from mlmclm.errors import DataError


@pytest.fixture
def lengths():
    return np.random.default_rng(0).lognormal(mean=5, sigma=1.0, size=1000).astype(np.int64) + 1


def test_splits_partition_the_corpus_with_the_requested_ratios(lengths):
    splits = split_documents(lengths, [0.8, 0.1, 0.1], num_bins=5, seed=1)
    everything = np.concatenate([splits.train, splits.validation, splits.test])
    assert sorted(everything) == list(range(1000))
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (800, 100, 100)


def test_every_split_draws_equally_from_every_length_bin(lengths):
    splits = split_documents(lengths, [0.8, 0.1, 0.1], num_bins=5, seed=1)
    bins = length_quantile_bins(lengths, 5)
    for part in (splits.validation, splits.test):
        assert np.bincount(bins[part], minlength=5).tolist() == [20] * 5  # exact proportional allocation


def test_length_distributions_of_splits_are_statistically_indistinguishable(lengths):
    splits = split_documents(lengths, [0.8, 0.1, 0.1], num_bins=5, seed=1, folds=4)
    for part in (splits.validation, splits.test, *splits.folds):
        assert stats.ks_2samp(lengths[splits.train], lengths[part]).pvalue > 0.2


def test_folds_are_disjoint_cover_train_and_validation_and_exclude_test(lengths):
    splits = split_documents(lengths, [0.8, 0.1, 0.1], num_bins=5, seed=1, folds=3)
    union = np.concatenate(splits.folds)
    assert len(union) == len(set(union.tolist()))
    assert set(union.tolist()) == set(splits.train.tolist()) | set(splits.validation.tolist())
    assert not set(union.tolist()) & set(splits.test.tolist())
    assert sorted(len(f) for f in splits.folds) == [300, 300, 300]


def test_splits_and_folds_are_a_pure_function_of_lengths_and_seed(lengths):
    first = split_documents(lengths, [0.8, 0.1, 0.1], num_bins=5, seed=7, folds=3)
    again = split_documents(lengths.copy(), [0.8, 0.1, 0.1], num_bins=5, seed=7, folds=3)
    other = split_documents(lengths, [0.8, 0.1, 0.1], num_bins=5, seed=8, folds=3)
    assert all(np.array_equal(a, b) for a, b in zip(first.folds, again.folds, strict=True))
    assert np.array_equal(first.test, again.test)
    assert not np.array_equal(first.test, other.test)


def test_the_test_split_does_not_depend_on_the_number_of_folds(lengths):
    assert np.array_equal(
        split_documents(lengths, [0.8, 0.1, 0.1], 5, 3, folds=3).test,
        split_documents(lengths, [0.8, 0.1, 0.1], 5, 3).test,
    )


def test_too_few_documents_for_the_bins_names_the_numbers():
    with pytest.raises(DataError, match=r"12 documents give train/validation/test 10/1/1") as caught:
        split_documents(np.arange(12), [0.8, 0.1, 0.1], num_bins=5, seed=0)
    assert "\n" not in str(caught.value)


def test_too_few_documents_for_the_folds_names_the_numbers():
    with pytest.raises(
        DataError,
        match=r"too few documents for 12 folds: the 54 train\+validation documents hold "
        r"only 10 in their smallest of 5 length bins",
    ):
        split_documents(np.arange(60), [0.8, 0.1, 0.1], num_bins=5, seed=0, folds=12)
