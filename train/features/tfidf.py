"""TF-IDF features: word n-grams and character n-grams within words, fit once on the training split.

Equivalent in spirit to scikit-learn's `TfidfVectorizer(analyzer="word")` + `TfidfVectorizer(analyzer="char_wb")`
in a FeatureUnion, but counted with numpy and sparse products instead of per-n-gram Python loops: the character
n-grams of a document are the sum of those of its words, so each distinct word is split once (`doc x word` counts
times `word x char-ngram` counts). That makes fitting ~20k articles take seconds and prediction thousands of
articles per second. Saved as JSON and .npz (no pickle).
"""

from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from train import progress

TOKEN = re.compile(r"\w+")


class TfidfOptions(BaseModel):
    """Feature settings: which n-grams, how rare or common a feature may be, and how many to keep."""

    model_config = ConfigDict(extra="forbid")
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] | None = (2, 4)
    min_df: int = Field(default=2, ge=1)
    max_df: float = Field(default=1.0, gt=0, le=1)
    max_word_features: int | None = Field(default=200_000, ge=1)
    max_char_features: int | None = Field(default=200_000, ge=1)
    sublinear_tf: bool = True
    char_weight: float = Field(default=1.0, gt=0)
    use_title: bool = True

    @model_validator(mode="after")
    def _check_ranges(self) -> TfidfOptions:
        low, high = self.word_ngrams
        if not 1 <= low <= high <= 2:
            raise ValueError(f"word_ngrams must be (1, 1), (1, 2) or (2, 2), got {self.word_ngrams}")
        if self.char_ngrams is not None and not 1 <= self.char_ngrams[0] <= self.char_ngrams[1]:
            raise ValueError(f"char_ngrams must be (low, high) with 1 <= low <= high, got {self.char_ngrams}")
        return self


def document(title: str, text: str, use_title: bool) -> str:
    """The string the features see: title and text, or text alone."""
    return f"{title}\n{text}" if use_title and title else text


def tokenize(docs: list[str]) -> tuple[list[list[str]], np.ndarray]:
    """Word tokens per document (runs of letters and digits) and the document of each token, flattened."""
    tokens = [TOKEN.findall(doc) for doc in docs]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    return tokens, np.repeat(np.arange(len(docs)), lengths)


def char_ngrams(word: str, low: int, high: int) -> list[str]:
    """Character n-grams of a word padded with spaces, as scikit-learn's `char_wb` analyzer makes them."""
    padded = f" {word} "
    grams = []
    for n in range(low, high + 1):
        if len(padded) <= n:
            grams.append(padded)
            break
        grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


