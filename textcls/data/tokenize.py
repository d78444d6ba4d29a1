"""Tokenize English by words and Chinese by characters; map tokens to ids.

Id 0 is padding and id 1 stands for tokens outside the vocabulary, so a
vocabulary of size V contains V - 2 real tokens. The module is pure Python,
so serving workers without TensorFlow can use it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

PAD_ID = 0
OOV_ID = 1

# CJK Unified Ideographs with extension A, and the compatibility block.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(f"[{_CJK}]")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
# At character level every CJK character is a token and runs of other letters
# or digits (product names, numbers) stay whole words.
_CHAR_LEVEL = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")

LEVELS = ("word", "char")


def detect_level(texts: Iterable[str], sample: int = 2000, threshold: float = 0.3) -> str:
    """Return "char" when CJK characters are at least ``threshold`` of the letters."""
    cjk = letters = 0
    for index, text in enumerate(texts):
        if index >= sample:
            break
        cjk += len(_CJK_CHAR.findall(text))
        letters += sum(1 for character in text if character.isalnum())
    return "char" if letters and cjk / letters >= threshold else "word"


def split_tokens(text: str, level: str) -> list[str]:
    pattern = _CHAR_LEVEL if level == "char" else _WORD
    # Typeset apostrophes (U+2019, as in "it’s") count as the ASCII one.
    return pattern.findall(text.lower().replace("\u2019", "'"))


@dataclass
class Tokenizer:
    level: str
    seq_len: int
    vocabulary: list[str] = field(default_factory=list)  # index i is id i + 2

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"tokenizer level must be one of {LEVELS}, got {self.level!r}")
        if self.seq_len < 1:
            raise ValueError(f"sequence length must be at least 1, got {self.seq_len}")
        self._ids = {token: index + 2 for index, token in enumerate(self.vocabulary)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary) + 2

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        *,
        level: str = "auto",
        vocab_size: int | None = None,
        seq_len: int | None = None,
        seq_len_percentile: float = 95.0,
    ) -> "Tokenizer":
        """Learn the vocabulary and, unless given, the sequence length from ``texts``.

        The default sequence length is the ``seq_len_percentile`` of token
        counts, so that a few very long texts do not set it. The default
        vocabulary keeps the 10,000 most frequent tokens, ties broken
        alphabetically so that a fit is reproducible.
        """
        if not texts:
            raise ValueError("cannot fit a tokenizer on no texts")
        if level == "auto":
            level = detect_level(texts)
        tokenized = [split_tokens(text, level) for text in texts]
        counts = Counter(token for tokens in tokenized for token in tokens)
        limit = (vocab_size if vocab_size is not None else 10_000) - 2
        if limit < 1:
            raise ValueError(f"vocabulary size must be at least 3, got {vocab_size}")
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        if seq_len is None:
            lengths = np.array([len(tokens) for tokens in tokenized])
            seq_len = max(1, int(math.ceil(np.percentile(lengths, seq_len_percentile))))
        return cls(level=level, seq_len=seq_len, vocabulary=[token for token, _ in ranked])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Return int32 ids of shape [len(texts), seq_len], truncated at the end, zero-padded after."""
        ids = np.zeros((len(texts), self.seq_len), dtype=np.int32)
        for row, text in enumerate(texts):
            tokens = split_tokens(text, self.level)[: self.seq_len]
            ids[row, : len(tokens)] = [self._ids.get(token, OOV_ID) for token in tokens]
        return ids

    def truncated_share(self, texts: Sequence[str]) -> float:
        """Share of ``texts`` with more tokens than ``seq_len``."""
        if not texts:
            return 0.0
        return sum(len(split_tokens(text, self.level)) > self.seq_len for text in texts) / len(texts)

    def describe(self) -> str:
        unit = "characters (CJK) and words" if self.level == "char" else "lowercase words"
        return f"{unit}, vocabulary {self.vocab_size}, length {self.seq_len}"

    def to_json(self) -> str:
        return json.dumps(
            {"level": self.level, "seq_len": self.seq_len, "vocabulary": self.vocabulary},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> "Tokenizer":
        payload = json.loads(text)
        return cls(level=payload["level"], seq_len=payload["seq_len"], vocabulary=payload["vocabulary"])
