import numpy as np
from scipy import stats

from mlmclm.probes.classifiers import cross_validation_folds, fit_logistic_probe

N_TRAIN, N_TEST, DIM = 300, 400, 32


def balanced_labels(rng, n, num_labels):
    return rng.permutation(np.arange(n) % num_labels)


def test_logistic_probe_on_random_features_scores_at_chance():
    """Features independent of the label: test accuracy ~ Binomial(N_TEST, 1/2) / N_TEST (99.9% interval)."""
    rng = np.random.default_rng(1)
    train_y, test_y = balanced_labels(rng, N_TRAIN, 2), balanced_labels(rng, N_TEST, 2)
    score = fit_logistic_probe(
        rng.normal(size=(N_TRAIN, DIM)), train_y, rng.normal(size=(N_TEST, DIM)), test_y, 0
    )
    low, high = stats.binom.interval(0.999, N_TEST, 0.5)
    assert low / N_TEST <= score.accuracy <= high / N_TEST
    assert score.f1 <= high / N_TEST


def test_logistic_probe_on_features_carrying_the_label_scores_high():
    rng = np.random.default_rng(2)
    num_labels = 5
    centres = rng.normal(size=(num_labels, DIM))

    def features(labels):
        return centres[labels] + rng.normal(scale=1.0, size=(len(labels), DIM))

    train_y, test_y = balanced_labels(rng, N_TRAIN, num_labels), balanced_labels(rng, N_TEST, num_labels)
    score = fit_logistic_probe(features(train_y), train_y, features(test_y), test_y, 0)
    assert score.accuracy > 0.9 and score.f1 > 0.9


def test_logistic_probe_is_deterministic():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 8)), balanced_labels(rng, 200, 2)
    assert fit_logistic_probe(x[:150], y[:150], x[150:], y[150:], 7) == fit_logistic_probe(
        x[:150], y[:150], x[150:], y[150:], 7
    )


def test_choosing_c_never_puts_one_document_in_both_fit_and_validation_folds():
    """The probe split is by document (issue 10.5), so the folds that choose C inside it are too."""
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(40), 5)  # 40 documents of 5 examples with mixed labels
    labels = balanced_labels(rng, len(groups), 2)
    folds = cross_validation_folds(labels, groups, seed=0)
    assert len(folds) == 5
    for fit, validation in folds:
        assert not set(groups[fit]) & set(groups[validation])
        assert set(labels[fit]) == set(labels[validation]) == {0, 1}
    assert sorted(np.concatenate([validation for _, validation in folds]).tolist()) == list(range(200))


def test_folds_fall_back_to_examples_when_a_label_lies_in_one_group():
    labels = np.array([0] * 10 + [1] * 10)
    groups = np.array([0] * 10 + list(range(1, 11)))
    folds = cross_validation_folds(labels, groups, seed=0)
    assert all(set(labels[fit]) == {0, 1} for fit, _ in folds)
