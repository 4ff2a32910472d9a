"""Invisible marks (zero-width, bidi), Arabic presentation forms and Farsi yeh/kaf: folded away by normalization, so
the same word is the same token, and a text of nothing but marks is empty."""

from __future__ import annotations

import json
import unicodedata

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import labelled_articles, run_cli
from train.text.clean import CleaningOptions, NormalizationOptions, TextPipeline, normalize_arabic

MARKS = ("\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff\u061c")
PLAIN = "السلام عليكم في الكتاب"
# The same words in presentation forms (contextual glyphs, the lam-alef ligature), as PDF and OCR text has them.
PRESENTATION = "\ufedf\ufef7\ufee3\ufee8"  # للأمن
FARSI = "كتاب يكتب".replace("ك", "\u06a9").replace("ي", "\u06cc")


def pipeline(**options: bool) -> TextPipeline:
    return TextPipeline(CleaningOptions(), NormalizationOptions(**options))


def test_marks_inside_words_are_removed_and_whitespace_stays_single():
    text = "السلام\u200c عليكم \u200f\u202bفي\u202c \u2067الكتاب\u2069\ufeff"
    assert pipeline()(text).text == normalize_arabic(PLAIN, NormalizationOptions())


def test_presentation_forms_fold_to_the_base_letters_and_then_normalize():
    assert normalize_arabic(PRESENTATION, NormalizationOptions()) == "للامن"  # NFKC, then alef folding
    assert normalize_arabic(PRESENTATION, NormalizationOptions(normalize_alef=False)) == "للأمن"
    assert normalize_arabic("\ufefb \ufdf2", NormalizationOptions()) == "لا الله"  # ligatures expand


def test_farsi_yeh_and_kaf_become_arabic():
    assert normalize_arabic(FARSI, NormalizationOptions()) == "كتاب يكتب"
    assert normalize_arabic("\ufbfc", NormalizationOptions()) == "ي"  # a presentation form of Farsi yeh


@pytest.mark.parametrize(("option", "text"), [("remove_invisible_marks", "أ\u200fب"),
                                              ("fold_presentation_forms", PRESENTATION),
                                              ("normalize_farsi_letters", FARSI)])
def test_each_new_option_can_be_switched_off(option, text):
    everything_off = NormalizationOptions(**dict.fromkeys(NormalizationOptions.model_fields, False))
    assert normalize_arabic(text, everything_off.model_copy(update={option: False})) == text
    assert normalize_arabic(text, everything_off.model_copy(update={option: True})) != text


def test_only_presentation_forms_are_nfkc_folded():
    # NFKC elsewhere would change meaningful characters: superscripts, fractions, full-width Latin, the ligature fi.
    text = "x² ½ ＡＢ ﬁ ٠١٢"
    assert normalize_arabic(text, NormalizationOptions(normalize_digits=False)) == text


PRESENTATION_CHARS = [chr(c) for c in (*range(0xFB50, 0xFE00), *range(0xFE70, 0xFF00))
                      if unicodedata.normalize("NFKC", chr(c)) != chr(c)]
ARABIC = st.characters(min_codepoint=0x0600, max_codepoint=0x06FF)
FOLDABLE = st.text(st.one_of(st.sampled_from(PRESENTATION_CHARS), st.sampled_from(MARKS), st.sampled_from(" "), ARABIC),
                   max_size=120)


@settings(max_examples=200, deadline=None)
@given(FOLDABLE)
def test_normalization_with_the_new_options_is_idempotent_and_leaves_no_mark(text):
    once = normalize_arabic(text, NormalizationOptions())
    assert normalize_arabic(once, NormalizationOptions()) == once
    assert not set(once) & (set(MARKS) | set(PRESENTATION_CHARS) | {"\u06cc", "\u06a9"})


def test_build_rejects_a_text_of_only_invisible_marks_with_its_line(corpus, tmp_path):
    articles = labelled_articles(12)
    articles[5]["text"] = "\u200f\u200b \u202b\u202c\ufeff\u2066"
    articles[7] = {**articles[6], "id": "a007",
                   "text": articles[6]["text"].replace(" ", " \u200c").replace("ك", "\u06a9")}
    result = run_cli("data", "build", corpus(articles, validation={"on_invalid": "reject"}))
    assert result.exit_code == 0, result.output
    rejects = [json.loads(line) for line in (tmp_path / "built" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["where"].rsplit("/", 1)[-1], r["id"], r["kind"]) for r in rejects] == [
        ("articles.jsonl:6", "a005", "empty_text")]
    report = json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))
    # a006 and a007 differ only by marks and a Farsi kaf: after normalization they are one text, an exact duplicate.
    assert report["duplicates"]["exact_removed"] == 1
    built = datasets.load_from_disk(str(tmp_path / "built"))
    assert len({row["id"] for split in built.values() for row in split} & {"a006", "a007"}) == 1


def test_build_fails_on_a_text_of_only_invisible_marks(corpus):
    articles = labelled_articles(12)
    articles[5]["text"] = "\u200b\u200f"
    result = run_cli("data", "build", corpus(articles))
    assert result.exit_code == 1
    assert "articles.jsonl:6 [a005]: text is empty after cleaning" in result.output
