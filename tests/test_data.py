"""Loading the built-in corpora and user files, cleaning, splitting and tokenizing them."""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.results import DataInfo
from textcls.data import DataError, LabelledTexts, load_texts, prepare_data
from textcls.data.prepare import MIN_TEXTS, clean, split_indices

# --- built-in corpora ----------------------------------------------------------------


@pytest.fixture(scope="module")
def rotten_tomatoes() -> LabelledTexts:
    return load_texts("rotten-tomatoes")


@pytest.fixture(scope="module")
def chinese_reviews() -> LabelledTexts:
    return load_texts("chinese-reviews")


def test_rotten_tomatoes_size(rotten_tomatoes):
    assert 12_000 < len(rotten_tomatoes.texts) < 13_500
    assert len(rotten_tomatoes.labels) == len(rotten_tomatoes.texts)


def test_rotten_tomatoes_both_classes(rotten_tomatoes):
    counts = Counter(rotten_tomatoes.labels)

    assert set(counts) == {0, 1}
    assert 0.4 < counts[1] / len(rotten_tomatoes.labels) < 0.7


def test_rotten_tomatoes_skips_plot_rows(rotten_tomatoes):
    # Count the categories in the cached file itself, because only fresh and rotten rows are reviews.
    raw = bz2.decompress(Path(rotten_tomatoes.source).read_bytes()).decode("utf-8")
    categories = Counter(row["category"] for row in csv.DictReader(io.StringIO(raw)))

    assert categories["plot"] > 0
    assert len(rotten_tomatoes.texts) == categories["fresh"] + categories["rotten"]
    assert sum(rotten_tomatoes.labels) == categories["fresh"]
    assert rotten_tomatoes.rows_read == sum(categories.values())


def test_rotten_tomatoes_sha256(rotten_tomatoes):
    expected = hashlib.sha256(Path(rotten_tomatoes.source).read_bytes()).hexdigest()

    assert rotten_tomatoes.sha256 == expected


def test_chinese_reviews_both_classes(chinese_reviews):
    counts = Counter(chinese_reviews.labels)

    assert counts[0] > 10_000
    assert counts[1] > 10_000


def test_chinese_reviews_no_blank_texts(chinese_reviews):
    assert all(text.strip() for text in chinese_reviews.texts)


def test_chinese_reviews_name(chinese_reviews):
    assert chinese_reviews.name == "chinese-reviews"


# --- clean and split_indices ------------------------------------------------------------


def test_clean_counts_duplicates():
    _, _, duplicates, _ = clean(["a", " a", "b", "b", "c", "b"], [1, 1, 0, 1, 0, 0])

    assert duplicates == 3


def test_clean_drops_conflicting_texts():
    texts, labels, _, conflicting = clean(["a", " a", "b", "b", "c", "b"], [1, 1, 0, 1, 0, 0])

    assert conflicting == 1
    assert texts == ["a", "c"]
    assert labels == [1, 0]


def test_clean_keeps_first_occurrence_order():
    texts, _, _, _ = clean(["z", "y", "z", "x"], [1, 0, 1, 0])

    assert texts == ["z", "y", "x"]


def test_split_indices_partition():
    labels = np.array([1] * 100 + [0] * 60)
    train, validation, test = split_indices(labels, seed=0)
    combined = np.concatenate([train, validation, test])

    assert sorted(combined.tolist()) == list(range(160))


def test_split_indices_stratified():
    labels = np.array([1] * 100 + [0] * 60)
    train, validation, test = split_indices(labels, seed=0)

    assert int(labels[test].sum()) == 10
    assert len(test) == 16
    assert int(labels[validation].sum()) == 10
    assert len(validation) == 16
    assert len(train) == 128


def test_split_indices_small_class_keeps_one_each():
    labels = np.array([1] * 60 + [0] * 5)
    _, validation, test = split_indices(labels, seed=0)

    assert int((labels[test] == 0).sum()) == 1
    assert int((labels[validation] == 0).sum()) == 1


# --- prepare_data ---------------------------------------------------------------------------


def labelled(texts: list[str], labels: list[int], name: str = "synthetic") -> LabelledTexts:
    return LabelledTexts(name, "memory", "0" * 64, texts, labels, len(texts))


def synthetic(positive: int = 100, negative: int = 60) -> LabelledTexts:
    """Texts that each contain one token of their own ("uniqN") and a class word."""
    texts = [f"uniq{index} good film" for index in range(positive)]
    texts += [f"uniq{positive + index} bad film" for index in range(negative)]
    return labelled(texts, [1] * positive + [0] * negative)


