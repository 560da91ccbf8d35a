"""Raw document readers: one generator per corpus format, streaming records so large corpora fit in memory.

A source yields raw document strings in file order; cleaning, deduplication and counting happen in
:mod:`mlmclm.data.corpus`. Every unreadable input ends in a one-line :class:`DataError`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from mlmclm.config import FORMATS_BY_SUFFIX
from mlmclm.data.hub import datasets_offline, hub_unreachable_reason
from mlmclm.errors import DataError


def detect_format(path: Path, declared: str) -> str:
    """The corpus format: ``declared`` unless it is "auto", else from the suffix (``.gz`` stripped)."""
    if declared != "auto":
        return declared
    if path.is_dir():
        return "txt"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = FORMATS_BY_SUFFIX.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise DataError(
            f"cannot tell the format of {path} from its extension; use one of "
            f"{', '.join(sorted(FORMATS_BY_SUFFIX))} (optionally .gz), a directory of .txt files, "
            "or set data.format"
        )
    return fmt


def iter_raw_documents(path_spec: str, fmt: str, text_field: str, separator: str) -> Iterator[str]:
    """Yield raw documents from ``path_spec`` (a file, a directory of .txt files, or ``hf:name[:config]``)."""
    if path_spec.startswith("hf:") or fmt == "hf":
        yield from _hf_documents(path_spec.removeprefix("hf:"), text_field)
        return
    path = Path(path_spec).expanduser()
    if not path.exists():
        raise DataError(
            f"data.path {path} does not exist; give a corpus file or directory, or omit data.path "
            "for the built-in standard-library documentation corpus"
        )
    fmt = detect_format(path, fmt)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith((".txt", ".txt.gz"))
        )
        if not files:
            raise DataError(f"directory {path} contains no .txt or .txt.gz files")
        for file in files:
            yield from _guarded(file, lambda f: _text_documents(f, separator))
        return
    readers: dict[str, Callable[[IO[str]], Iterator[str]]] = {
        "txt": lambda f: _text_documents(f, separator),
        "jsonl": lambda f: _jsonl_documents(f, text_field, path),
        "json": lambda f: _json_documents(f, text_field, path),
        "csv": lambda f: _csv_documents(f, text_field, path),
    }
    if fmt == "parquet":
        yield from _parquet_documents(path, text_field)
    else:
        yield from _guarded(path, readers[fmt])


def _guarded(path: Path, reader: Callable[[IO[str]], Iterator[str]]) -> Iterator[str]:
    """Open ``path`` (gzip when it ends in .gz) as strict UTF-8 and turn decoding failures into DataError.

    ``utf-8-sig`` drops a leading byte-order mark (Excel and Notepad write one), which would otherwise end
    up in the first document or the first CSV column name.
    """
    try:
        if path.name.lower().endswith(".gz"):
            handle: IO[str] = gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        else:
            handle = open(path, encoding="utf-8-sig", newline="")
        with handle:
            for document in reader(handle):
                if "\x00" in document:
                    raise DataError(f"{path} contains NUL bytes; it looks like a binary file, not text")
                yield document
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not valid UTF-8 (byte {exc.start} of a decoded chunk: {exc.reason}); "
            "re-encode it as UTF-8"
        ) from exc
    except (gzip.BadGzipFile, EOFError) as exc:
        raise DataError(f"{path} is not a readable gzip file: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def _text_documents(handle: IO[str], separator: str) -> Iterator[str]:
    """Documents of a text file: one per ``line``, per ``blank_line`` block, or between separator lines.

    Any other ``separator`` is the text of the lines that end a document, compared after stripping the
    line's whitespace: ``%`` reads the fortune(6) format. Blank lines inside such a document are kept, and
    a block with no text (two separators in a row, a separator at the end) is no document.
    """
    if separator == "line":
        yield from handle
        return
    block: list[str] = []
    for line in handle:
        ends_document = not line.strip() if separator == "blank_line" else line.strip() == separator
        if not ends_document:
            block.append(line)
        elif any(part.strip() for part in block):
            yield "".join(block)
            block = []
        else:
            block = []
    if any(part.strip() for part in block):
        yield "".join(block)


def _field(record: object, text_field: str, where: str) -> str:
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        raise DataError(
            f"{where}: expected an object with a {text_field!r} field, got {type(record).__name__}"
        )
    if text_field not in record:
        keys = ", ".join(map(str, list(record)[:10]))
        raise DataError(f"{where}: no field {text_field!r} (fields: {keys}); set data.text_field")
    value = record[text_field]
    if not isinstance(value, str):
        raise DataError(f"{where}: field {text_field!r} must be a string, got {type(value).__name__}")
    return value


def _jsonl_documents(handle: IO[str], text_field: str, path: Path) -> Iterator[str]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {number}: invalid JSON ({exc.msg})") from exc
        except RecursionError as exc:
            raise DataError(f"{path} line {number}: JSON nested too deeply to be a record") from exc
        yield _field(record, text_field, f"{path} line {number}")


def _json_documents(handle: IO[str], text_field: str, path: Path) -> Iterator[str]:
    """A JSON array of records (or strings); JSON cannot be streamed, so use .jsonl for very large corpora."""
    try:
        records = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno} ({exc.msg})") from exc
    except RecursionError as exc:
        raise DataError(f"{path}: JSON nested too deeply to be a list of records") from exc
    if isinstance(records, dict) and isinstance(records.get("data"), list):
        records = records["data"]
    if not isinstance(records, list):
        raise DataError(f"{path}: expected a JSON array of records, got {type(records).__name__}")
    for number, record in enumerate(records):
        yield _field(record, text_field, f"{path} record {number}")


def _csv_documents(handle: IO[str], text_field: str, path: Path) -> Iterator[str]:
    csv.field_size_limit(sys.maxsize)
    try:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or text_field not in reader.fieldnames:
            columns = ", ".join(reader.fieldnames or [])
            raise DataError(
                f"{path}: no column {text_field!r} (columns: {columns or 'none'}); set data.text_field"
            )
        for row in reader:
            yield row[text_field] or ""
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from exc


def _parquet_documents(path: Path, text_field: str) -> Iterator[str]:
    try:
        parquet = importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise DataError(
            "reading .parquet needs pyarrow; install it with `pip install mlmclm[parquet]`"
        ) from exc
    try:
        file = parquet.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid hierarchy
        raise DataError(f"{path} is not a readable parquet file: {str(exc).splitlines()[0]}") from exc
    names = file.schema_arrow.names
    if text_field not in names:
        raise DataError(
            f"{path}: no column {text_field!r} (columns: {', '.join(names)}); set data.text_field"
        )
    row = 0
    for batch in file.iter_batches(columns=[text_field], batch_size=4096):
        for value in batch.column(0).to_pylist():
            yield _text_value(value, text_field, f"{path} row {row}")
            row += 1


def _hf_documents(spec: str, text_field: str) -> Iterator[str]:
    """A Hugging Face dataset (from the local cache when offline); all of its splits, in split-name order."""
    try:
        datasets = importlib.import_module("datasets")
    except ImportError as exc:
        raise DataError("data.path 'hf:...' needs the datasets package; `pip install mlmclm[hf]`") from exc
    name, _, config = spec.partition(":")
    if not name:
        raise DataError("data.path 'hf:' needs a dataset name, e.g. hf:wikitext:wikitext-2-raw-v1")
    unreachable = hub_unreachable_reason(name, repo_type="dataset")
    try:
        with datasets_offline(datasets) if unreachable is not None else contextlib.nullcontext():
            loaded = datasets.load_dataset(name, config or None)
    except Exception as exc:  # datasets raises many unrelated types for a missing or unreachable dataset
        if unreachable is not None:
            raise DataError(
                f"cannot load Hugging Face dataset {spec!r}: the Hugging Face Hub could not be reached "
                f"({unreachable}) and the dataset is not in the local datasets cache; connect once to download "
                "it, or set HF_HUB_OFFLINE=1 to use only the cache, or give a local corpus file"
            ) from exc
        raise DataError(f"cannot load Hugging Face dataset {spec!r}: {str(exc).splitlines()[0]}") from exc
    for split in sorted(loaded):
        columns = loaded[split].column_names
        if text_field not in columns:
            raise DataError(
                f"dataset {spec!r} split {split!r} has no column {text_field!r} "
                f"(columns: {', '.join(columns)}); set data.text_field"
            )
        for row, value in enumerate(loaded[split][text_field]):
            yield _text_value(value, text_field, f"dataset {spec!r} split {split!r} row {row}")


def _text_value(value: object, text_field: str, where: str) -> str:
    """A column cell as text: a missing value is an empty document, any other non-string an error."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(
            f"{where}: column {text_field!r} must hold strings, got {type(value).__name__}; "
            "set data.text_field to a text column"
        )
    return value
