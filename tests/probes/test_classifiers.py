import numpy as np
from scipy import stats

from mlmclm.probes.classifiers import fit_logistic_probe

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
