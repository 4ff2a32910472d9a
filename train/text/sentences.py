"""Splitting article text into sentences (Arabic punctuation aware)."""

from __future__ import annotations

import re

SENTENCE_END = re.compile(r"[.!?؟؛\n]+")


def split_sentences(text: str, limit: int) -> list[str]:
    """Sentences of a text, split on . ! ? ؟ ؛ and line breaks; at most `limit` (the article's first ones)."""
    sentences = [s.strip() for s in SENTENCE_END.split(text)]
    return [s for s in sentences if s][:limit]
