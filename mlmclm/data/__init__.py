"""Text to batches: corpus sources, cleaning, splits and folds, tokenizer, token cache, MLM/CLM batches.

The MLM strategies live in ``masking.py`` (``MLM_STRATEGIES``) and the CLM strategies in ``sequences.py``
(``CLM_STRATEGIES``), each registry beside its implementations.
"""

from __future__ import annotations

from mlmclm.data.batches import (
    TrainStream,
    budget_sequences,
    budget_units,
    build_eval_batches,
    control_notes,
    model_inputs,
)
from mlmclm.data.corpus import Corpus, load_corpus
from mlmclm.data.prepare import ExperimentData, FoldData, prepare_data, setup_tokenizer
from mlmclm.data.splits import Splits, split_documents
from mlmclm.data.token_cache import TokenizedDocuments
from mlmclm.data.tokenizer import TokenizerInfo, load_tokenizer, train_tokenizer

__all__ = [
    "Corpus",
    "ExperimentData",
    "FoldData",
    "Splits",
    "TokenizedDocuments",
    "TokenizerInfo",
    "TrainStream",
    "budget_sequences",
    "budget_units",
    "model_inputs",
    "build_eval_batches",
    "control_notes",
    "load_corpus",
    "load_tokenizer",
    "prepare_data",
    "setup_tokenizer",
    "split_documents",
    "train_tokenizer",
]
