"""Tokenization of English and Chinese text, vocabulary and id encoding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textcls.data import Tokenizer, load_texts
from textcls.data.tokenize import OOV_ID, PAD_ID, detect_level, split_tokens


@pytest.fixture(scope="module")
def english_texts() -> list[str]:
    return load_texts("rotten-tomatoes").texts[:500]


@pytest.fixture(scope="module")
def chinese_texts() -> list[str]:
    return load_texts("chinese-reviews").texts[:500]


# --- split_tokens ----------------------------------------------------------------


def test_word_tokens_lowercase():
    assert split_tokens("A Three-Hour CINEMA class.", "word") == ["a", "three", "hour", "cinema", "class"]


def test_word_tokens_keep_apostrophe():
    assert split_tokens("Don't say it's over", "word") == ["don't", "say", "it's", "over"]


def test_word_tokens_curly_apostrophe():
    # The built-in English reviews spell "it's" both ways, and both spellings must give one token.
    assert split_tokens("It\u2019s fine", "word") == split_tokens("It's fine", "word")


def test_word_tokens_strip_quotes():
    assert split_tokens("'quoted' students'", "word") == ["quoted", "students"]


def test_word_tokens_split_underscore_and_punctuation():
    assert split_tokens("snake_case, 3D-printing!", "word") == ["snake", "case", "3d", "printing"]


def test_word_tokens_accented_letters():
    assert split_tokens("Café Amélie", "word") == ["café", "amélie"]


def test_word_tokens_empty_text():
    assert split_tokens("  ...  ", "word") == []


def test_char_tokens_each_cjk_character():
    assert split_tokens("质量还不错", "char") == ["质", "量", "还", "不", "错"]


def test_char_tokens_latin_words_whole():
    assert split_tokens("我爱iPhone 12，很好!", "char") == ["我", "爱", "iphone", "12", "很", "好"]


def test_char_tokens_drop_cjk_punctuation():
    assert split_tokens("好。好！", "char") == ["好", "好"]


def test_char_tokens_extension_a_character():
    # U+3400 is the first character of CJK Unified Ideographs Extension A.
    assert split_tokens("\u3400a", "char") == ["\u3400", "a"]


# --- detect_level ----------------------------------------------------------------


def test_detect_level_english_data(english_texts):
    assert detect_level(english_texts) == "word"


def test_detect_level_chinese_data(chinese_texts):
    assert detect_level(chinese_texts) == "char"


def test_detect_level_below_threshold():
    # One CJK character among four letters or digits: 25 %, under the 30 % threshold.
    assert detect_level(["abc 中"]) == "word"


def test_detect_level_at_threshold():
    # One CJK character among three: 33 %.
    assert detect_level(["ab 中"]) == "char"


def test_detect_level_no_letters():
    assert detect_level(["!!!", ""]) == "word"


def test_detect_level_reads_only_sample():
    texts = ["english words only"] * 3 + ["中文"] * 100

    assert detect_level(texts, sample=3) == "word"


def test_fit_auto_level_chinese(chinese_texts):
    assert Tokenizer.fit(chinese_texts).level == "char"


def test_fit_auto_level_english(english_texts):
    assert Tokenizer.fit(english_texts).level == "word"


# --- vocabulary and ids --------------------------------------------------------------


def test_vocabulary_frequency_then_alphabetical():
    # Counts: a 3, b 2, c 2, d 1.
    tokenizer = Tokenizer.fit(["c a b", "a c", "d b a"], level="word")

    assert tokenizer.vocabulary == ["a", "b", "c", "d"]


def test_vocabulary_size_limit_keeps_top():
    tokenizer = Tokenizer.fit(["c a b", "a c", "d b a"], level="word", vocab_size=4)

    assert tokenizer.vocabulary == ["a", "b"]
    assert tokenizer.vocab_size == 4


def test_vocabulary_size_counts_reserved_ids():
    tokenizer = Tokenizer.fit(["x y z"], level="word")

    assert tokenizer.vocab_size == 3 + 2


def test_vocabulary_fit_reproducible(english_texts):
    first = Tokenizer.fit(english_texts, vocab_size=300)
    second = Tokenizer.fit(list(reversed(english_texts)), vocab_size=300)

    assert first.vocabulary == second.vocabulary


def test_vocabulary_real_data_most_frequent(english_texts):
    tokenizer = Tokenizer.fit(english_texts)

    assert tokenizer.vocabulary[0] == "the"
    assert len(set(tokenizer.vocabulary)) == len(tokenizer.vocabulary)


def test_reserved_ids():
    assert PAD_ID == 0
    assert OOV_ID == 1


def test_encode_ids_from_two():
    tokenizer = Tokenizer(level="word", seq_len=5, vocabulary=["a", "b"])

    assert tokenizer.encode(["b a"]).tolist() == [[3, 2, 0, 0, 0]]


def test_encode_unknown_token_oov():
    tokenizer = Tokenizer(level="word", seq_len=3, vocabulary=["a"])

    assert tokenizer.encode(["a zebra a"]).tolist() == [[2, OOV_ID, 2]]


def test_encode_truncates_at_end():
    tokenizer = Tokenizer(level="word", seq_len=2, vocabulary=["a", "b", "c"])

    assert tokenizer.encode(["a b c"]).tolist() == [[2, 3]]


def test_encode_empty_text_all_padding():
    tokenizer = Tokenizer(level="word", seq_len=3, vocabulary=["a"])

    assert tokenizer.encode([""]).tolist() == [[PAD_ID] * 3]


def test_encode_shape_and_dtype():
    tokenizer = Tokenizer(level="word", seq_len=4, vocabulary=["a"])
    ids = tokenizer.encode(["a", "a a a a a a", "b"])

    assert ids.shape == (3, 4)
    assert ids.dtype == np.int32


def test_encode_no_texts():
    tokenizer = Tokenizer(level="word", seq_len=4, vocabulary=["a"])

    assert tokenizer.encode([]).shape == (0, 4)


def test_encode_chinese_characters():
    tokenizer = Tokenizer(level="char", seq_len=4, vocabulary=["好", "很"])

    assert tokenizer.encode(["很好吗"]).tolist() == [[3, 2, OOV_ID, PAD_ID]]


def test_encode_real_data_ids_in_range(chinese_texts):
    tokenizer = Tokenizer.fit(chinese_texts, vocab_size=200)
    ids = tokenizer.encode(chinese_texts)

    assert ids.min() >= 0
    assert ids.max() < tokenizer.vocab_size


# --- sequence length ------------------------------------------------------------------


def texts_with_lengths(lengths) -> list[str]:
    return [" ".join(["w"] * length) for length in lengths]


def test_seq_len_95th_percentile_rounded_up():
    # Lengths 1..20: the 95th percentile sits at position 0.95 * 19 = 18.05, value 19.05.
    tokenizer = Tokenizer.fit(texts_with_lengths(range(1, 21)), level="word")

    assert tokenizer.seq_len == 20


def test_seq_len_whole_percentile_kept():
    # Lengths 1..21: position 0.95 * 20 = 19 falls on the value 20 exactly.
    tokenizer = Tokenizer.fit(texts_with_lengths(range(1, 22)), level="word")

    assert tokenizer.seq_len == 20


def test_seq_len_custom_percentile():
    tokenizer = Tokenizer.fit(texts_with_lengths(range(1, 22)), level="word", seq_len_percentile=50)

    assert tokenizer.seq_len == 11


def test_seq_len_at_least_one():
    assert Tokenizer.fit(["...", "!!"], level="word").seq_len == 1


def test_seq_len_given_overrides():
    assert Tokenizer.fit(texts_with_lengths(range(1, 22)), level="word", seq_len=7).seq_len == 7


def test_truncated_share():
    tokenizer = Tokenizer(level="word", seq_len=2, vocabulary=[])

    assert tokenizer.truncated_share(texts_with_lengths([1, 2, 3, 4])) == 0.5


def test_truncated_share_no_texts():
    assert Tokenizer(level="word", seq_len=2).truncated_share([]) == 0.0


def test_truncated_share_default_about_five_percent(english_texts):
    # With the default 95th percentile at most 5 % of the fitted texts are longer.
    tokenizer = Tokenizer.fit(english_texts)

    assert tokenizer.truncated_share(english_texts) <= 0.05


# --- validation -------------------------------------------------------------------------


def test_unknown_level_raises():
    with pytest.raises(ValueError, match="'syllable'"):
        Tokenizer(level="syllable", seq_len=4)


def test_zero_seq_len_raises():
    with pytest.raises(ValueError, match="got 0"):
        Tokenizer(level="word", seq_len=0)


def test_fit_vocab_size_two_raises():
    with pytest.raises(ValueError, match="got 2"):
        Tokenizer.fit(["a b"], vocab_size=2)


def test_fit_no_texts_raises():
    with pytest.raises(ValueError, match="no texts"):
        Tokenizer.fit([])


# --- JSON ---------------------------------------------------------------------------------


def test_json_round_trip(chinese_texts):
    tokenizer = Tokenizer.fit(chinese_texts, vocab_size=300)
    restored = Tokenizer.from_json(tokenizer.to_json())

    assert restored == tokenizer
    assert np.array_equal(restored.encode(chinese_texts[:20]), tokenizer.encode(chinese_texts[:20]))


def test_json_keeps_chinese_unescaped():
    tokenizer = Tokenizer(level="char", seq_len=2, vocabulary=["好"])

    assert "好" in tokenizer.to_json()


def test_json_fields():
    payload = json.loads(Tokenizer(level="word", seq_len=3, vocabulary=["a"]).to_json())

    assert payload == {"level": "word", "seq_len": 3, "vocabulary": ["a"]}


def test_describe_word_level():
    assert Tokenizer(level="word", seq_len=34, vocabulary=["a"]).describe() == "lowercase words, vocabulary 3, length 34"
