"""Fuzzed inputs never end in an unhandled exception: they work, or they end in one clear error.

Property-based tests (hypothesis) over the config loader, the command line and the corpus readers. The
property is the contract of mlmclm.errors: bad input raises a UserError (one ``error:`` line and exit code 2
at the CLI); anything else escaping is a bug.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mlmclm.cli as cli
from mlmclm.components import resolve_config
from mlmclm.config import DataConfig, ExperimentConfig
from mlmclm.data.corpus import load_corpus
from mlmclm.errors import ConfigError, DataError

# Derandomized so CI is reproducible; search wider locally with e.g. MLMCLM_FUZZ_EXAMPLES=2000.
FUZZ = settings(
    max_examples=int(os.environ.get("MLMCLM_FUZZ_EXAMPLES", "60")),
    derandomize="MLMCLM_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SECTION_KEYS = {name: list(getattr(ExperimentConfig(), name).__dataclass_fields__) for name in
                ("data", "model", "training", "statistics", "probes")}
TOP_KEYS = list(ExperimentConfig.__dataclass_fields__)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**60, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["mlm", "clm", "rope", "standard", "holm", "auto", "cpu", "1e-3", "nan", "-inf", "../x"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=10)
keys = st.one_of(st.sampled_from(TOP_KEYS), st.text(max_size=12), st.sampled_from(["ümlaut", "ключ", "🙂", ""]))


@st.composite
def config_documents(draw) -> dict:
    """Mostly-valid structure with wrong types, huge numbers and unicode keys mixed in."""
    document = {}
    for key in draw(st.lists(keys, max_size=5)):
        if key in SECTION_KEYS and draw(st.booleans()):
            names = st.one_of(st.sampled_from(SECTION_KEYS[key]), st.text(max_size=8))
            document[key] = draw(st.dictionaries(names, values, max_size=4))
        else:
            document[key] = draw(values)
    return document


def _load(path: Path):
    try:
        return resolve_config(path)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)  # one line
        return None


@FUZZ
@given(document=config_documents())
def test_random_config_documents_load_or_raise_a_one_line_config_error(document):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        config = _load(path)
    if config is not None:  # accepted: then every value is usable
        assert config.num_runs > 0 and all(math.isfinite(v) for v in (config.training.learning_rate,))


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
@example(text="[" * 5000)  # nested beyond the YAML composer's recursion limit
@example(text="a: &x [*x]\nseeds: &y [*y]")  # self-referencing aliases
@example(text="\ufeffnum_runs: 3")
@example(text="? [a, b]\n: 1")  # an unhashable key
def test_random_yaml_text_loads_or_raises_a_one_line_config_error(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _load(path)


def test_invalid_utf8_and_huge_numbers_are_config_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"num_runs: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve_config(path)
    path.write_text("training: {learning_rate: 1e999}\nnum_runs: 100000000000000000000000\n")
    with pytest.raises(ConfigError, match="finite number|below 2\\*\\*63"):
        resolve_config(path)


# ------------------------------------------------------------------------------------------- the CLI

FLAG_VALUES = {
    "--objectives": st.lists(st.sampled_from(["mlm", "clm", "both", "xlm", ""]), min_size=0, max_size=3),
    "--attention": st.lists(st.sampled_from(["standard", "rope", "alibi", "nope", "bogus"]), max_size=3),
    "--num-runs": st.integers(-3, 10**25).map(str),
    "--seeds": st.lists(st.integers(-5, 2**64).map(str), max_size=3),
    "--folds": st.integers(-1, 6).map(str),
    "--significance-level": st.floats(allow_nan=True).map(str),
    "--confidence-level": st.sampled_from(["0.9", "1.5", "nan", "x"]),
    "--correction": st.text(string.ascii_letters + "_", max_size=10),
    "--epochs": st.integers(-2, 5).map(str),
    "--max-steps": st.one_of(st.integers(-2, 5).map(str), st.just("1.5")),
    "--batch-size": st.integers(-2, 64).map(str),
    "--learning-rate": st.sampled_from(["1e-3", "0", "-1", "inf", "nan", "abc"]),
    "--mlm-strategy": st.sampled_from(["standard", "span", "whole_word", "nope"]),
    "--clm-strategy": st.sampled_from(["standard", "packed", "sliding_window", "x"]),
    "--max-seq-length": st.integers(-1, 2**70).map(str),
    "--device": st.sampled_from(["cpu", "auto", "tpu"]),
    "--experiment-name": st.sampled_from(["ok", "../../x", "a/b", ".hidden", "x" * 300, "名前", ""]),
    "--workers": st.integers(-1, 3).map(str),
    "--executor": st.sampled_from(["local", "dask"]),
    "--probe-mode": st.sampled_from(["linear", "finetune", "probe"]),
    "--config": st.sampled_from(["missing.yaml", "."]),
}
SWITCHES = ["--quick-test", "--cross-validation", "--gradient-checkpointing", "--mixed-precision", "--no-probes",
            "--resume", "--overwrite", "--quiet"]


@st.composite
def command_lines(draw) -> list[str]:
    argv = []
    for flag in draw(st.lists(st.sampled_from(list(FLAG_VALUES) + SWITCHES), max_size=6)):
        argv.append(flag)
        if flag in FLAG_VALUES:
            value = draw(FLAG_VALUES[flag])
            argv += value if isinstance(value, list) else [value]
    return argv


@FUZZ
@given(argv=command_lines())
@example(argv=["--experiment-name", "../../x"])
def test_random_flag_combinations_either_resolve_or_exit_2_with_one_error_line(argv, monkeypatch, capsys):
    """Everything up to training (parsing, layering, validation); the dry run's data step is stubbed out."""
    monkeypatch.setattr(cli, "_dry_run", lambda config: 0)
    try:
        code = cli.main(["train", *argv, "--dry-run"])
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert err.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in err
    names = [argv[i + 1] for i, flag in enumerate(argv[:-1]) if flag == "--experiment-name"]
    if names and names[-1] == "../../x":  # the last occurrence wins
        assert code == 2


