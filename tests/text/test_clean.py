"""Tests for train.text.clean: cleaning scraped article text and normalizing Arabic."""


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.helpers import SHARED_DATA
from train.text.clean import (
    BUILTIN_BOILERPLATE,
    REMOVAL_KINDS,
    CleaningOptions,
    NormalizationOptions,
    TextPipeline,
    clean_text,
    normalize_arabic,
)

SEED_ARTICLE = SHARED_DATA / "seed" / "article.txt"

NO_CLEANING = CleaningOptions(
    strip_html=False,
    strip_urls=False,
    strip_emails=False,
    strip_boilerplate=False,
    collapse_whitespace=False,
)
NORMALIZATION_FIELDS = list(NormalizationOptions.model_fields)
NO_NORMALIZATION = NormalizationOptions(**dict.fromkeys(NORMALIZATION_FIELDS, False))

BODY_BEFORE = "قال الوزير إن المفاوضات ستستمر الأسبوع المقبل."
BODY_AFTER = "وأضاف أن الحكومة ملتزمة بتنفيذ الاتفاق كاملاً."


def only(**fields: bool) -> CleaningOptions:
    """Cleaning options with every step off except those given."""
    return NO_CLEANING.model_copy(update=fields)


# --- the seed article -------------------------------------------------------------------------


@pytest.fixture
def seed_text() -> str:
    if not SEED_ARTICLE.exists():
        pytest.skip(f"seed article not found at {SEED_ARTICLE}; it lives in the shared data checkout")
    return SEED_ARTICLE.read_text(encoding="utf-8")


def test_seed_article_loses_its_comment_form_and_keeps_its_body(seed_text):
    lines = [line.strip() for line in seed_text.splitlines() if line.strip()]
    headline, last_paragraph = lines[0], lines[-3]
    assert lines[-2] == "اترك تعليقاً", "the seed article changed; update this test"

    cleaned = clean_text(seed_text, CleaningOptions())

    assert "اترك تعليق" not in cleaned.text
    assert "لن يتم نشر" not in cleaned.text
    assert "الحقول الإلزامية" not in cleaned.text
    assert cleaned.text.startswith(headline + "\n\n")
    assert cleaned.text.endswith(last_paragraph)
    assert "\xa0" not in cleaned.text
    assert cleaned.removed["boilerplate"] >= 2
    assert cleaned.removed["chars"] == len(seed_text) - len(cleaned.text)


# --- HTML, URLs, e-mail -----------------------------------------------------------------------


def test_html_tags_become_paragraph_breaks_and_entities_are_decoded():
    raw = "<div><p>الأول &amp; <b>الثاني</b></p><p>الثالث&nbsp;والرابع</p><br/>الخامس &lt;ب&gt;</div>"

    cleaned = clean_text(raw, CleaningOptions())

    assert cleaned.text == "الأول & الثاني\n\nالثالث والرابع\n\nالخامس <ب>"
    assert cleaned.removed["html_tags"] == 9
    assert cleaned.removed["html_entities"] == 4
    assert cleaned.removed["chars"] == len(raw) - len(cleaned.text)


def test_inline_tags_vanish_without_splitting_the_line():
    cleaned = clean_text('كتب <a href="/x">الكاتب</a> <span>مقالاً</span>', only(strip_html=True))

    assert cleaned.text == "كتب الكاتب مقالاً"
    assert cleaned.removed["html_tags"] == 4


def test_nbsp_entity_decodes_to_a_plain_space_even_without_whitespace_collapsing():
    cleaned = clean_text("أ&nbsp;ب &quot;ج&quot; د&#1611;", only(strip_html=True))

    assert cleaned.text == 'أ ب "ج" د\u064b'
    assert cleaned.removed["html_entities"] == 4


def test_scripts_styles_and_comments_go_with_their_content():
    raw = "<style>p {color: red}</style>نص<!-- إعلان --><script>var a = 1 < 2;</script> المقال"

    assert clean_text(raw, only(strip_html=True)).text == "نص المقال"


