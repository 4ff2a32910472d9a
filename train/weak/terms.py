"""Matching words and phrases in Arabic text: whole words, with proclitics and the definite article.

Text and terms are normalized as a data build does by default (diacritics, tatweel, alef forms, digits) and cut
into words (`\\w+` runs), so `كوفيد-19` is the two words `كوفيد 19` on both sides. A word of a term matches a word
of the text that is the term's word behind proclitics: a conjunction (و، ف), then a preposition (ب، ل، ك), then
the article (ال; ل + ال is written لل). A word written without the article matches with or without it (`مصري`:
المصري، والمصريين is another word); a word written with it needs it (`الأمن` matches للأمن, not أمن). A word
ending in `*` matches any word that starts with it (`لقاح*`: اللقاحات; `تعاون* أمني*`: تعاونا أمنيا).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from train.text.clean import NormalizationOptions, build_translation_table

WORD = re.compile(r"\w+")
ARTICLE = "ال"
CONJUNCTIONS = ("", "و", "ف")
PREPOSITIONS = ("", "ب", "ل", "ك")
_CLITIC_START = frozenset("وفبلكا")  # a word starting otherwise has no proclitic and no article
# The default normalization's table, applied as a deletion pass and a few replacements: str.translate looks every
# character up in a dict and took most of the rules' time on the ANT corpus.
_TABLE = build_translation_table(NormalizationOptions())
_DELETE = re.compile("[" + re.escape("".join(chr(k) for k, v in _TABLE.items() if v is None)) + "]")
_REPLACE = {chr(k): v for k, v in _TABLE.items() if v is not None}


def normalize(text: str) -> str:
    """The data build's default Arabic normalization (diacritics, tatweel, alef forms, digits)."""
    text = _DELETE.sub("", text)
    for char, target in _REPLACE.items():
        if char in text:
            text = text.replace(char, target)
    return text


def words(text: str) -> list[str]:
    """The normalized words of a text."""
    return WORD.findall(normalize(text))


