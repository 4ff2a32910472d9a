"""Labelling rules declared in a schema: keywords with proclitics, regular expressions, co-occurrence in a sentence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import SCHEMA
from train.schema import load_schema
from train.weak.rules import RuleSet

GAZETTEER = """\
entries:
  - {code: EG, names: [مصر], demonyms: [مصري], capitals: [القاهرة]}
  - {code: US, names: [الولايات المتحدة, أمريكا], demonyms: [أمريكي], capitals: [واشنطن]}
  - {code: FR, names: [فرنسا], demonyms: [فرنسي]}
  - {code: GN, names: [غينيا]}
  - {code: GQ, names: [غينيا الاستوائية]}
ignore: [أمريكا اللاتينية]
"""

RULES = """\
name: weak
gazetteers: {states: states.yaml}
tasks:
  - name: coop
    kind: binary
    labels: [yes, no]
    rules:
      - {name: two_states, label: yes, cooccur: {gazetteer: states, distinct: 2, terms: [تعاون أمني, مكافحة الإرهاب]}}
      - {name: twice, label: yes, min_count: 2, cooccur: {gazetteer: states, terms: [مكافحة الإرهاب]}}
      - {name: sport, label: no, keywords: [مباراة, كرة القدم]}
  - name: topic
    labels: [health, sports, other]
    rules:
      - {name: health, label: health, keywords: [مستشفى, لقاح*, منظمة الصحة العالمية]}
      - {name: sports_title, label: sports, scope: title, keywords: [مباراة]}
      - {name: goals, label: sports, regex: 'هدف(ين|ا)?', min_count: 2}
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rules")
    (folder / "states.yaml").write_text(GAZETTEER, encoding="utf-8")
    (folder / "schema.yaml").write_text(RULES, encoding="utf-8")
    return RuleSet.of(load_schema(folder / "schema.yaml"))


def fired(rules: RuleSet, title: str, text: str = "") -> dict[str, dict[str, str]]:
    """{task: {rule: label}} for the rules that voted."""
    votes = rules.vote(title, text)
    return {task.name: {rule.name: rule.label for rule, vote in zip(task.rules, votes[task.name], strict=True)
                        if vote >= 0}
            for task in rules.tasks}


@pytest.mark.parametrize("text", [
    "نقل المصابون إلى المستشفى", "وبالمستشفى", "للمستشفى", "فالمستشفى", "مستشفى",
    "واللقاحات الجديدة", "بلقاح", "أعلنت منظمة الصحة العالمية", "ومنظمة الصحة العالمية",
    "نُقِلَ إلى المُسْتَشْفَى", "المستشـــفى",  # diacritics and tatweel are ignored
])
def test_keywords_match_whole_words_with_proclitics(rules, text):
    assert fired(rules, "", text)["topic"] == {"health": "health"}


@pytest.mark.parametrize("text", ["مستشفيات", "المستشفيين", "منظمة الصحة", "صحة العالمية", "لقا"])
def test_keywords_do_not_match_other_words(rules, text):
    assert fired(rules, "", text)["topic"] == {}


def test_keyword_scope_title(rules):
    assert fired(rules, "مباراة حاسمة", "")["topic"] == {"sports_title": "sports"}
    assert fired(rules, "عنوان", "مباراة حاسمة")["topic"] == {}
    assert fired(rules, "عنوان", "مباراة حاسمة")["coop"] == {"sport": "no"}


def test_regex_with_min_count(rules):
    assert fired(rules, "", "سجل هدفا في الشوط الأول")["topic"] == {}
    assert fired(rules, "", "سجل هدفا في الشوط الأول ثم هدفين")["topic"] == {"goals": "sports"}