def test_prepare_split_sizes():
    prepared = prepare_data(synthetic(), seed=0)

    assert prepared.info["train"] == 128
    assert prepared.info["validation"] == 16
    assert prepared.info["test"] == 16


def test_prepare_stratified_test_labels():
    prepared = prepare_data(synthetic(), seed=0)

    assert int(prepared.splits.y_test.sum()) == 10
    assert int(prepared.splits.y_val.sum()) == 10


def test_prepare_array_shapes_and_dtypes():
    prepared = prepare_data(synthetic(), seed=0)
    splits = prepared.splits

    assert splits.x_train.shape == (128, prepared.tokenizer.seq_len)
    assert splits.x_train.dtype == np.int32
    assert splits.y_train.dtype == np.int32
    assert splits.x_test.shape[0] == len(prepared.test_texts)


def test_prepare_test_texts_match_labels():
    prepared = prepare_data(synthetic(), seed=0)
    positive = ["good" in text for text in prepared.test_texts]

    assert positive == prepared.splits.y_test.astype(bool).tolist()


def test_prepare_same_seed_identical():
    first = prepare_data(synthetic(), seed=3)
    second = prepare_data(synthetic(), seed=3)

    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert np.array_equal(getattr(first.splits, name), getattr(second.splits, name)), name
    assert first.test_texts == second.test_texts


def test_prepare_other_seed_differs():
    first = prepare_data(synthetic(), seed=3)
    second = prepare_data(synthetic(), seed=4)

    assert first.test_texts != second.test_texts


def test_prepare_tokenizer_fitted_on_train_only():
    prepared = prepare_data(synthetic(), seed=0)
    vocabulary = set(prepared.tokenizer.vocabulary)
    test_tokens = {text.split()[0] for text in prepared.test_texts}

    assert not test_tokens & vocabulary
    assert sum(token.startswith("uniq") for token in vocabulary) == prepared.info["train"]


def test_prepare_test_texts_encode_unknown():
    prepared = prepare_data(synthetic(), seed=0)

    # The first token of every test text ("uniqN") was never seen in training.
    assert (prepared.splits.x_test[:, 0] == 1).all()


def test_prepare_counts_duplicates_and_conflicts():
    data = synthetic()
    texts = data.texts + [data.texts[0], data.texts[1], "both ways", "both ways"]
    labels = data.labels + [1, 1, 1, 0]
    prepared = prepare_data(labelled(texts, labels), seed=0)

    assert prepared.info["duplicates_dropped"] == 3
    assert prepared.info["conflicting_dropped"] == 1
    assert prepared.info["train"] + prepared.info["validation"] + prepared.info["test"] == 160


def test_prepare_limit():
    prepared = prepare_data(synthetic(200, 200), seed=0, limit=100)
    info = prepared.info

    assert info["train"] + info["validation"] + info["test"] == 100


def test_prepare_limit_above_size_ignored():
    prepared = prepare_data(synthetic(), seed=0, limit=10_000)
    info = prepared.info

    assert info["train"] + info["validation"] + info["test"] == 160


def test_prepare_vocab_and_seq_len_given():
    prepared = prepare_data(synthetic(), seed=0, vocab_size=10, seq_len=2)

    assert prepared.info["vocab_size"] == 10
    assert prepared.splits.x_train.shape[1] == 2


def test_prepare_info_fits_data_info():
    info = prepare_data(synthetic(), seed=0).info

    assert DataInfo(**info).positive_share == pytest.approx(100 / 160)


def test_prepare_too_few_texts_raises():
    with pytest.raises(DataError, match=f"at least {MIN_TEXTS}"):
        prepare_data(synthetic(20, 20), seed=0)


def test_prepare_too_few_of_one_class_raises():
    with pytest.raises(DataError, match="4 negative"):
        prepare_data(synthetic(100, 4), seed=0)


def test_prepare_limit_too_small_raises():
    with pytest.raises(DataError, match="10 usable texts"):
        prepare_data(synthetic(), seed=0, limit=10)


def test_prepare_real_chinese_language(chinese_reviews):
    prepared = prepare_data(chinese_reviews, seed=0, limit=1000)

    assert prepared.info["language"] == "zh"
    assert prepared.tokenizer.level == "char"


