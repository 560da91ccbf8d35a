"""The unigram baseline of evaluation accuracy: predicting the most frequent target everywhere."""

from __future__ import annotations

import math

import torch

from mlmclm.train.evaluate import majority_token_accuracy


def _batch(labels):
    return {"labels": torch.tensor(labels)}


def test_majority_token_accuracy_is_the_share_of_the_most_frequent_scored_target():
    batches = [_batch([[5, 5, -100, 7]]), _batch([[5, 9, -100, -100]])]
    # scored targets 5, 5, 7, 5, 9: predicting 5 everywhere is right 3 times in 5; ignored positions do not count
    assert majority_token_accuracy(batches) == 3 / 5


def test_majority_token_accuracy_of_nothing_scored_is_nan():
    assert math.isnan(majority_token_accuracy([_batch([[-100, -100]])]))
