"""Tokenizing articles into model windows (head, head and tail, or overlapping chunks) and padding batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from train.models.transformer.config import TransformerConfig


@dataclass
class Encoded:
    """Token windows ready for the model, and the article each window belongs to."""

    features: list[dict[str, Any]]
    article: np.ndarray


def encode(tokenizer, texts: list[str], targets: list[str] | None, config: TransformerConfig,
           labels: dict[str, list[int]] | None = None, weights: dict[str, np.ndarray] | None = None) -> Encoded:
    """Tokenize articles (and targets, as the first segment of a pair) with the configured truncation.

    With `labels` every window carries its article's labels (`labels_<task>`), and with `weights` its sample weight
    per task (`weight_<task>`).
    """
    body = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
    first = tokenizer(targets, add_special_tokens=False, truncation=False)["input_ids"] if targets else None
    features, owners = [], []
    for index, ids in enumerate(body):
        prefix = first[index][: config.max_length // 4] if first else None
        budget = config.max_length - (3 if prefix is not None else 2) - (len(prefix) if prefix else 0)
        for window in _windows(ids, budget, config):
            item = _with_special_tokens(tokenizer, prefix, window)
            if labels:
                item.update({f"labels_{task}": values[index] for task, values in labels.items()})
            if weights:
                item.update({f"weight_{task}": float(values[index]) for task, values in weights.items()})
            features.append(item)
            owners.append(index)
    return Encoded(features, np.asarray(owners, dtype=np.int64))


def _windows(ids: list[int], budget: int, config: TransformerConfig) -> list[list[int]]:
    """The token windows of one article: head, head and tail, or overlapping chunks."""
    if len(ids) <= budget:
        return [ids]
    if config.truncation == "head":
        return [ids[:budget]]
    if config.truncation == "head_tail":
        head = min(config.head_tokens, budget)
        return [ids[:head] + ids[len(ids) - (budget - head):]]
    stride = max(1, budget - config.chunk_overlap)
    starts = range(0, max(len(ids) - config.chunk_overlap, 1), stride)
    return [ids[start : start + budget] for start in starts][: config.max_chunks]


def _with_special_tokens(tokenizer, prefix: list[int] | None, window: list[int]) -> dict[str, list[int]]:
    """BERT's layout: [CLS] text [SEP], or [CLS] target [SEP] text [SEP] with segment ids 0 then 1."""
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if prefix is None:
        input_ids = [cls, *window, sep]
        types = [0] * len(input_ids)
    else:
        input_ids = [cls, *prefix, sep, *window, sep]
        types = [0] * (len(prefix) + 2) + [1] * (len(window) + 1)
    return {"input_ids": input_ids, "token_type_ids": types, "attention_mask": [1] * len(input_ids)}


class Collator:
    """Pads a batch to its longest window (dynamic) or to `max_length`, and stacks the labels."""

    def __init__(self, pad_id: int, max_length: int | None):
        self.pad_id = pad_id
        self.max_length = max_length

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = self.max_length or max(len(item["input_ids"]) for item in batch)
        out: dict[str, Any] = {}
        for key, pad in (("input_ids", self.pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
            out[key] = torch.tensor([item[key] + [pad] * (width - len(item[key])) for item in batch])
        for key in batch[0]:
            if key.startswith(("labels_", "weight_")):
                out[key] = torch.tensor([item[key] for item in batch])
        return out