def test_prepare_real_english_language(rotten_tomatoes):
    prepared = prepare_data(rotten_tomatoes, seed=0, limit=1000)

    assert prepared.info["language"] == "en"
    assert prepared.info["rows_read"] == rotten_tomatoes.rows_read


# --- user files: happy paths ------------------------------------------------------------------


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(*records) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def test_csv_texts_and_labels(tmp_path):
    path = write(tmp_path, "reviews.csv", 'text,label\nGood film,pos\n"Bad, long film",neg\n')
    data = load_texts(str(path))

    assert data.texts == ["Good film", "Bad, long film"]
    assert data.labels == [1, 0]


def test_csv_record_fields(tmp_path):
    path = write(tmp_path, "reviews.csv", "text,label\nGood film,pos\nBad film,neg\n")
    data = load_texts(str(path))

    assert data.name == "reviews"
    assert data.source == str(path.resolve())
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.rows_read == 2


def test_csv_byte_order_mark(tmp_path):
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbftext,label\nGood,1\nBad,0\n")

    assert load_texts(str(path)).texts == ["Good", "Bad"]


def test_csv_multiline_text(tmp_path):
    path = write(tmp_path, "multi.csv", 'text,label\n"line one\nline two",1\nBad,0\n')

    assert load_texts(str(path)).texts[0] == "line one\nline two"


def test_jsonl_texts_and_labels(tmp_path):
    path = write(tmp_path, "reviews.jsonl", jsonl({"text": "Good", "label": "pos"}, {"text": "Bad", "label": "neg"}))
    data = load_texts(str(path))

    assert data.texts == ["Good", "Bad"]
    assert data.labels == [1, 0]


def test_jsonl_skips_blank_lines(tmp_path):
    content = '{"text": "Good", "label": 1}\n\n   \n{"text": "Bad", "label": 0}\n'
    path = write(tmp_path, "reviews.jsonl", content)

    assert load_texts(str(path)).rows_read == 2


def test_ndjson_suffix(tmp_path):
    path = write(tmp_path, "reviews.ndjson", jsonl({"text": "Good", "label": 1}, {"text": "Bad", "label": 0}))

    assert load_texts(str(path)).labels == [1, 0]


def test_csv_custom_columns(tmp_path):
    path = write(tmp_path, "custom.csv", "id,review,sentiment\n1,Good,positive\n2,Bad,negative\n")
    data = load_texts(str(path), text_column="review", label_column="sentiment")

    assert data.texts == ["Good", "Bad"]
    assert data.labels == [1, 0]


def test_jsonl_custom_columns(tmp_path):
    path = write(tmp_path, "custom.jsonl", jsonl({"body": "Good", "y": 1}, {"body": "Bad", "y": 0}))

    assert load_texts(str(path), text_column="body", label_column="y").texts == ["Good", "Bad"]


@pytest.mark.parametrize(
    ("positive", "negative"),
    [
        ("pos", "neg"),
        ("positive", "negative"),
        ("true", "false"),
        ("1", "0"),
        ("1.0", "0.0"),
        ("fresh", "rotten"),
        ("yes", "no"),
        ("POS", "Neg"),
        (" positive ", "negative "),
    ],
)
def test_csv_label_mapping(tmp_path, positive, negative):
    path = write(tmp_path, "labels.csv", f"text,label\nA,{positive}\nB,{negative}\nC,{positive}\n")

    assert load_texts(str(path)).labels == [1, 0, 1]


@pytest.mark.parametrize(
    ("positive", "negative"),
    [
        pytest.param(True, False, id="booleans"),
        pytest.param(1, 0, id="integers"),
        pytest.param(1.0, 0.0, id="floats"),
    ],
)
def test_jsonl_label_mapping(tmp_path, positive, negative):
    path = write(tmp_path, "labels.jsonl", jsonl({"text": "A", "label": positive}, {"text": "B", "label": negative}))

    assert load_texts(str(path)).labels == [1, 0]


def test_positive_label_unknown_pair(tmp_path):
    path = write(tmp_path, "labels.csv", "text,label\nA,good\nB,bad\n")

    assert load_texts(str(path), positive_label="good").labels == [1, 0]


def test_positive_label_overrides_known_pair(tmp_path):
    path = write(tmp_path, "labels.csv", "text,label\nA,1\nB,0\n")

    assert load_texts(str(path), positive_label="0").labels == [0, 1]


# --- user files: invalid input ----------------------------------------------------------------------