# ---------------------------------------------------------------------------------------- corpus readers

SUFFIXES = [".txt", ".txt.gz", ".jsonl", ".json", ".csv", ".jsonl.gz", ".csv.gz", ".dat"]


def _read(path: Path, cache: Path, **data) -> None:
    try:
        corpus = load_corpus(DataConfig(path=str(path), cache_dir=str(cache), **data))
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert corpus.texts and all(len(text) >= DataConfig.min_document_chars for text in corpus.texts)


def _mixed_encodings(parts: list[tuple[str, str]]) -> bytes:
    return b"\n".join(text.encode(encoding, errors="replace") for text, encoding in parts)


contents = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
    st.lists(st.tuples(st.text(max_size=60), st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1252"])),
             max_size=6).map(_mixed_encodings),
    st.lists(st.dictionaries(st.sampled_from(["text", "body", ""]), values, max_size=3), max_size=5).map(
        lambda rows: "\n".join(json.dumps(row) for row in rows).encode()),
    values.map(lambda value: json.dumps(value).encode()),
)


@FUZZ
@given(content=contents, suffix=st.sampled_from(SUFFIXES), truncate=st.floats(0, 1))
@example(content=b"[" * 100_000, suffix=".json", truncate=1.0)
@example(content=b"{\"text\": " * 50_000, suffix=".jsonl", truncate=1.0)
@example(content=b"\n\n  \n\t\n", suffix=".txt", truncate=1.0)
@example(content=b"a,b\n\x00,1\n", suffix=".csv", truncate=1.0)
def test_random_corpus_files_are_read_or_refused_with_one_data_error(content, suffix, truncate, tmp_path):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"corpus{suffix}"
        data = gzip.compress(content) if suffix.endswith(".gz") and truncate < 0.5 else content
        path.write_bytes(data[: max(1, int(len(data) * truncate))] if truncate < 0.9 else data)
        _read(path, tmp_path / "cache")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("\n\n   \n\n", "has no usable documents"),
        ("one single document that is long enough to be kept\n", "too few documents to split"),
        (gzip.compress(b"a document line that is long enough\n" * 50)[:60], "not a readable gzip file"),
        ("caf\u00e9 line in utf-8\n".encode() + "na\u00efve line in latin-1\n".encode("latin-1"), "not valid UTF-8"),
    ],
    ids=["empty-lines", "one-document", "truncated-gzip", "mixed-encodings"],
)
def test_degenerate_corpora_end_the_cli_with_one_error_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / ("corpus.txt.gz" if message == "not a readable gzip file" else "corpus.txt")
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code = cli.main(["train", "--quick-test", "--dry-run", "--data", str(path), "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and message in err[-1]