def parse_term(term: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """A term's normalized words, and which of them are prefixes (`*`); ValueError for a malformed term."""
    pieces = normalize(term).split()
    if any("*" in piece.rstrip("*") or piece.count("*") > 1 for piece in pieces):
        raise ValueError(f"{term!r}: '*' may only end a word (a prefix: لقاح* matches اللقاحات)")
    found, prefixes = [], []
    for piece in pieces:
        piece_words = WORD.findall(piece)
        found += piece_words
        prefixes += [False] * (len(piece_words) - 1) + [piece.endswith("*")] if piece_words else []
    if not found or any(piece.endswith("*") and not WORD.search(piece) for piece in pieces):
        raise ValueError(f"{term!r} has no word; write words separated by spaces, e.g. 'تعاون أمني'")
    return tuple(found), tuple(prefixes)


def cores(token: str, conjunction: bool = True) -> frozenset[str]:
    """The words a text word can stand for once its proclitics are removed (itself included).

    Without `conjunction`, a leading و or ف is kept: inside a phrase it joins two words (الأمن والحدود is not
    أمن الحدود), so only a phrase's first word may carry one.
    """
    if token[:1] not in _CLITIC_START:
        return frozenset((token,))
    found = {token}
    for conjunction_letter in CONJUNCTIONS if conjunction else ("",):
        if not token.startswith(conjunction_letter):
            continue
        rest = token[len(conjunction_letter):]
        for preposition in PREPOSITIONS:
            if rest.startswith(preposition) and len(rest) - len(preposition) >= 2:
                core = rest[len(preposition):]
                found.add(core)
                if core.startswith(ARTICLE) and len(core) > 3:
                    found.add(core[2:])
        if rest.startswith("لل") and len(rest) > 3:  # ل + ال: the article's alef is dropped
            found.update((ARTICLE + rest[2:], rest[2:]))
    return frozenset(found)


@dataclass(frozen=True)
class Phrase:
    """A term in an index: its words, which of them are prefixes, its group and what a match stands for."""

    words: tuple[str, ...]
    prefixes: tuple[bool, ...]
    group: int
    payload: Any

    def matches(self, position: int, token_cores: frozenset[str]) -> bool:
        """Whether word `position` of the phrase matches a text word with these cores."""
        word = self.words[position]
        if self.prefixes[position]:
            return any(core.startswith(word) for core in token_cores)
        return word in token_cores


@dataclass
class PhraseIndex:
    """Terms of several groups; `find` returns, per group, the longest non-overlapping matches, left to right.

    Groups are independent: a word may be part of a match in one group and of another in a second group.
    """

    _first: dict[str, list[Phrase]] = field(default_factory=dict)
    _stems: dict[str, list[Phrase]] = field(default_factory=dict)
    _stem_lengths: set[int] = field(default_factory=set)
    _cache: dict[str, tuple[frozenset[str], tuple[Phrase, ...]]] = field(default_factory=dict)
    _inner: dict[str, frozenset[str]] = field(default_factory=dict)  # cores of a phrase's later words
    _triggers: set[str] = field(default_factory=set)  # the words seen so far that can start a match

    def add(self, term_words: tuple[str, ...], prefixes: tuple[bool, ...], group: int, payload: Any) -> None:
        """Index one term (as `parse_term` returns it) under `group`."""
        phrase = Phrase(term_words, prefixes, group, payload)
        if prefixes[0]:
            self._stems.setdefault(term_words[0], []).append(phrase)
            self._stem_lengths.add(len(term_words[0]))
        else:
            self._first.setdefault(term_words[0], []).append(phrase)
        self._cache.clear()
        self._triggers.clear()

    def add_terms(self, terms: Iterable[str], group: int, payload: Any = None) -> None:
        """Index terms written as in a schema (`تعاون أمني`, `لقاح*`)."""
        for term in terms:
            self.add(*parse_term(term), group, payload)

    def find(self, tokens: list[str]) -> list[tuple[int, Any]]:
        """(group, payload) of each match in a list of normalized words."""
        return self.find_each([tokens])[0]

    def find_each(self, sentences: list[list[str]]) -> list[list[tuple[int, Any]]]:
        """`find` for each of several word lists (an article's sentences): new words are looked up once."""
        for token in set().union(*sentences).difference(self._cache):
            self._lookup(token)
        return [self._find(tokens) for tokens in sentences]

    def _find(self, tokens: list[str]) -> list[tuple[int, Any]]:
        triggers = self._triggers
        if triggers.isdisjoint(tokens):  # most sentences: no Python loop over their words
            return []
        found, free = [], {}
        for start, token in enumerate(tokens):
            if token not in triggers:
                continue
            best: dict[int, Phrase] = {}
            candidates = self._cache[token][1]
            for phrase in candidates:
                group = phrase.group
                if free.get(group, 0) > start or (group in best and len(best[group].words) >= len(phrase.words)):
                    continue
                if self._rest_matches(phrase, tokens, start):
                    best[group] = phrase
            for group, phrase in best.items():
                found.append((group, phrase.payload))
                free[group] = start + len(phrase.words)
        return found

    def _rest_matches(self, phrase: Phrase, tokens: list[str], start: int) -> bool:
        if start + len(phrase.words) > len(tokens):
            return False
        return all(phrase.matches(offset, self._inner_cores(tokens[start + offset]))
                   for offset in range(1, len(phrase.words)))

    def _inner_cores(self, token: str) -> frozenset[str]:
        found = self._inner.get(token)
        if found is None:
            found = self._inner[token] = cores(token, conjunction=False)
        return found

    def _lookup(self, token: str) -> tuple[frozenset[str], tuple[Phrase, ...]]:
        """A text word's cores and the phrases whose first word matches it (cached: texts repeat words)."""
        hit = self._cache.get(token)
        if hit is None:
            token_cores = cores(token)
            candidates = [phrase for core in token_cores for phrase in self._first.get(core, ())]
            if self._stems:
                candidates += [phrase for core in token_cores for length in self._stem_lengths
                               for phrase in self._stems.get(core[:length], ()) if len(core) >= length]
            hit = self._cache[token] = (token_cores, tuple(dict.fromkeys(candidates)))
            if candidates:
                self._triggers.add(token)
        return hit
