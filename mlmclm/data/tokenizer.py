"""An offline BERT-style WordPiece tokenizer: trained on the training split, or loaded from a local file.

Training uses Hugging Face ``tokenizers`` with BERT's uncased normaliser and pre-tokeniser (Devlin et al.,
2019) and the special tokens ``[PAD] [UNK] [CLS] [SEP] [MASK]``. Nothing here touches the network except
:func:`fetch_hub_tokenizer`, which runs only when the user names a hub tokenizer (``hf:NAME``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from mlmclm.atomic import atomic_write_text
from mlmclm.data.hub import hub_unreachable_reason
from mlmclm.errors import DataError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Role -> accepted spellings, BERT's first; RoBERTa/GPT-style names are mapped onto BERT's roles.
SPECIAL_TOKEN_ALIASES = {
    "pad": ("[PAD]", "<pad>"),
    "unk": ("[UNK]", "<unk>"),
    "cls": ("[CLS]", "<s>", "<cls>", "<|endoftext|>"),
    "sep": ("[SEP]", "</s>", "<sep>", "<|endoftext|>"),
    "mask": ("[MASK]", "<mask>"),
}
REQUIRED_ROLES = ("pad", "cls", "sep", "mask")
HUB_PREFIX = "hf:"
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")  # "name" or "org/name", nothing else


@dataclass(frozen=True)
class TokenizerInfo:
    """A loaded fast tokenizer with the ids every batch builder needs and the hash the cache is keyed by."""

    tokenizer: Tokenizer
    vocab_size: int
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    unk_id: int | None
    special_ids: tuple[int, ...]
    sha256: str
    path: str


def train_tokenizer(texts: Iterable[str], vocab_size: int, output_dir: str | Path) -> Path:
    """Train an uncased WordPiece tokenizer on ``texts`` and save ``output_dir/tokenizer.json``.

    The same texts give the same file bytes in every process (see :func:`continuation_pieces`).
    """
    texts = list(texts)
    tokenizer = _bert_uncased(models.WordPiece(unk_token="[UNK]"))
    pinned = continuation_pieces(tokenizer, texts)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=[*SPECIAL_TOKENS, *pinned], show_progress=False
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # Rebuild around the learned vocabulary: the pinned pieces were special only to fix their ids in training.
    trained = _bert_uncased(canonical_wordpiece(tokenizer.get_vocab(with_added_tokens=False)))
    trained.add_special_tokens(list(SPECIAL_TOKENS))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "tokenizer.json"
    atomic_write_text(path, trained.to_str())
    return path


def _bert_uncased(model: models.Model) -> Tokenizer:
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()  # decode() joins ## pieces, as BERT's tokenizer does
    return tokenizer


def continuation_pieces(tokenizer: Tokenizer, texts: list[str]) -> list[str]:
    """``##c`` for every character c that occurs inside a word, in code-point order.

    Why: HF ``tokenizers``' WordPiece trainer (its BPE trainer underneath) gives each ``##c`` the next free id
    while iterating a Rust hash map whose seed is drawn per process, and breaks ties between equally frequent
    merges by those ids (lowest pair first). So two trainings on the same text picked different merges at
    tied counts (a different vocabulary on tie-heavy text) and numbered ids differently (65-67 of 2,000 ids
    permuted on the built-in corpus), whatever PYTHONHASHSEED, RAYON_NUM_THREADS or TOKENIZERS_PARALLELISM
    say. Registered up front (as trainer special tokens) these pieces get fixed ids, which makes every tie
    break, and hence the learned vocabulary, the same in every process. They are exactly the pieces the
    trainer would add itself, so the vocabulary budget is spent as before.
    """
    inner: set[str] = set()
    for text in texts:
        normalized = tokenizer.normalizer.normalize_str(text)
        for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized):
            inner.update(word[1:])
    return [f"##{char}" for char in sorted(inner)]


def canonical_wordpiece(vocab: dict[str, int]) -> models.WordPiece:
    """The WordPiece model of ``vocab`` with ids in one fixed order: special tokens 0-4, then code-point order.

    Why: the trainer numbers merged pieces in merge order; a fixed order makes the file independent of it.
    WordPiece encodes by greedy longest match over the vocabulary *set* (Wu et al., 2016), so re-numbering
    changes no segmentation.
    """
    specials = [token for token in SPECIAL_TOKENS if token in vocab]
    rest = sorted(token for token in vocab if token not in SPECIAL_TOKENS)
    ordered = {token: index for index, token in enumerate(specials + rest)}
    return models.WordPiece(ordered, unk_token="[UNK]", continuing_subword_prefix="##")


def load_tokenizer(path: str | Path) -> TokenizerInfo:
    """Load a ``tokenizer.json`` (or a transformers tokenizer directory holding one) for offline use."""
    path = Path(path).expanduser()
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise DataError(
            f"tokenizer not found: {file}; give a tokenizer.json or a directory containing one "
            "(run `python setup_tokenizer.py` to train one)"
        )
    raw = file.read_bytes()
    try:
        tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
    except Exception as exc:  # bad UTF-8, or the bare Exception tokenizers raises on bad JSON
        raise DataError(f"{file} is not a valid tokenizer.json: {str(exc).splitlines()[0]}") from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()
    ids = {role: find_special_token(tokenizer, role) for role in SPECIAL_TOKEN_ALIASES}
    missing = [role for role in REQUIRED_ROLES if ids[role] is None]
    if missing:
        wanted = ", ".join(SPECIAL_TOKEN_ALIASES[role][0] for role in missing)
        raise DataError(
            f"tokenizer {file} lacks the special token(s) {wanted}; MLM and CLM batches need "
            "[PAD] [CLS] [SEP] [MASK] (or <pad> <s> </s> <mask>)"
        )
    special = {ids[role] for role in ids if ids[role] is not None}
    special.update(_declared_special_ids(raw))
    return TokenizerInfo(
        tokenizer=tokenizer,
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        pad_id=ids["pad"],
        cls_id=ids["cls"],
        sep_id=ids["sep"],
        mask_id=ids["mask"],
        unk_id=ids["unk"],
        special_ids=tuple(sorted(special)),
        sha256=hashlib.sha256(raw).hexdigest(),
        path=str(file.resolve()),
    )


@contextlib.contextmanager
def _hub_logs_silenced() -> Iterator[None]:
    """The Hub client logs every retry of a failed request before it gives up (a Hub answering 5xx still gets
    retried; one that does not answer at all is caught before, mlmclm.data.hub); the failure becomes one error
    line here, so its warnings are held back while the tokenizer loads."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "transformers")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def fetch_hub_tokenizer(name: str, cache_dir: str | Path) -> Path:
    """Save the fast tokenizer of Hub model ``name`` as ``tokenizer.json`` under the cache (once) and return it.

    The only networked path of the tokenizer; later runs read the cached file and stay offline. When the Hub
    does not answer at all, the tokenizer comes from the local Hugging Face cache or the call fails at once
    (:mod:`mlmclm.data.hub`).
    """
    if not _HUB_NAME.match(name) or ".." in name:
        raise DataError(f"{HUB_PREFIX}{name} is not a Hugging Face Hub model name (expected NAME or ORG/NAME)")
    target = Path(cache_dir) / "tokenizers" / "hub" / name.replace("/", "--") / "tokenizer.json"
    if target.is_file():
        return target
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise DataError(f"--tokenizer {HUB_PREFIX}{name} needs transformers: pip install 'mlmclm[hf]'") from exc
    unreachable = hub_unreachable_reason(name)
    try:
        with _hub_logs_silenced():
            loaded = AutoTokenizer.from_pretrained(name, use_fast=True, local_files_only=unreachable is not None)
    except Exception as exc:  # network, missing repo, auth: one line with the library's reason
        if unreachable is not None:
            raise DataError(
                f"cannot load tokenizer {name!r}: the Hugging Face Hub could not be reached ({unreachable}) and "
                "the tokenizer is not in the local Hugging Face cache; connect once to download it, or set "
                "HF_HUB_OFFLINE=1 to use only the cache, or give a local tokenizer.json path"
            ) from exc
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot load tokenizer {name!r} from the Hugging Face Hub: {reason}") from exc
    backend = getattr(loaded, "backend_tokenizer", None)
    if backend is None:
        raise DataError(f"tokenizer {name!r} has no fast (tokenizers) version; mlmclm needs a tokenizer.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, backend.to_str())
    return target


def find_special_token(tokenizer: Tokenizer, role: str) -> int | None:
    """Id of the token playing ``role`` ("pad", "cls", ...) under its first spelling the tokenizer has."""
    for name in SPECIAL_TOKEN_ALIASES[role]:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return token_id
    return None


def _declared_special_ids(raw: bytes) -> set[int]:
    """Ids of the added tokens the tokenizer.json itself marks as special."""
    added = json.loads(raw).get("added_tokens") or []
    return {int(token["id"]) for token in added if token.get("special")}
