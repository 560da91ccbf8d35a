"""User probe tasks from JSON Lines files (``--probe-data FILE.jsonl``), in the ``text``/``label`` convention.

One JSON object per line with ``text`` (string), ``label`` (string or integer), optionally ``text_pair``
(string, for pair tasks) or ``contrast`` (string, for contrast pairs: the probe reads the difference of the
two sentences' features, see ``ProbeExample.contrast``) and optionally ``group`` (string or integer: the
source document, speaker, ...); an optional field given in one row must be given in every row. Blank lines
are ignored. The task is named after the file stem, and the train/test probe split is stratified and fixed
by ``probes.seed``. With
``group`` the split is by group (no group feeds both splits), as for the generated tasks; without it rows
are taken as independent and split one by one, except contrast rows, which are grouped by their unordered
pair (a pair given in both orders stays in one split). Repeated inputs are kept once, so no input is in both the
probe's train and test split.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mlmclm.errors import DataError
from mlmclm.probes.examples import (
    MIN_EXAMPLES_PER_LABEL,
    ProbeExample,
    ProbeTask,
    stratified_group_split,
    stratified_split,
    task_rng,
)

if TYPE_CHECKING:
    from mlmclm.config import ProbeConfig

logger = logging.getLogger(__name__)
_UNSAFE_NAME_CHARS = re.compile(r"[^a-z0-9_]+")


def task_name_from_path(path: str | Path) -> str:
    """The metric-safe task name of a probe file: its stem in lower case, other characters turned into '_'."""
    name = _UNSAFE_NAME_CHARS.sub("_", Path(path).stem.casefold()).strip("_")
    return name or "user_task"


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(f"probe data file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read probe data file {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"probe data file {path} is not UTF-8 (line {line}, byte {exc.start}); save it as UTF-8"
        ) from exc
    rows = []
    # split on "\n" only: splitlines() would also break at U+2028, which JSON strings may contain
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"probe data file {path} line {number}: invalid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(
                f"probe data file {path} line {number}: expected a JSON object, got {type(row).__name__}"
            )
        _check_row(row, path, number)
        rows.append({**row, "_line": number})
    return rows


def _unique_rows(rows: list[dict], path: Path) -> list[dict]:
    """Drop repeated (text, text_pair) rows so no input sits in both probe splits; conflicting labels are
    an error, since no probe can score them."""
    first: dict[tuple, dict] = {}
    for row in rows:
        key = (row["text"], row.get("text_pair"), row.get("contrast"))
        kept = first.setdefault(key, row)
        if str(kept["label"]) != str(row["label"]):
            raise DataError(
                f"probe data file {path}: the same text has labels {kept['label']!r} and {row['label']!r} "
                f"(lines {kept['_line']} and {row['_line']}); remove or fix one"
            )
    if len(first) < len(rows):
        logger.warning("probe data file %s: %d duplicate rows dropped", path, len(rows) - len(first))
    return list(first.values())


def _group(row: dict) -> str | None:
    """The row's split group: the user's ``group`` (integers compared as text, like labels); for a contrast
    row without one, its unordered pair, so a pair and its reversed twin (features negated, label flipped)
    never sit in both splits, where the test row would be answered by the train row."""
    if "group" in row:
        return str(row["group"])
    if "contrast" in row:
        return json.dumps(sorted((row["text"], row["contrast"])))
    return None


def _check_row(row: dict, path: Path, number: int) -> None:
    for key in ("text", "label"):
        if key not in row:
            raise DataError(
                f"probe data file {path} line {number}: missing field {key!r} (need 'text' and 'label')"
            )
    for key in ("text", "text_pair", "contrast"):
        if key in row and (not isinstance(row[key], str) or not row[key].strip()):
            raise DataError(f"probe data file {path} line {number}: {key!r} must be a non-empty string")
    for key in ("label", "group"):
        if key in row and (isinstance(row[key], bool) or not isinstance(row[key], (str, int))):
            raise DataError(f"probe data file {path} line {number}: {key!r} must be a string or an integer")
    if "text_pair" in row and "contrast" in row:
        raise DataError(f"probe data file {path} line {number}: give 'text_pair' or 'contrast', not both")
    if isinstance(row.get("group"), str) and not row["group"].strip():
        raise DataError(f"probe data file {path} line {number}: 'group' must not be empty")


def load_user_probe_task(path: str | Path, probe_cfg: ProbeConfig | None = None) -> ProbeTask:
    """Read a probe task from ``path`` and split it; any problem with the file is a one-line DataError.

    Labels are kept as given (integers are compared as text) and ordered by their sorted text.
    ``probe_cfg`` supplies ``test_fraction`` and ``seed`` (defaults of :class:`ProbeConfig` when omitted).
    """
    if probe_cfg is None:
        from mlmclm.config import ProbeConfig

        probe_cfg = ProbeConfig()
    path = Path(path)
    rows = _unique_rows(_read_rows(path), path)
    for key in ("text_pair", "contrast", "group"):
        with_key = sum(key in row for row in rows)
        if 0 < with_key < len(rows):
            raise DataError(
                f"probe data file {path}: {with_key} of {len(rows)} rows have {key!r}; "
                "give it in all rows or in none"
            )
    label_names = sorted({str(row["label"]) for row in rows})
    if len(label_names) < 2:
        raise DataError(f"probe data file {path}: needs at least 2 distinct labels, found {label_names}")
    counts = {name: 0 for name in label_names}
    for row in rows:
        counts[str(row["label"])] += 1
    rare = {name: count for name, count in counts.items() if count < MIN_EXAMPLES_PER_LABEL}
    if rare:
        raise DataError(
            f"probe data file {path}: every label needs at least {MIN_EXAMPLES_PER_LABEL} rows "
            f"(to fill the train and test probe splits), but these have fewer: {rare}"
        )
    index = {name: i for i, name in enumerate(label_names)}
    examples = [
        ProbeExample(row["text"], index[str(row["label"])], row.get("text_pair"), group=_group(row),
                     contrast=row.get("contrast"))
        for row in rows
    ]
    name = task_name_from_path(path)
    rng = task_rng(probe_cfg.seed, name)
    if examples[0].group is not None:  # a field given in one row is given in every row
        train, test = stratified_group_split(examples, probe_cfg.test_fraction, rng, name, label_names)
    else:
        train, test = stratified_split(examples, probe_cfg.test_fraction, rng)
    return ProbeTask(name=name, label_names=label_names, train=train, test=test)