@pytest.mark.parametrize(("title", "text", "expected"), [
    ("", "بحثت مصر والولايات المتحدة التعاون الأمني", {"two_states": "yes"}),
    ("", "بحث الوزير المصري مع نظيره الأمريكي تعاونا في مكافحة الإرهاب", {"two_states": "yes"}),
    ("", "استقبلت القاهرة وفدا فرنسيا لبحث مكافحة الإرهاب", {"two_states": "yes"}),
    ("مصر وفرنسا تبحثان التعاون الأمني", "نص الخبر", {"two_states": "yes"}),  # the title is a sentence
    # Two states and the term in two different sentences: no vote.
    ("", "زار وزير مصري الولايات المتحدة. وبحث التعاون الأمني مع نظيره", {}),
    ("", "زار وزير مصري الولايات المتحدة؟ وبحث التعاون الأمني مع نظيره", {}),
    ("", "زار وزير مصري الولايات المتحدة\nوبحث التعاون الأمني مع نظيره", {}),
    # One state named three ways is one state.
    ("", "بحثت مصر مع المسؤولين المصريين في القاهرة التعاون الأمني", {}),
    # Longest name wins: Equatorial Guinea is not Guinea too; an ignored phrase is no state.
    ("", "غينيا الاستوائية تبحث التعاون الأمني", {}),
    ("", "غينيا الاستوائية وغينيا تبحثان التعاون الأمني", {"two_states": "yes"}),
    ("", "مصر ودول أمريكا اللاتينية تبحث التعاون الأمني", {}),
    # States without a term: no vote.
    ("", "مصر والولايات المتحدة تبحثان التجارة", {}),
])
def test_cooccurrence_within_one_sentence(rules, title, text, expected):
    assert fired(rules, title, text)["coop"] == expected


def test_cooccurrence_min_count_counts_sentences(rules):
    once = "بحثت مصر مع فرنسا مكافحة الإرهاب."
    assert fired(rules, "", once)["coop"] == {"two_states": "yes"}
    assert fired(rules, "", once + " وناقش الوزير المصري مع نظيره الفرنسي مكافحة الإرهاب.")["coop"] == {
        "two_states": "yes", "twice": "yes"}


def test_the_default_schema_finds_the_guideline_example():
    rules = RuleSet.of(load_schema(SCHEMA))
    title = "أميركا وبريطانيا ملتزمتان بدعم مصر في وجه الإرهاب"
    text = ("استقبل وزير الداخلية المصري سفيري الولايات المتحدة وبريطانيا، وأكد السفيران التزام بلديهما بالتعاون "
            "مع مصر في مكافحة الإرهاب، وأشاد الوزير بالتعاون الأمني بين البلدين.")
    votes = fired(rules, title, text)
    assert set(votes["bilateral_security_cooperation"].values()) == {"yes"}
    assert set(votes["topic"].values()) <= {"security"}
    sport = fired(rules, "الأهلي يفوز على الزمالك", "فاز النادي الأهلي في مباراة الدوري المصري لكرة القدم بهدفين.")
    assert set(sport["topic"].values()) == {"sports"}
    assert set(sport["bilateral_security_cooperation"].values()) == {"no"}


def test_an_absent_rule_votes_where_its_terms_are_missing(tmp_path):
    (tmp_path / "schema.yaml").write_text(
        "name: a\ntasks:\n  - name: coop\n    kind: binary\n    labels: [yes, no]\n    rules:\n"
        "      - {name: no_coop_words, label: no, absent: true, keywords: [تعاون*, تنسيق أمني*]}\n"
        "      - {name: few_coop_words, label: no, absent: true, min_count: 2, keywords: [تعاون*]}\n",
        encoding="utf-8")
    rules = RuleSet.of(load_schema(tmp_path / "schema.yaml"))
    assert fired(rules, "مباراة", "فاز الفريق")["coop"] == {"no_coop_words": "no", "few_coop_words": "no"}
    assert fired(rules, "", "بحث الجانبان التنسيق الأمني")["coop"] == {"few_coop_words": "no"}
    assert fired(rules, "", "تعاونا في مجالات عدة")["coop"] == {"few_coop_words": "no"}
    assert fired(rules, "التعاون", "والتعاونية")["coop"] == {}


