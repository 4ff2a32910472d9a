"""Gazetteers: lists of named entities (the world's states) in Arabic, for the schema's co-occurrence rules.

A gazetteer file (YAML) holds `entries`, each with a `code` and the Arabic forms that name it: `names`, `demonyms`
and `capitals` (capitals and seats of government, which newswire uses for the government: واشنطن، الكرملين). A
one-word demonym ending in ي also stands for its inflections: feminine (ة), accusative (ا), plurals (ون، ين، ات)
and dual (ان); write broken plurals (أتراك، روس) as demonyms of their own. `ignore` lists phrases that contain a
name but name no entry (أمريكا اللاتينية، المحيط الهندي; a last word may end in `*`, as in rules: مسقط رأس*):
matched like names, they hide the shorter name inside.
Matching follows `train.weak.terms` (proclitics and the article; the longest form wins: غينيا الاستوائية is not
غينيا). A form may belong to one entry only.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from train.config.loading import read_yaml, validate_config
from train.errors import TaawunError
from train.weak.terms import ARTICLE, PhraseIndex, normalize, parse_term, words

DEMONYM_ENDINGS = ("", "ة", "ا", "ون", "ين", "ان", "ات")
FORM_KINDS = ("names", "demonyms", "capitals")
_ARABIC = re.compile(r"^[\u0621-\u064a ]+$")


class Entry(BaseModel):
    """One entity (a state): its code and the Arabic forms that name it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    names: list[str] = Field(min_length=1)
    demonyms: list[str] = []
    capitals: list[str] = []

    def sourced_forms(self) -> list[tuple[str, str]]:
        """(normalized form, the key it comes from: `demonyms.0`) for every form, demonym inflections included."""
        found = []
        for kind in FORM_KINDS:
            for index, form in enumerate(getattr(self, kind)):
                variants = inflect(form) if kind == "demonyms" else [form]
                found.extend((normalize(variant).strip(), f"{kind}.{index}") for variant in variants)
        return found

    def forms(self) -> list[str]:
        """Every normalized form of the entry, without repeats."""
        return list(dict.fromkeys(form for form, _ in self.sourced_forms()))


class GazetteerFile(BaseModel):
    """A gazetteer file as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = ""
    entries: list[Entry] = Field(min_length=1)
    ignore: list[str] = []


def inflect(demonym: str) -> list[str]:
    """A one-word demonym ending in ي with its inflections (مصري: مصرية، مصريون...); other demonyms as written."""
    if " " in demonym.strip() or not demonym.strip().endswith("ي"):
        return [demonym]
    return [demonym.strip() + ending for ending in DEMONYM_ENDINGS]


class Gazetteer:
    """A loaded gazetteer: its entries, and a matcher that finds their codes in text."""

    def __init__(self, path: Path, content: GazetteerFile):
        self.path = path
        self.entries = content.entries
        self.ignore = [normalize(phrase).strip() for phrase in content.ignore]

    def add_to(self, index: PhraseIndex, group: int) -> None:
        """Index every form under `group` with its entry's code as payload (ignored phrases: None)."""
        for entry in self.entries:
            for form in entry.forms():
                index.add(*parse_term(form), group, entry.code)
        for phrase in self.ignore:
            index.add(*parse_term(phrase), group, None)

    @cached_property
    def _index(self) -> PhraseIndex:
        index = PhraseIndex()
        self.add_to(index, 0)
        return index

    def find(self, text: str) -> list[str]:
        """The codes of the entries named in `text`, in order, one per mention."""
        return [code for _, code in self._index.find(words(text)) if code is not None]


def load_gazetteer(path: str | Path) -> Gazetteer:
    """Read and check a gazetteer file; problems are TaawunErrors naming the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise TaawunError(f"{path}: no such file")
    content = validate_config(GazetteerFile, read_yaml(path), str(path))
    _check_forms(content, path)
    return Gazetteer(path, content)


def _check_forms(content: GazetteerFile, path: Path) -> None:
    """Codes once; forms Arabic; no form (up to the article) in two entries, nor both a form and ignored."""
    codes: dict[str, str] = {}
    owner: dict[tuple[str, ...], tuple[str, str]] = {}
    for number, entry in enumerate(content.entries):
        where = f"entries.{number}"
        if entry.code in codes:
            raise TaawunError(f"{path}: {where}.code: {entry.code!r} is also the code of {codes[entry.code]}")
        codes[entry.code] = where
        for form, key in entry.sourced_forms():
            _check_arabic(form, f"{where}.{key}", path)
            first = owner.setdefault(_key(form), (entry.code, f"{where}.{key}"))
            if first[0] != entry.code:
                raise TaawunError(f"{path}: {where}.{key}: {form!r} is also a form of {first[0]} ({first[1]}); a "
                                  "form may name one entry only (leave an ambiguous form out)")
    for number, phrase in enumerate(content.ignore):
        form = normalize(phrase).strip().removesuffix("*")
        _check_arabic(form, f"ignore.{number}", path)
        if _key(form) in owner:
            code, where = owner[_key(form)]
            raise TaawunError(f"{path}: ignore.{number}: {form!r} is also a form of {code} ({where})")


def _check_arabic(form: str, where: str, path: Path) -> None:
    if not _ARABIC.match(form):
        raise TaawunError(f"{path}: {where}: {form!r} is not Arabic; write forms in Arabic letters and spaces")


def _key(form: str) -> tuple[str, ...]:
    """A form up to the article: a form written without it also matches the word with it."""
    return tuple(word[2:] if word.startswith(ARTICLE) and len(word) > 3 else word for word in words(form))
