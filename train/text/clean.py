"""Cleaning and Arabic normalization of scraped article text.

Cleaning removes what is not the article: markup, links, e-mail addresses and site furniture such as
comment forms and "read also" links. Normalization folds spelling variants of one word together
(diacritics, tatweel, alef forms, digit scripts), and before cleaning drops invisible marks and folds presentation
forms and Farsi letters, so that the cleaning patterns see plain text. A TextPipeline compiles both once and applies
them to many texts; `clean_text` and `normalize_arabic` are one-off conveniences over it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

REMOVAL_KINDS = ("html_tags", "html_entities", "urls", "emails", "boilerplate", "chars")


class CleaningOptions(BaseModel):
    """What `clean_text` removes; every step can be switched off on its own."""

    model_config = ConfigDict(extra="forbid")

    strip_html: bool = True
    strip_urls: bool = True
    strip_emails: bool = True
    strip_boilerplate: bool = True
    boilerplate_patterns: list[str] = Field(default_factory=list)
    collapse_whitespace: bool = True

    @field_validator("boilerplate_patterns")
    @classmethod
    def check_patterns_compile(cls, patterns: list[str]) -> list[str]:
        """Fail at load, naming the pattern, rather than on the first article."""
        for pattern in patterns:
            try:
                compiled = re.compile(pattern, re.MULTILINE)
            except re.error as err:
                raise ValueError(
                    f"boilerplate pattern {pattern!r} is not a valid regular expression: {err}. "
                    "Fix the pattern (escape literal characters such as ( [ * + ? with a backslash)."
                ) from err
            if compiled.fullmatch(""):
                # An empty match would "remove" nothing at every position and inflate the counts.
                raise ValueError(
                    f"boilerplate pattern {pattern!r} matches the empty string, so it would remove "
                    "nothing; make it require at least one character."
                )
        return patterns


class NormalizationOptions(BaseModel):
    """Which Arabic spelling variants `normalize_arabic` folds together."""

    model_config = ConfigDict(extra="forbid")

    remove_diacritics: bool = True
    remove_tatweel: bool = True
    normalize_alef: bool = True
    normalize_alef_maqsura: bool = False
    normalize_teh_marbuta: bool = False
    normalize_digits: bool = True
    # Models saved before these three existed load with them on: their texts rarely hold such characters.
    remove_invisible_marks: bool = True
    fold_presentation_forms: bool = True
    normalize_farsi_letters: bool = True


# Horizontal whitespace: \s without the newline, so NBSP and tabs count but lines stay lines.
_H = r"[^\S\n]"
# Tanween fath is typed either before or after the alef ("تعليقاً" / "تعليقًا"), or left out.
_AN = r"(?:اً|ًا|ا)"

# What a boilerplate line says, between optional leading and trailing whitespace. Tails are bounded
# ({0,N}) so that a long body paragraph that happens to start the same way is never taken for furniture.
_BOILERPLATE_LINES = [
    # Comment forms: "اترك تعليقاً", "أضف تعليق", "اترك رداً", "إلغاء الرد".
    rf"(?:اترك|أترك|أضف|اضف|أكتب|اكتب){_H}+(?:تعليق{_AN}?|تعليقك|رد{_AN}?|ردك){_H}*[:.!]?",
    r"إلغاء[^\S\n]+الرد",
    # "لن يتم نشر عنوان بريدك الإلكتروني. الحقول الإلزامية مشار إليها بـ *" and shorter variants.
    rf"لن{_H}+يتم{_H}+نشر{_H}+(?:عنوان{_H}+)?بريدك{_H}+(?:الإلكتروني|الالكتروني)[^\n]{{0,120}}",
    # "اقرأ أيضاً: <headline>".
    rf"(?:اقرأ|إقرأ|أقرأ|اقرا|إقرا){_H}+(?:أيض|ايض){_AN}[^\n]{{0,200}}",
    # "شارك هذا المقال", "شارك المقال على فيسبوك".
    rf"(?:شارك|شاركوا){_H}+(?:هذا{_H}+)?(?:المقال|المقالة|الخبر|الموضوع)"
    rf"(?:{_H}+(?:على|عبر)[^\n]{{0,80}})?{_H}*[:.!]?",
    # "تابعونا على فيسبوك وتويتر".
    rf"تابع(?:ونا|نا){_H}+(?:على|عبر|في){_H}[^\n]{{0,120}}",
    # "جميع الحقوق محفوظة © 2024", "© 2025 <site>. جميع الحقوق محفوظة", "© رويترز".
    rf"[^\n]{{0,60}}?(?:جميع|كل){_H}+الحقوق{_H}+محفوظة[^\n]{{0,80}}",
    r"(?:©|\([cC]\)|[Cc]opyright)[^\n]{0,120}",
    # "للمزيد من الأخبار تابعوا ...".
    rf"للمزيد{_H}+من{_H}+(?:الأخبار|الاخبار|أخبار|اخبار)[^\n]{{0,150}}",
    # "حمّل تطبيق <site> الآن".
    rf"(?:(?:حم|نز)ّ?ل(?:وا)?|(?:قم{_H}+ب)?تحميل){_H}+تطبيق[^\n]{{0,150}}",
    # "(الآراء الواردة في هذا المقال تعبر عن رأي كاتبها ...)".
    rf"(?:[(\[]{_H}*)?(?:الآراء|الاراء){_H}+(?:الواردة|المنشورة|المذكورة)[^\n]{{0,120}}?"
    rf"(?:تعبر|تعبّر|تعكس|تمثل)[^\n]{{0,200}}",
    rf"(?:[(\[]{_H}*)?(?:هذا{_H}+)?المقال{_H}+(?:يعبر|يعبّر){_H}+عن{_H}+رأي[^\n]{{0,150}}",
]

# Each built-in matches one whole line and its newline; compile with re.MULTILINE.
BUILTIN_BOILERPLATE: list[str] = [rf"^{_H}*(?:{line}){_H}*$\n?" for line in _BOILERPLATE_LINES]

_BLOCK_TAGS = (
    "p|br|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|thead|tbody|blockquote|section|article|header|"
    "footer|nav|aside|main|hr|pre|figure|figcaption|form"
)
# Scripts, styles and comments go whole: their content is code, not prose. `<` must be followed by a
# letter for a tag, so "أ < ب" in the text survives.
_NON_TEXT_MARKUP = re.compile(
    r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<![^<>]*>|<\?[^<>]*>", re.IGNORECASE | re.DOTALL
)
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK_TAGS})\b[^<>]*>", re.IGNORECASE)
_INLINE_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# A URL ends before trailing punctuation, which belongs to the sentence. "www." right after "@" or a
# dot is part of an e-mail address or host, left for the e-mail step.
_URL = re.compile(
    r"(?:https?://|(?<![\w@.])www\.)[^\s<>\"'«»]*[^\s<>\"'«».,;:!?)\]}،؛؟]", re.IGNORECASE
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARRIAGE_RETURN = re.compile(r"\r\n?")
# Runs that are not already a single plain space; matching every lone space would be slow for nothing.
_SPACE_RUN = re.compile(r"(?: [^\S\n]|[^\S\n ])[^\S\n]*")
# After _SPACE_RUN a line edge holds at most one space, so stripping lines is this one cheap pass.
_SPACE_AT_LINE_EDGE = re.compile(r" \n ?|\n ")
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")

_DIACRITICS = [*range(0x064B, 0x0660), 0x0670, *range(0x06D6, 0x06EE)]
_TATWEEL = 0x0640
_ALEF_FORMS = "أإآٱ"
_ALEF_MAQSURA = "ى"
_TEH_MARBUTA = "ة"
# Zero-width characters, directional marks and embeddings, the BOM as a zero-width no-break space, the Arabic letter
# mark: they split or join words invisibly, so one word would make several tokens.
_INVISIBLE_MARKS = [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF, 0x061C]
# Presentation forms A and B: contextual glyphs and ligatures (text from PDFs and OCR). NFKC on these alone gives the
# base letters; NFKC on everything would also rewrite superscripts, fractions and full-width Latin.
_PRESENTATION_FORMS = [*range(0xFB50, 0xFE00), *range(0xFE70, 0xFF00)]
_FARSI_LETTERS = {0x06CC: "ي", 0x06A9: "ك"}  # Farsi yeh and keheh, typed on Persian keyboards

# clean_text is cleaning alone; the pipeline skips translate when the table is empty.
_NO_NORMALIZATION = NormalizationOptions(
    remove_diacritics=False,
    remove_tatweel=False,
    normalize_alef=False,
    normalize_alef_maqsura=False,
    normalize_teh_marbuta=False,
    normalize_digits=False,
    remove_invisible_marks=False,
    fold_presentation_forms=False,
    normalize_farsi_letters=False,
)


@dataclass
class CleanedText:
    """A cleaned text and how many of each kind of thing cleaning removed (see REMOVAL_KINDS)."""

    text: str
    removed: dict[str, int]


class TextPipeline:
    """Cleaning then normalization, compiled once (regexes, str.translate tables) and applied to many texts."""

    def __init__(self, cleaning: CleaningOptions, normalization: NormalizationOptions):
        self.cleaning = cleaning
        self.normalization = normalization
        self._boilerplate = compile_boilerplate(cleaning)
        self._fold_table = build_fold_table(normalization)
        self._table = build_translation_table(normalization)

    def __call__(self, text: str) -> CleanedText:
        """Fold invisible marks and letter forms, clean, then normalize; the removal counts are those of cleaning."""
        cleaned = self.clean(self.fold(text))
        cleaned.text = self.normalize(cleaned.text)
        return cleaned

    def fold(self, text: str) -> str:
        """Drop invisible marks, fold presentation forms and Farsi letters (before cleaning: a mark inside "اقرأ
        أيضاً" would hide it from the boilerplate patterns, and one between two spaces would keep both)."""
        return text.translate(self._fold_table) if self._fold_table else text

    def clean(self, text: str) -> CleanedText:
        """Remove markup, links, addresses and boilerplate, then tidy whitespace."""
        raw_length = len(text)
        removed = dict.fromkeys(REMOVAL_KINDS, 0)
        options = self.cleaning
        if options.strip_html:
            text = self._strip_html(text, removed)
        if options.strip_urls:
            text, removed["urls"] = _URL.subn("", text)
        if options.strip_emails and "@" in text:
            text, removed["emails"] = _EMAIL.subn("", text)
        for pattern in self._boilerplate:
            text, count = pattern.subn("", text)
            removed["boilerplate"] += count
        if options.collapse_whitespace:
            text = collapse_whitespace(text)
        removed["chars"] = max(0, raw_length - len(text))
        return CleanedText(text=text, removed=removed)

    def normalize(self, text: str) -> str:
        """Fold Arabic spelling variants with one str.translate pass."""
        return text.translate(self._table) if self._table else text

    @staticmethod
    def _strip_html(text: str, removed: dict[str, int]) -> str:
        """Drop tags (block tags become newlines), then decode entities; counts go into `removed`."""
        if "<" in text:
            text, dropped = _NON_TEXT_MARKUP.subn("", text)
            text, blocks = _BLOCK_TAG.subn("\n", text)
            text, inline = _INLINE_TAG.subn("", text)
            removed["html_tags"] = dropped + blocks + inline
        if "&" in text:
            removed["html_entities"] = len(_ENTITY.findall(text))
            # &nbsp; is layout, not content: a plain space lets whitespace collapsing treat it as one.
            text = html.unescape(text).replace("\xa0", " ")
        return text


def compile_boilerplate(options: CleaningOptions) -> list[re.Pattern[str]]:
    """Compile the built-in boilerplate (as one alternation) and the user's patterns, all re.MULTILINE."""
    patterns = []
    if options.strip_boilerplate:
        patterns.append(re.compile("|".join(BUILTIN_BOILERPLATE), re.MULTILINE))
    # User patterns stay separate: joining them would renumber their groups and break backreferences.
    patterns.extend(re.compile(pattern, re.MULTILINE) for pattern in options.boilerplate_patterns)
    return patterns


def build_translation_table(options: NormalizationOptions) -> dict[int, str | None]:
    """Build the str.translate table for the chosen normalizations; empty when none is chosen."""
    table: dict[int, str | None] = {}
    if options.remove_diacritics:
        table.update(dict.fromkeys(_DIACRITICS))
    if options.remove_tatweel:
        table[_TATWEEL] = None
    if options.normalize_alef:
        table.update(dict.fromkeys(map(ord, _ALEF_FORMS), "ا"))
    if options.normalize_alef_maqsura:
        table[ord(_ALEF_MAQSURA)] = "ي"
    if options.normalize_teh_marbuta:
        table[ord(_TEH_MARBUTA)] = "ه"
    if options.normalize_digits:
        for value in range(10):
            table[0x0660 + value] = str(value)  # Eastern Arabic ٠-٩
            table[0x06F0 + value] = str(value)  # Persian ۰-۹
    return table


def build_fold_table(options: NormalizationOptions) -> dict[int, str | None]:
    """Build the str.translate table of the steps applied before cleaning; empty when none is chosen.

    A presentation form maps to its NFKC form with the other chosen folds applied to it, so one pass is enough.
    """
    table: dict[int, str | None] = {}
    if options.remove_invisible_marks:
        table.update(dict.fromkeys(_INVISIBLE_MARKS))
    if options.normalize_farsi_letters:
        table.update(_FARSI_LETTERS)
    if options.fold_presentation_forms:
        letters = dict(table)
        for code in _PRESENTATION_FORMS:
            folded = unicodedata.normalize("NFKC", chr(code))
            if folded != chr(code):
                table[code] = folded.translate(letters)
    return table


def collapse_whitespace(text: str) -> str:
    """Make runs of spaces one space and 3+ newlines two (paragraph breaks stay); strip lines and text."""
    if "\r" in text:
        text = _CARRIAGE_RETURN.sub("\n", text)
    text = _SPACE_RUN.sub(" ", text)
    text = _SPACE_AT_LINE_EDGE.sub("\n", text)
    text = _EXTRA_BLANK_LINES.sub("\n\n", text)
    return text.strip()


def clean_text(text: str, options: CleaningOptions) -> CleanedText:
    """Clean one text; for many texts build a TextPipeline once instead."""
    return TextPipeline(options, _NO_NORMALIZATION).clean(text)


def normalize_arabic(text: str, options: NormalizationOptions) -> str:
    """Normalize one text (the folds before cleaning included); for many texts build a TextPipeline once instead."""
    fold, table = build_fold_table(options), build_translation_table(options)
    text = text.translate(fold) if fold else text
    return text.translate(table) if table else text
