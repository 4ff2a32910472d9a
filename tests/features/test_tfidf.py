"""The TF-IDF features agree with scikit-learn's vectorizers, and transform agrees with fit_transform."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from tests.helpers import arabic_text
from train.features.tfidf import TfidfFeatures, TfidfOptions

DOCS = [arabic_text(i, words=30) + f" رقم{i % 5}، وزارة" for i in range(60)]


def _sorted_columns(matrix, names):
    order = np.argsort(names)
    return matrix.toarray()[:, order], sorted(names)


def test_word_block_equals_scikit_learn():
    ours = TfidfFeatures(TfidfOptions(word_ngrams=(1, 2), char_ngrams=None, min_df=2, max_word_features=None))
    matrix = ours.fit_transform(DOCS)
    reference = TfidfVectorizer(token_pattern=r"\w+", lowercase=False, ngram_range=(1, 2), min_df=2,
                                sublinear_tf=True)
    expected = reference.fit_transform(DOCS)
    names = [""] * ours.n_word
    for word, col in ours.unigrams.items():
        names[col] = word
    index = {i: w for w, i in ours.bigram_words.items()}
    size = len(ours.bigram_words)
    for key, col in zip(ours.bigram_keys, ours.bigram_columns, strict=True):
        names[col] = f"{index[int(key) // size]} {index[int(key) % size]}"
    got, got_names = _sorted_columns(matrix, names)
    want, want_names = _sorted_columns(expected, list(reference.get_feature_names_out()))
    assert got_names == want_names
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_char_block_equals_scikit_learn_char_wb_on_tokens():
    ours = TfidfFeatures(TfidfOptions(word_ngrams=(1, 1), char_ngrams=(2, 4), min_df=1, max_word_features=1))
    matrix = ours.fit_transform(DOCS)[:, ours.n_word:]
    # char_wb splits on whitespace; ours on word tokens: the same once punctuation is gone.
    tokens_only = [" ".join(__import__("re").findall(r"\w+", d)) for d in DOCS]
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=False, sublinear_tf=True)
    expected = reference.fit_transform(tokens_only)
    names = [""] * len(ours.chars)
    for gram, col in ours.chars.items():
        names[col] = gram
    got, got_names = _sorted_columns(matrix, names)
    want, want_names = _sorted_columns(expected, list(reference.get_feature_names_out()))
    assert got_names == want_names
    np.testing.assert_allclose(got, want, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="ابتثجحخ دذرزسشصضطظعغ.،", min_size=0, max_size=60), min_size=2, max_size=20))
def test_transform_equals_fit_transform(docs):
    features = TfidfFeatures(TfidfOptions(min_df=1))
    fitted = features.fit_transform(docs)
    np.testing.assert_allclose(fitted.toarray(), features.transform(docs).toarray(), atol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    features = TfidfFeatures(TfidfOptions(max_word_features=50, max_char_features=80))
    features.fit_transform(DOCS)
    features.save(tmp_path)
    loaded = TfidfFeatures.load(tmp_path)
    new = ["خبر جديد عن وزارة الاقتصاد", "كلمات لم ترها النماذج قط"]
    np.testing.assert_allclose(features.transform(new).toarray(), loaded.transform(new).toarray())
    assert features.transform(new).shape == (2, 130)


def test_bad_ngram_range_is_a_config_error():
    with pytest.raises(ValueError, match="word_ngrams must be"):
        TfidfOptions(word_ngrams=(1, 3))