class TfidfFeatures:
    """Fit on training texts, then turn any texts into one L2-normalized sparse row each (word block | char block)."""

    def __init__(self, options: TfidfOptions):
        self.options = options
        self.unigrams: dict[str, int] = {}
        self.bigram_words: dict[str, int] = {}
        self.bigram_keys = np.zeros(0, dtype=np.int64)
        self.bigram_columns = np.zeros(0, dtype=np.int64)
        self.n_word = 0
        self.chars: dict[str, int] = {}
        self.word_idf = np.zeros(0)
        self.char_idf = np.zeros(0)
        self._char_cache: dict[str, list[int]] = {}

    # -- fitting ------------------------------------------------------------------------------------------------
    def fit_transform(self, docs: list[str]) -> sp.csr_matrix:
        """Learn the vocabularies and IDF weights from `docs`; return their feature matrix."""
        progress.step(f"fitting TF-IDF features on {len(docs)} articles")
        tokens, doc_of = tokenize(docs)
        codes, words = _factorize(chain.from_iterable(tokens))
        counts = _count(doc_of, codes, len(docs), len(words))
        word_block = self._fit_words(counts, doc_of, codes, words, len(docs))
        blocks = [word_block]
        if self.options.char_ngrams:
            blocks.append(self._fit_chars(counts, words, len(docs)))
        self._char_cache = {}
        return self._weigh(blocks)

    def _fit_words(self, counts, doc_of, codes, words, n_docs) -> sp.csr_matrix:
        low, high = self.options.word_ngrams
        candidates, names = [], []
        if low == 1:
            candidates.append(counts)
            names.append(("1", np.arange(len(words))))
        if high == 2:
            pair_counts, pair_keys = _pairs(doc_of, codes.astype(np.int64), len(words), n_docs)
            candidates.append(pair_counts)
            names.append(("2", pair_keys))
        matrix = sp.hstack(candidates, format="csc")
        keep = _select(matrix, self.options.min_df, self.options.max_df, self.options.max_word_features)
        offsets = np.cumsum([0] + [m.shape[1] for m in candidates])
        unigram_cols, bigram_keys = [], []
        for new_col, old_col in enumerate(keep):
            block = int(np.searchsorted(offsets, old_col, side="right") - 1)
            kind, ids = names[block]
            ident = ids[old_col - offsets[block]]
            (unigram_cols if kind == "1" else bigram_keys).append((new_col, int(ident)))
        self.unigrams = {words[ident]: col for col, ident in unigram_cols}
        self._set_bigrams([(col, words[key // len(words)], words[key % len(words)]) for col, key in bigram_keys])
        self.n_word = len(keep)
        chosen = matrix[:, keep].tocsr()
        self.word_idf = _idf(chosen, n_docs)
        return chosen

    def _set_bigrams(self, bigrams: list[tuple[int, str, str]]) -> None:
        """Index bigrams by (first word, second word) ids over the words that occur in kept bigrams."""
        vocabulary = sorted({w for _, a, b in bigrams for w in (a, b)})
        self.bigram_words = {w: i for i, w in enumerate(vocabulary)}
        size = max(len(vocabulary), 1)
        keys = np.array([self.bigram_words[a] * size + self.bigram_words[b] for _, a, b in bigrams], dtype=np.int64)
        columns = np.array([col for col, _, _ in bigrams], dtype=np.int64)
        order = np.argsort(keys)
        self.bigram_keys, self.bigram_columns = keys[order], columns[order]

    def _fit_chars(self, counts: sp.csr_matrix, words: list[str], n_docs: int) -> sp.csr_matrix:
        low, high = self.options.char_ngrams
        grams = [char_ngrams(word, low, high) for word in words]
        codes, names = _factorize(chain.from_iterable(grams))
        word_of = np.repeat(np.arange(len(words)), [len(g) for g in grams])
        word_chars = _count(word_of, codes, len(words), len(names))
        matrix = (counts @ word_chars).tocsc()
        keep = _select(matrix, self.options.min_df, self.options.max_df, self.options.max_char_features)
        self.chars = {names[old]: new for new, old in enumerate(keep)}
        chosen = matrix[:, keep].tocsr()
        self.char_idf = _idf(chosen, n_docs)
        return chosen

    # -- transforming -------------------------------------------------------------------------------------------
    def transform(self, docs: list[str]) -> sp.csr_matrix:
        """Feature rows for `docs` with the fitted vocabularies; unknown words still contribute character n-grams."""
        tokens, doc_of = tokenize(docs)
        codes, words = _factorize(chain.from_iterable(tokens))
        counts = _count(doc_of, codes, len(docs), len(words))
        blocks = [self._word_counts(counts, doc_of, codes, words, len(docs))]
        if self.options.char_ngrams:
            blocks.append(counts @ self._word_chars(words))
        return self._weigh(blocks)

    def _word_counts(self, counts, doc_of, codes, words, n_docs) -> sp.csr_matrix:
        parts = []
        if self.unigrams:
            column_of = np.array([self.unigrams.get(w, -1) for w in words], dtype=np.int64)
            mapping = _remap(column_of, self.n_word)
            parts.append(counts @ mapping)
        if len(self.bigram_keys) and len(codes) > 1:
            index = np.array([self.bigram_words.get(w, -1) for w in words], dtype=np.int64)[codes]
            size = max(len(self.bigram_words), 1)
            same_doc = (doc_of[:-1] == doc_of[1:]) & (index[:-1] >= 0) & (index[1:] >= 0)
            keys = index[:-1][same_doc] * size + index[1:][same_doc]
            docs = doc_of[:-1][same_doc]
            where = np.searchsorted(self.bigram_keys, keys)
            found = (where < len(self.bigram_keys)) & (self.bigram_keys[np.minimum(where, len(self.bigram_keys) - 1)] == keys)
            columns = self.bigram_columns[where[found]]
            parts.append(_count(docs[found], columns, n_docs, self.n_word))
        total = sp.csr_matrix((n_docs, self.n_word), dtype=np.float64)
        for part in parts:
            total = total + part
        return total.tocsr()

    def _word_chars(self, words: list[str]) -> sp.csr_matrix:
        """`word x char-feature` counts for the given words (cached per word across calls)."""
        low, high = self.options.char_ngrams
        rows, cols = [], []
        cache = self._char_cache
        if len(cache) > 500_000:  # bounded: prediction over a huge stream must not grow without end
            cache.clear()
        for row, word in enumerate(words):
            columns = cache.get(word)
            if columns is None:
                columns = [c for c in (self.chars.get(g, -1) for g in char_ngrams(word, low, high)) if c >= 0]
                cache[word] = columns
            rows.extend([row] * len(columns))
            cols.extend(columns)
        data = np.ones(len(rows), dtype=np.float64)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(words), len(self.chars)))

    def _weigh(self, blocks: list[sp.csr_matrix]) -> sp.csr_matrix:
        """Sublinear TF, IDF, L2 per block; the character block scaled by `char_weight`."""
        weighted = []
        for block, idf, scale in zip(blocks, (self.word_idf, self.char_idf), (1.0, self.options.char_weight), strict=False):
            block = block.astype(np.float64).tocsr()
            block.sum_duplicates()
            if self.options.sublinear_tf:
                np.log(block.data, out=block.data)
                block.data += 1
            block = block @ sp.diags(idf)
            weighted.append(_l2_normalize(block) * scale)
        return sp.hstack(weighted, format="csr").astype(np.float32)

    @property
    def n_features(self) -> int:
        """Width of the feature matrix."""
        return self.n_word + len(self.chars)

    # -- saving -------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write `features.json` (options, vocabularies) and `features.npz` (IDF, bigram index): no pickle."""
        vocab = {"options": self.options.model_dump(mode="json"), "unigrams": self.unigrams,
                 "bigram_words": self.bigram_words, "chars": self.chars, "n_word": self.n_word}
        (folder / "features.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        np.savez(folder / "features.npz", word_idf=self.word_idf, char_idf=self.char_idf,
                 bigram_keys=self.bigram_keys, bigram_columns=self.bigram_columns)

    @classmethod
    def load(cls, folder: Path) -> TfidfFeatures:
        """Read what `save` wrote."""
        vocab = json.loads((folder / "features.json").read_text(encoding="utf-8"))
        features = cls(TfidfOptions(**vocab["options"]))
        features.unigrams, features.bigram_words = vocab["unigrams"], vocab["bigram_words"]
        features.chars, features.n_word = vocab["chars"], vocab["n_word"]
        with np.load(folder / "features.npz", allow_pickle=False) as arrays:
            features.word_idf, features.char_idf = arrays["word_idf"], arrays["char_idf"]
            features.bigram_keys, features.bigram_columns = arrays["bigram_keys"], arrays["bigram_columns"]
        return features


def _factorize(items) -> tuple[np.ndarray, list[str]]:
    """Integer codes for a stream of strings, and the distinct strings in order of first appearance."""
    import pandas as pd

    codes, uniques = pd.factorize(np.fromiter(items, dtype=object))
    return codes.astype(np.int64), list(uniques)


def _count(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> sp.csr_matrix:
    data = np.ones(len(rows), dtype=np.float64)
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, n_cols))
    matrix.sum_duplicates()
    return matrix


def _pairs(doc_of: np.ndarray, codes: np.ndarray, n_words: int, n_docs: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Counts of consecutive word pairs within documents, and each pair column's key (first * n_words + second)."""
    same_doc = doc_of[:-1] == doc_of[1:]
    keys = codes[:-1][same_doc] * n_words + codes[1:][same_doc]
    unique, columns = np.unique(keys, return_inverse=True)
    return _count(doc_of[:-1][same_doc], columns.astype(np.int64), n_docs, len(unique)), unique


def _select(matrix: sp.csc_matrix, min_df: int, max_df: float, limit: int | None) -> np.ndarray:
    """Columns within the document-frequency bounds, the `limit` most frequent overall (ties: first column)."""
    df = np.diff(matrix.indptr)
    total = np.asarray(matrix.sum(axis=0)).ravel()
    n_docs = matrix.shape[0]
    ok = np.flatnonzero((df >= min_df) & (df <= max_df * n_docs))
    if limit is not None and len(ok) > limit:
        order = np.argsort(-total[ok], kind="stable")[:limit]
        ok = np.sort(ok[order])
    return ok


def _idf(matrix: sp.csr_matrix, n_docs: int) -> np.ndarray:
    df = np.bincount(matrix.indices, minlength=matrix.shape[1])
    return np.log((1 + n_docs) / (1 + df)) + 1


def _remap(column_of: np.ndarray, width: int) -> sp.csr_matrix:
    """A 0/1 matrix sending batch word i to feature column column_of[i] (dropped when -1)."""
    rows = np.flatnonzero(column_of >= 0)
    return sp.csr_matrix((np.ones(len(rows)), (rows, column_of[rows])), shape=(len(column_of), width))


def _l2_normalize(matrix: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    return sp.diags(1 / norms) @ matrix