def test_a_less_than_sign_in_prose_is_not_a_tag():
    assert clean_text("أ < ب و ج > د", only(strip_html=True)).text == "أ < ب و ج > د"


def test_urls_are_removed_but_trailing_punctuation_stays():
    raw = "المصدر: https://example.com/news?id=5. وانظر www.site.org، وأيضاً HTTP://X.COM/a"

    cleaned = clean_text(raw, only(strip_urls=True))

    assert cleaned.text == "المصدر: . وانظر ، وأيضاً "
    assert cleaned.removed["urls"] == 3


def test_emails_are_removed_whole_even_with_www_in_the_domain():
    raw = "راسلونا على info@www.site.com أو news.desk@example.co.uk."

    cleaned = clean_text(raw, CleaningOptions())

    assert cleaned.text == "راسلونا على أو ."
    assert cleaned.removed["emails"] == 2
    assert cleaned.removed["urls"] == 0


def test_collapse_whitespace_keeps_paragraphs():
    raw = "  سطر\t\t أول  \n\n\n\n  سطر\u00a0ثان \r\nسطر ثالث\n \n"

    assert clean_text(raw, only(collapse_whitespace=True)).text == "سطر أول\n\nسطر ثان\nسطر ثالث"


# --- boilerplate ------------------------------------------------------------------------------

BOILERPLATE_LINES = [
    "اترك تعليقاً",
    "اترك تعليقا",
    "أضف تعليق",
    "اترك رداً",
    "لن يتم نشر عنوان بريدك الإلكتروني. الحقول الإلزامية مشار إليها بـ *",
    "لن يتم نشر عنوان بريدك الإلكتروني. الحقول الإلزامية مشار إليها بـ",
    "لن يتم نشر عنوان بريدك الإلكتروني.",
    "اقرأ أيضاً: الحكومة تعلن خطة جديدة للنقل",
    "اقرأ أيضا الحكومة تعلن خطة جديدة للنقل",
    "إقرأ أيضاً",
    "شارك هذا المقال",
    "شارك المقال",
    "تابعونا على فيسبوك وتويتر",
    "تابعونا على إنستغرام",
    "جميع الحقوق محفوظة © 2024",
    "© 2025 صحيفة الخبر. جميع الحقوق محفوظة",
    "للمزيد من الأخبار تابعوا موقعنا",
    "حمّل تطبيق الخبر الآن",
    "حمل تطبيق الخبر على هاتفك",
    "(الآراء الواردة في هذا المقال تعبر عن رأي كاتبها ولا تعبر بالضرورة عن رأي الموقع)",
]


@pytest.mark.parametrize("line", BOILERPLATE_LINES)
def test_builtin_boilerplate_line_is_removed_between_body_paragraphs(line):
    raw = f"{BODY_BEFORE}\n\n  {line}  \n\n{BODY_AFTER}"

    cleaned = clean_text(raw, CleaningOptions())

    assert cleaned.text == f"{BODY_BEFORE}\n\n{BODY_AFTER}"
    assert cleaned.removed["boilerplate"] == 1


@pytest.mark.parametrize(
    "sentence",
    [
        "رفض المتحدث التعليق على الأنباء، وقال إنه سيترك تعليقاً مفصلاً للمؤتمر الصحفي.",
        "اترك تعليقاً على هذا القرار للجنة، قال الوزير للصحفيين.",
        "وأكدت الشركة أن جميع الحقوق محفوظة لها بموجب العقد الموقع مع الاتحاد منذ عام 2019 "
        "وحتى نهاية الموسم المقبل على الأقل، "
        "مشيرة إلى أنها ستلجأ إلى القضاء إذا لزم الأمر للدفاع عن مصالحها ومصالح المساهمين.",
        "وقال المدرب: تابعونا على مدار الموسم وسترون فريقاً مختلفاً.",
    ],
)
def test_body_sentences_that_merely_mention_boilerplate_words_stay(sentence):
    raw = f"{BODY_BEFORE}\n{sentence}\n{BODY_AFTER}"

    cleaned = clean_text(raw, CleaningOptions())

    assert sentence in cleaned.text
    assert cleaned.removed["boilerplate"] == 0