@pytest.mark.parametrize(("term", "text", "hit"), [
    ("تعاون* أمني*", "تعاونا أمنيا", True), ("تعاون* أمني*", "وتعاونهما الأمني", True),
    ("تعاون* أمني*", "تعاون عسكري", False), ("تعاون أمني", "تعاونا أمنيا", False),
    ("كوفيد-19", "فيروس كوفيد 19", True), ("كوفيد-19", "فيروس كوفيد-19", True),
])
def test_a_star_ends_any_word_of_a_term(term, text, hit):
    from train.weak.terms import PhraseIndex, words

    index = PhraseIndex()
    index.add_terms([term], 0)
    assert bool(index.find(words(text))) is hit


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("اأإآٱبتةىيو ًٌٍَُِّْـٰۖ٠١٩۰۹ab.\n"), max_size=40))
def test_normalize_is_the_data_builds_default_normalization(text):
    from train.text.clean import NormalizationOptions, normalize_arabic
    from train.weak.terms import normalize

    assert normalize(text) == normalize_arabic(text, NormalizationOptions())


@pytest.mark.parametrize(("text", "hit"), [
    ("بحث الجانبان أمن الحدود", True), ("وأمن الحدود", True), ("بحث الأمن والحدود", False),
    ("تزويدها بأسلحة", True), ("تزويدها وأسلحة", False),
])
def test_a_conjunction_may_open_a_phrase_but_not_join_its_words(text, hit):
    from train.weak.terms import PhraseIndex, words

    index = PhraseIndex()
    index.add_terms(["أمن الحدود", "تزويد* أسلحة"], 0)
    assert bool(index.find(words(text))) is hit


def test_scope_lead_is_the_title_and_the_first_two_sentences(tmp_path):
    (tmp_path / "states.yaml").write_text(GAZETTEER, encoding="utf-8")
    (tmp_path / "schema.yaml").write_text(
        "name: l\ngazetteers: {states: states.yaml}\ntasks:\n  - name: coop\n    kind: binary\n    labels: [yes, no]\n"
        "    rules:\n      - {name: lead, label: yes, scope: lead, cooccur: {gazetteer: states, terms: [تعاون أمني]}}\n",
        encoding="utf-8")
    rules = RuleSet.of(load_schema(tmp_path / "schema.yaml"))
    sentence = "بحثت مصر وفرنسا التعاون الأمني."
    assert fired(rules, sentence, "")["coop"] == {"lead": "yes"}
    assert fired(rules, "عنوان", "جملة أولى. " + sentence)["coop"] == {"lead": "yes"}
    assert fired(rules, "عنوان", "جملة أولى. جملة ثانية. " + sentence)["coop"] == {}


def test_cooccurrence_also_needs_a_word_of_a_second_list(tmp_path):
    (tmp_path / "states.yaml").write_text(GAZETTEER, encoding="utf-8")
    (tmp_path / "schema.yaml").write_text(
        "name: l\ngazetteers: {states: states.yaml}\ntasks:\n  - name: coop\n    kind: binary\n    labels: [yes, no]\n"
        "    rules:\n      - {name: both, label: yes, cooccur: {gazetteer: states, terms: [تعاون*, صفق*],"
        " also: [أمني*, أسلحة]}}\n", encoding="utf-8")
    rules = RuleSet.of(load_schema(tmp_path / "schema.yaml"))
    assert fired(rules, "", "بحثت مصر وفرنسا التعاون الأمني")["coop"] == {"both": "yes"}
    assert fired(rules, "", "وقعت مصر وفرنسا صفقة أسلحة")["coop"] == {"both": "yes"}
    assert fired(rules, "", "بحثت مصر وفرنسا التعاون الاقتصادي")["coop"] == {}  # cooperation, not security
    assert fired(rules, "", "اتهمت مصر فرنسا بتهريب أسلحة")["coop"] == {}  # security, not cooperation
    assert fired(rules, "", "بحثت مصر وفرنسا التعاون. وتناولا الملف الأمني")["coop"] == {}  # two sentences
