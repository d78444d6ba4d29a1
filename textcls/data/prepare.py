"""Clean, split and tokenize labelled texts into arrays the model trains on."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from textcls.data.datasets import DataError, LabelledTexts
from textcls.data.tokenize import Tokenizer
from textcls.variants.base import Splits

log = logging.getLogger(__name__)

# Each split needs enough texts of both classes for accuracy to mean anything.
MIN_TEXTS = 50
VALIDATION_SHARE = 0.1
TEST_SHARE = 0.1


@dataclass(frozen=True)
class PreparedData:
    splits: Splits
    tokenizer: Tokenizer
    test_texts: list[str]
    info: dict  # the fields of bench's DataInfo record


def clean(texts: list[str], labels: list[int]) -> tuple[list[str], list[int], int, int]:
    """Drop exact duplicates (after stripping) and texts that occur with both labels.

    Returns the kept texts and labels, the number of duplicates dropped and
    the number of conflicting texts dropped. Order of first occurrence is kept.
    """
    first_label: dict[str, int] = {}
    conflicting: set[str] = set()
    duplicates = 0
    for text, label in zip(texts, labels):
        key = text.strip()
        if key in first_label:
            duplicates += 1
            if first_label[key] != label:
                conflicting.add(key)
        else:
            first_label[key] = label
    kept = [(text, label) for text, label in first_label.items() if text not in conflicting]
    return [text for text, _ in kept], [label for _, label in kept], duplicates, len(conflicting)


def split_indices(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/validation/test indices, reproducible for a given seed."""
    rng = np.random.default_rng(seed)
    train, validation, test = [], [], []
    for label in (0, 1):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        n_test = max(1, round(len(members) * TEST_SHARE))
        n_validation = max(1, round(len(members) * VALIDATION_SHARE))
        test.append(members[:n_test])
        validation.append(members[n_test : n_test + n_validation])
        train.append(members[n_test + n_validation :])
    return tuple(np.sort(np.concatenate(parts)) for parts in (train, validation, test))


def prepare_data(
    data: LabelledTexts,
    *,
    seed: int,
    vocab_size: Optional[int] = None,
    seq_len: Optional[int] = None,
    limit: Optional[int] = None,
) -> PreparedData:
    """Clean, optionally subsample to ``limit`` texts, split, and tokenize.

    The tokenizer is fitted on the training split only, so test texts may
    contain unknown tokens, as at serving time.
    """
    texts, labels, duplicates, conflicting = clean(data.texts, data.labels)
    if limit is not None and len(texts) > limit:
        chosen = np.sort(np.random.default_rng(seed).choice(len(texts), size=limit, replace=False))
        texts = [texts[i] for i in chosen]
        labels = [labels[i] for i in chosen]
    label_array = np.asarray(labels, dtype=np.int32)
    counts = np.bincount(label_array, minlength=2)
    if len(texts) < MIN_TEXTS or counts.min() < 5:
        raise DataError(
            f"data set {data.name!r} has {len(texts)} usable texts ({counts[0]} negative, "
            f"{counts[1]} positive) after removing duplicates and conflicts; at least "
            f"{MIN_TEXTS}, with 5 of each class, are needed to split it"
        )

    train, validation, test = split_indices(label_array, seed)
    train_texts = [texts[i] for i in train]
    tokenizer = Tokenizer.fit(train_texts, vocab_size=vocab_size, seq_len=seq_len)

    def encode(indices: np.ndarray) -> np.ndarray:
        return tokenizer.encode([texts[i] for i in indices])

    splits = Splits(
        x_train=encode(train), y_train=label_array[train],
        x_val=encode(validation), y_val=label_array[validation],
        x_test=encode(test), y_test=label_array[test],
    )
    info = {
        "name": data.name,
        "source": data.source,
        "sha256": data.sha256,
        "language": "zh" if tokenizer.level == "char" else "en",
        "tokenizer": tokenizer.describe(),
        "rows_read": data.rows_read,
        "duplicates_dropped": duplicates,
        "conflicting_dropped": conflicting,
        "train": len(train),
        "validation": len(validation),
        "test": len(test),
        "positive_share": float(label_array.mean()),
        "vocab_size": tokenizer.vocab_size,
        "seq_len": tokenizer.seq_len,
        "truncated_share": tokenizer.truncated_share(train_texts),
    }
    log.info(
        "data %s: %d texts (%d duplicates, %d conflicting dropped), split %d/%d/%d, %s, "
        "%.1f%% of training texts truncated",
        data.name, len(texts), duplicates, conflicting, len(train), len(validation), len(test),
        tokenizer.describe(), 100 * info["truncated_share"],
    )
    return PreparedData(splits, tokenizer, [texts[i] for i in test], info)