def test_boilerplate_after_markup_and_links_are_stripped():
    raw = f"<p>{BODY_BEFORE}</p><p>تابعونا على فيسبوك https://facebook.com/site</p><p>{BODY_AFTER}</p>"

    cleaned = clean_text(raw, CleaningOptions())

    assert cleaned.text == f"{BODY_BEFORE}\n\n{BODY_AFTER}"
    assert cleaned.removed["boilerplate"] == 1


def test_builtin_boilerplate_can_be_switched_off():
    raw = f"{BODY_BEFORE}\nاترك تعليقاً\n{BODY_AFTER}"

    cleaned = clean_text(raw, CleaningOptions(strip_boilerplate=False))

    assert "اترك تعليقاً" in cleaned.text
    assert cleaned.removed["boilerplate"] == 0


def test_user_pattern_removes_what_it_matches_and_is_counted():
    options = CleaningOptions(boilerplate_patterns=[r"^المصدر: وكالات$\n?", r"\[إعلان\]"])
    raw = f"{BODY_BEFORE} [إعلان]\nالمصدر: وكالات\n{BODY_AFTER}\nاترك تعليقاً"

    cleaned = clean_text(raw, options)

    assert cleaned.text == f"{BODY_BEFORE}\n{BODY_AFTER}"
    assert cleaned.removed["boilerplate"] == 3


def test_invalid_user_pattern_is_rejected_at_load_naming_it():
    with pytest.raises(ValidationError) as excinfo:
        CleaningOptions(boilerplate_patterns=[r"^ok$", r"(اقرأ أيضا"])

    message = str(excinfo.value)
    assert "(اقرأ أيضا" in message
    assert "missing )" in message


def test_user_pattern_matching_nothing_but_the_empty_string_is_rejected():
    with pytest.raises(ValidationError, match="empty string"):
        CleaningOptions(boilerplate_patterns=[r"^\s*$"])


def test_unknown_option_keys_are_rejected():
    with pytest.raises(ValidationError, match="strip_htm"):
        CleaningOptions(strip_htm=True)
    with pytest.raises(ValidationError, match="normalise_alef"):
        NormalizationOptions(normalise_alef=True)


def test_builtin_patterns_are_whole_line_regexes():
    assert BUILTIN_BOILERPLATE and all(pattern.startswith("^") for pattern in BUILTIN_BOILERPLATE)


# --- normalization ----------------------------------------------------------------------------

# (option, input, output with only that option on, the character that option alone changes)
NORMALIZATION_CASES = [
    ("remove_diacritics", "أَحْمَدُ", "أحمد", "\u064e"),
    ("remove_diacritics", "هٰذا", "هذا", "\u0670"),
    ("remove_tatweel", "كـــبير", "كبير", "\u0640"),
    ("normalize_alef", "أحمد إلى آخر ٱلكتاب", "احمد الى اخر الكتاب", "أ"),
    ("normalize_alef_maqsura", "مستشفى", "مستشفي", "ى"),
    ("normalize_teh_marbuta", "مدرسة", "مدرسه", "ة"),
    ("normalize_digits", "٢٠٢٤ و۱۴۰۳", "2024 و1403", "٢"),
]


@pytest.mark.parametrize(("option", "raw", "expected", "_char"), NORMALIZATION_CASES)
def test_each_normalization_on_its_own(option, raw, expected, _char):
    options = NO_NORMALIZATION.model_copy(update={option: True})

    assert normalize_arabic(raw, options) == expected