# (file name, content or None for no file or "<folder>", load_texts options, text the message must contain)
INVALID_FILES = [
    pytest.param("absent.csv", None, {}, ["absent.csv", "neither a built-in name"], id="missing-file"),
    pytest.param("folder.csv", "<folder>", {}, ["folder.csv", "is a folder"], id="folder"),
    pytest.param("empty.csv", "", {}, ["empty.csv", "is empty"], id="empty-file"),
    pytest.param("blank.jsonl", "\n  \n", {}, ["blank.jsonl", "is empty"], id="whitespace-file"),
    pytest.param("header.csv", "text,label\n", {}, ["header.csv", "no data rows"], id="header-only"),
    pytest.param(
        "latin1.csv", b"text,label\nfine,pos\ncaf\xe9,neg\n", {}, ["not valid UTF-8", "0xe9", "line 3"], id="not-utf8"
    ),
    pytest.param("reviews.txt", "text,label\nA,1\nB,0\n", {}, ["'.txt'", ".csv or .jsonl"], id="unknown-suffix"),
    pytest.param("reviews", "text,label\nA,1\nB,0\n", {}, ["(none)"], id="no-suffix"),
    pytest.param(
        "columns.csv", "review,label\nA,1\nB,0\n", {}, ["no column 'text'", "'review'", "--text-column"],
        id="missing-text-column",
    ),
    pytest.param(
        "columns.csv", "text,stars\nA,1\nB,0\n", {}, ["no column 'label'", "'stars'", "--label-column"],
        id="missing-label-column",
    ),
    pytest.param(
        "columns.csv", "text,label\nA,1\nB,0\n", {"text_column": "body"}, ["no column 'body'"],
        id="missing-custom-column",
    ),
    pytest.param("one.csv", "text,label\nA,pos\nB,pos\n", {}, ["found 1", "'pos'"], id="one-class"),
    pytest.param(
        "three.csv", "text,label\nA,pos\nB,neg\nC,neutral\n", {}, ["found 3", "'neg', 'neutral', 'pos'"],
        id="three-classes",
    ),
    pytest.param(
        "unknown.csv", "text,label\nA,good\nB,bad\n", {}, ["'bad', 'good'", "--positive-label"], id="unmappable-labels"
    ),
    pytest.param(
        "labels.csv", "text,label\nA,good\nB,bad\n", {"positive_label": "great"}, ["'great'", "'bad', 'good'"],
        id="positive-label-absent",
    ),
    pytest.param(
        "gaps.csv", "text,label\nA,pos\n,neg\nB,neg\n  ,pos\n", {}, ["2 rows", "empty 'text'", "lines 3, 5"],
        id="empty-text-csv",
    ),
    pytest.param(
        "gaps.jsonl", jsonl({"text": "A", "label": 1}, {"text": None, "label": 0}, {"label": 1}), {},
        ["empty 'text'", "lines 2, 3"], id="empty-text-jsonl",
    ),
    pytest.param(
        "gaps.csv", "text,label\nA,pos\nB,\nC,neg\n", {"positive_label": "pos"}, ["empty 'label'", "lines 3"],
        id="empty-label-csv",
    ),
    pytest.param(
        "gaps.jsonl", jsonl({"text": "A", "label": 1}, {"text": "B"}, {"text": "C", "label": 0}), {},
        ["empty 'label'", "lines 2"], id="missing-label-jsonl",
    ),
    pytest.param(
        "broken.jsonl", '{"text": "A", "label": 1}\n{"text": "B", "label": \n', {}, ["line 2", "not valid JSON"],
        id="invalid-json-line",
    ),
    pytest.param(
        "array.jsonl", '{"text": "A", "label": 1}\n["B", 0]\n', {}, ["line 2", "not a JSON object"],
        id="json-line-not-object",
    ),
]


@pytest.mark.parametrize(("name", "content", "options", "expected"), INVALID_FILES)
def test_invalid_file_raises(tmp_path, name, content, options, expected):
    path = tmp_path / name
    if content == "<folder>":
        path.mkdir()
    elif content is not None:
        write(tmp_path, name, content)

    with pytest.raises(DataError) as caught:
        load_texts(str(path), **options)

    for text in expected:
        assert text in str(caught.value)


def test_empty_text_lines_capped_at_ten(tmp_path):
    rows = "".join(",pos\n" for _ in range(12))
    path = write(tmp_path, "many.csv", "text,label\nA,pos\nB,neg\n" + rows)

    with pytest.raises(DataError, match="and 2 more"):
        load_texts(str(path))
