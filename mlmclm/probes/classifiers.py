"""The two probe classifiers: logistic regression on frozen features, and light fine-tuning of a copy.

The linear probe is the main yardstick: a low-capacity classifier on frozen features measures what the
representation makes linearly available rather than what a strong probe can learn on its own (Hewitt &
Liang, 2019, "Designing and Interpreting Probes with Control Tasks", EMNLP).
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlmclm.probes.features import has_padding, pad_batch, pool

logger = logging.getLogger(__name__)

INVERSE_REGULARISATION_GRID = np.logspace(-4, 2, 7)
"""C values searched by cross-validation (inverse L2 strength). On standardised features C = 100 is close to
unregularised already; larger C only adds slow, unconverged fits."""
MAX_CV_FOLDS = 5
FINETUNE_WEIGHT_DECAY = 0.01
FINETUNE_BATCH_SIZE = 16  # the small end of BERT's fine-tuning grid (Devlin et al., 2019, appendix A.3)


@dataclass(frozen=True)
class ProbeScore:
    """Test-split quality of one probe: accuracy and macro-averaged F1 (every label weighs the same), and
    which test items it got right (in test-split order), for the item-level analysis (docs/statistics.md)."""

    accuracy: float
    f1: float
    correct: tuple[bool, ...] = ()


def score_predictions(labels: np.ndarray, predictions: np.ndarray) -> ProbeScore:
    return ProbeScore(
        accuracy=float(accuracy_score(labels, predictions)),
        f1=float(f1_score(labels, predictions, average="macro")),
        correct=tuple(bool(hit) for hit in np.asarray(labels) == np.asarray(predictions)),
    )


def cross_validation_folds(
    labels: np.ndarray, groups: np.ndarray | None, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (fit, validation) index folds that choose C: stratified, and grouped when groups are known.

    With groups (source documents) scikit-learn's ``StratifiedGroupKFold`` keeps each group in one fold, for
    the reason the probe split is grouped: near-duplicates on both sides of a fold would favour weak
    regularisation. It needs every label in at least two groups (else some fit fold could lack a label);
    otherwise, or without groups, the folds are plain stratified k-fold over examples.
    """
    folds = int(min(MAX_CV_FOLDS, np.bincount(labels).min()))
    placeholder = np.zeros((len(labels), 1))
    if groups is not None:
        groups_per_label = min(len(np.unique(groups[labels == label])) for label in np.unique(labels))
        if groups_per_label >= 2:
            grouped = StratifiedGroupKFold(n_splits=min(folds, groups_per_label), shuffle=True, random_state=seed)
            return list(grouped.split(placeholder, labels, groups))
        logger.info("logistic probe: a label lies in a single group; choosing C by ungrouped folds")
    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(placeholder, labels))


def fit_logistic_probe(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    seed: int,
    train_groups: np.ndarray | None = None,
) -> ProbeScore:
    """Pick C by stratified k-fold CV on the probe train split only, refit on all of it, score on test.

    Standardisation sits inside the pipeline, so each CV fold is scaled with its own training statistics.
    ``train_groups`` (source documents) make the folds grouped, see :func:`cross_validation_folds`.
    """
    classifier = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed)),
        param_grid={"logisticregression__C": INVERSE_REGULARISATION_GRID},
        cv=cross_validation_folds(train_labels, train_groups, seed),
        scoring="accuracy",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        classifier.fit(train_features, train_labels)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        logger.info("logistic probe: some C values did not converge in 1000 iterations (weakest fits only)")
    return score_predictions(test_labels, classifier.predict(test_features))


@dataclass(frozen=True)
class TokenizedSplits:
    """A probe task as token ids, ready for fine-tuning; a contrast task also has each example's contrast
    sequence (``ProbeExample.contrast``), aligned with the examples."""

    train_sequences: Sequence[list[int]]
    train_labels: np.ndarray
    test_sequences: Sequence[list[int]]
    test_labels: np.ndarray
    num_labels: int
    train_contrast: Sequence[list[int]] | None = None
    test_contrast: Sequence[list[int]] | None = None


def finetune_probe(
    model: torch.nn.Module,
    splits: TokenizedSplits,
    pooling: str,
    *,
    pad_id: int,
    device: torch.device,
    eval_batch_size: int,
    epochs: int,
    learning_rate: float,
    seed: int,
) -> ProbeScore:
    """Fine-tune a deep copy of the encoder plus a linear head with AdamW; ``model`` itself is never touched.

    The copy stays in eval mode (dropout off) so the result depends only on ``seed``: data order and head
    initialisation come from one explicit ``torch.Generator``, never from global random state. For a contrast
    task the head reads pool(enc(text)) - pool(enc(contrast)), as the linear probe does.
    """
    encoder = copy.deepcopy(model).to(device).eval()
    encoder.requires_grad_(True)
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(int(model.config["hidden_size"]), splits.num_labels)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.02, generator=generator)
        head.bias.zero_()
    head = head.to(device)
    optimizer = torch.optim.AdamW(
        [*encoder.parameters(), *head.parameters()], lr=learning_rate, weight_decay=FINETUNE_WEIGHT_DECAY
    )
    train_labels = torch.as_tensor(splits.train_labels, dtype=torch.long)

    def pooled(sequences: Sequence[list[int]]) -> torch.Tensor:
        input_ids, attention_mask = pad_batch(sequences, pad_id, device)
        hidden = encoder.encode(input_ids, attention_mask if has_padding(sequences) else None)
        return pool(hidden, attention_mask, pooling).float()

    def logits_of(sequences: Sequence[list[int]], contrast: Sequence[list[int]] | None) -> torch.Tensor:
        """head(pool(text)), or head(pool(text) - pool(contrast)) for a contrast task (one encoder pass)."""
        if contrast is None:
            return head(pooled(sequences))
        both = pooled([*sequences, *contrast])
        return head(both[: len(sequences)] - both[len(sequences) :])

    def rows(sequences: Sequence[list[int]] | None, indices) -> list[list[int]] | None:
        return None if sequences is None else [sequences[i] for i in indices]

    for _ in range(epochs):
        for batch in torch.randperm(len(train_labels), generator=generator).split(FINETUNE_BATCH_SIZE):
            logits = logits_of(rows(splits.train_sequences, batch), rows(splits.train_contrast, batch))
            loss = torch.nn.functional.cross_entropy(logits, train_labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    predictions = []
    with torch.no_grad():
        for start in range(0, len(splits.test_sequences), eval_batch_size):
            indices = range(start, min(start + eval_batch_size, len(splits.test_sequences)))
            logits = logits_of(rows(splits.test_sequences, indices), rows(splits.test_contrast, indices))
            predictions.append(logits.argmax(dim=-1).cpu())
    return score_predictions(splits.test_labels, torch.cat(predictions).numpy())