@pytest.mark.parametrize(("option", "raw", "_expected", "char"), NORMALIZATION_CASES)
def test_each_normalization_off_leaves_its_character_alone(option, raw, _expected, char):
    everything_else = NormalizationOptions(**dict.fromkeys(NORMALIZATION_FIELDS, True))
    options = everything_else.model_copy(update={option: False})

    assert char in normalize_arabic(raw, options)


def test_default_normalization():
    assert normalize_arabic("أَحْمَد كـــبير في ٢٠٢٤", NormalizationOptions()) == "احمد كبير في 2024"
    # Maqsura and teh marbuta change meaning in places ("على"/"علي"), so they are opt-in.
    assert normalize_arabic("مستشفى المدينة", NormalizationOptions()) == "مستشفى المدينة"


def test_pipeline_cleans_then_normalizes():
    pipeline = TextPipeline(CleaningOptions(), NormalizationOptions())

    result = pipeline("<p>أَحْمَد&nbsp;كـــبير</p><p>عام ٢٠٢٤ https://x.com</p>\nاترك تعليقاً")

    assert result.text == "احمد كبير\n\nعام 2024"
    assert set(result.removed) == set(REMOVAL_KINDS)
    assert result.removed["boilerplate"] == 1


# --- properties -------------------------------------------------------------------------------

ARABIC = st.characters(min_codepoint=0x0600, max_codepoint=0x06FF)
LATIN_DIGITS = st.sampled_from("abcXYZ0123456789")
WHITESPACE = st.sampled_from(" \t\n\r\u00a0")
MIXED_TEXT = st.text(st.one_of(ARABIC, LATIN_DIGITS, WHITESPACE), max_size=200)
MARKUP = st.sampled_from(
    ["<p>", "</div>", "<b>", "&amp;", "&nbsp;", "&#1611;", "http://a.b/c", "www.x.y", "a@b.cc"]
)
HTMLISH_TEXT = st.lists(st.one_of(ARABIC, LATIN_DIGITS, WHITESPACE, MARKUP), max_size=80).map("".join)
NORMALIZATIONS = st.builds(NormalizationOptions, **{name: st.booleans() for name in NORMALIZATION_FIELDS})

DIACRITICS = {*map(chr, range(0x064B, 0x0660)), "\u0670", *map(chr, range(0x06D6, 0x06EE))}
EASTERN_DIGITS = {*map(chr, range(0x0660, 0x066A)), *map(chr, range(0x06F0, 0x06FA))}


@settings(max_examples=200, deadline=None)
@given(MIXED_TEXT, NORMALIZATIONS)
def test_normalize_is_idempotent(text, options):
    once = normalize_arabic(text, options)

    assert normalize_arabic(once, options) == once


@settings(deadline=None)
@given(st.text())
def test_everything_off_returns_the_input_unchanged(text):
    assert normalize_arabic(text, NO_NORMALIZATION) == text
    cleaned = clean_text(text, NO_CLEANING)
    assert cleaned.text == text
    assert cleaned.removed == dict.fromkeys(REMOVAL_KINDS, 0)


@settings(deadline=None)
@given(st.one_of(MIXED_TEXT, HTMLISH_TEXT))
def test_pipeline_output_has_no_diacritics_tatweel_or_eastern_digits(text):
    pipeline = TextPipeline(CleaningOptions(), NormalizationOptions())

    result = pipeline(text)

    assert not set(result.text) & (DIACRITICS | EASTERN_DIGITS | {"\u0640"})


@settings(deadline=None)
@given(st.one_of(MIXED_TEXT, HTMLISH_TEXT))
def test_removed_char_count_is_never_negative_and_matches_lengths(text):
    cleaned = clean_text(text, CleaningOptions())

    assert cleaned.removed["chars"] >= 0
    assert cleaned.removed["chars"] == max(0, len(text) - len(cleaned.text))
    assert all(count >= 0 for count in cleaned.removed.values())
