"""Data sets: packaged corpora or the user's own files, cleaned, split and tokenized."""

from textcls.data.datasets import BUILTIN_DATASETS, DataError, LabelledTexts, load_texts
from textcls.data.prepare import PreparedData, prepare_data
from textcls.data.tokenize import Tokenizer

__all__ = [
    "BUILTIN_DATASETS",
    "DataError",
    "LabelledTexts",
    "PreparedData",
    "Tokenizer",
    "load_texts",
    "prepare_data",
]
