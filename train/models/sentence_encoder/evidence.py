"""Sentence-level evidence for a binary task: multiple-instance learning over an article's sentence vectors.

Each sentence gets a score z = w . s + b; the article's logit pools its sentences' scores (the best sentence, or an
attention-weighted mean that learns which sentences count). Training reads article labels (an article is positive
when some sentence is: the multiple-instance assumption) and, optionally, labelled sentences of another corpus (e.g.
the UN cooperation sentences) whose scores are trained directly. The sentence with the highest score is the article's
evidence: what `taawun predict` shows next to the label.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from train.errors import TaawunError


class SentenceLabels(BaseModel):
    """Labelled sentences of another corpus: a JSONL file (gzip allowed), a text field and a label field."""

    model_config = ConfigDict(extra="forbid")
    path: Path
    text: str = "text"
    label: str = "label"
    positive: list[str] = Field(min_length=1, description="label values of the positive sentences")
    negative: list[str] | None = Field(default=None, description="label values of the negative ones (default: any "
                                                                  "other non-empty value)")
    weight: float = Field(default=0.5, gt=0, description="the sentences' loss weight, relative to the articles'")
    limit: int | None = Field(default=None, ge=1, description="at most this many sentences (a seeded sample)")


class EvidenceConfig(BaseModel):
    """`model.evidence`: score the sentences of binary tasks; the article logit pools them, the best is evidence."""

    model_config = ConfigDict(extra="forbid")
    tasks: list[str] = Field(default=[], description="binary tasks to score sentences for (default: every one)")
    pooling: Literal["max", "attention"] = "attention"
    sentences: SentenceLabels | None = None
    folds: int = Field(default=5, ge=2, description="cross-fitting: the head learns from out-of-fold article logits")
    epochs: int = Field(default=300, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=1e-3, ge=0)


def read_sentence_labels(config: SentenceLabels, seed: int) -> tuple[list[str], np.ndarray]:
    """The corpus's sentences and their 0/1 labels; sentences whose label is neither positive nor negative are left."""
    path = config.path
    if not path.is_file():
        raise TaawunError(f"model.evidence.sentences.path: {path} does not exist")
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    texts, labels = [], []
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise TaawunError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            label, text = row.get(config.label), str(row.get(config.text) or "").strip()
            if not text or label is None:
                continue
            if label in config.positive:
                texts.append(text), labels.append(1)
            elif config.negative is None or label in config.negative:
                texts.append(text), labels.append(0)
    if not texts or len(set(labels)) < 2:
        raise TaawunError(f"{path}: no positive and negative sentences under {config.label!r} "
                          f"(positive: {config.positive}); check model.evidence.sentences")
    if config.limit and len(texts) > config.limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(texts), config.limit, replace=False))
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return texts, np.asarray(labels)


class SentenceScorer:
    """A linear sentence scorer pooled per article, trained with torch on CPU (a few seconds)."""

    def __init__(self, config: EvidenceConfig):
        self.config = config
        self.weights: dict[str, np.ndarray] = {}

    def fit(self, vectors: np.ndarray, bounds: np.ndarray, y: np.ndarray, sample_weight: np.ndarray,
            extra: tuple[np.ndarray, np.ndarray, float] | None, seed: int) -> SentenceScorer:
        """Fit on articles (their sentence `vectors`, split by `bounds`) labelled `y` (0/1; -1 left out)."""
        import torch

        torch.manual_seed(seed)
        keep = np.flatnonzero(y >= 0)
        owner, rows = _rows_of(bounds, keep)
        dim = vectors.shape[1]
        params = {"w": torch.zeros(dim, requires_grad=True), "b": torch.zeros(1, requires_grad=True),
                  "a": torch.zeros(dim, requires_grad=True)}
        s = torch.from_numpy(vectors[rows]).float()
        owner_t = torch.from_numpy(owner)
        target = torch.from_numpy(y[keep]).float()
        weight = torch.from_numpy(_balanced(y[keep]) * sample_weight[keep]).float()
        optimizer = torch.optim.Adam(params.values(), lr=self.config.learning_rate,
                                     weight_decay=self.config.weight_decay)
        extra_t = None if extra is None else (torch.from_numpy(extra[0]).float(), torch.from_numpy(extra[1]).float(),
                                              extra[2])
        for _ in range(self.config.epochs):
            optimizer.zero_grad()
            logits = self._pool(s, owner_t, len(keep), params)
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
                    * weight).sum() / weight.sum()
            if extra_t is not None:
                sentences, labels, share = extra_t
                scores = sentences @ params["w"] + params["b"]
                loss = loss + share * torch.nn.functional.binary_cross_entropy_with_logits(scores, labels)
            loss.backward()
            optimizer.step()
        self.weights = {name: value.detach().numpy() for name, value in params.items()}
        return self

    def _pool(self, s, owner, n: int, params):
        import torch

        scores = s @ params["w"] + params["b"]
        if self.config.pooling == "max":
            out = torch.full((n,), -1e9).scatter_reduce(0, owner, scores, reduce="amax")
            return out
        attention = s @ params["a"]
        attention = attention - torch.zeros(n).scatter_reduce(0, owner, attention, reduce="amax")[owner].detach()
        weights = torch.exp(attention)
        total = torch.zeros(n).index_add(0, owner, weights)
        return torch.zeros(n).index_add(0, owner, weights * scores) / total

    def sentence_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Each sentence's score (a logit)."""
        return vectors @ self.weights["w"] + self.weights["b"][0]

    def article_logits(self, vectors: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Each article's pooled logit."""
        scores = self.sentence_scores(vectors)
        starts = bounds[:-1]
        if self.config.pooling == "max":
            return np.maximum.reduceat(scores, starts)
        attention = vectors @ self.weights["a"]
        attention = attention - np.repeat(np.maximum.reduceat(attention, starts), np.diff(bounds))
        weights = np.exp(attention)
        return np.add.reduceat(weights * scores, starts) / np.add.reduceat(weights, starts)

    def evidence(self, vectors: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per article: the index (within the article) of its best sentence, and that sentence's probability."""
        scores = self.sentence_scores(vectors)
        best, value = [], []
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            index = int(np.argmax(scores[start:end]))
            best.append(index), value.append(float(1 / (1 + np.exp(-scores[start + index]))))
        return np.asarray(best), np.asarray(value)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The fitted weights, for an .npz file."""
        return {f"{prefix}.{name}": value for name, value in self.weights.items()}

    def read(self, arrays, prefix: str) -> SentenceScorer:
        """The weights `arrays` wrote."""
        self.weights = {name: arrays[f"{prefix}.{name}"] for name in ("w", "b", "a")}
        return self


def _rows_of(bounds: np.ndarray, articles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position of the owning article among `articles`, sentence row) for every sentence of those articles."""
    owners, rows = [], []
    for position, article in enumerate(articles):
        span = np.arange(bounds[article], bounds[article + 1])
        rows.append(span), owners.append(np.full(len(span), position))
    return np.concatenate(owners), np.concatenate(rows)


def _balanced(y: np.ndarray) -> np.ndarray:
    """Balanced class weights for 0/1 labels."""
    counts = np.bincount(y, minlength=2).astype(float)
    return np.where(y == 1, len(y) / (2 * max(counts[1], 1)), len(y) / (2 * max(counts[0], 1)))
