"""Tests for train.text.dedup: exact groups, MinHash LSH near-duplicate clusters, and the ANT corpus."""

import gzip
import json
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.helpers import SHARED_DATA
from train.errors import TaawunError
from train.text.dedup import (
    DedupOptions,
    DuplicateClusters,
    bucket_pairs,
    choose_bands,
    find_duplicates,
    shingle_hashes,
    verify_pairs,
)

ANT_ARTICLES = SHARED_DATA / "ant" / "articles.jsonl.gz"

# About 90 words of news-style Arabic with no repeated three-word shingle.
PARAGRAPH = (
    "أعلنت وزارة الاقتصاد في بيان صدر صباح اليوم أن معدلات النمو خلال الربع الأخير من العام الماضي "
    "تجاوزت توقعات المحللين بفضل ارتفاع الصادرات الزراعية وتحسن أداء قطاع السياحة الذي استقبل أعدادا "
    "قياسية من الزوار القادمين من دول الخليج وأوروبا وأشار البيان إلى أن الحكومة تعتزم إطلاق حزمة جديدة "
    "من الحوافز لدعم المشروعات الصغيرة والمتوسطة وتوفير فرص عمل للشباب في المحافظات الريفية كما أكد "
    "الوزير خلال مؤتمر صحفي عقده في العاصمة أن البنك المركزي سيواصل سياسته الحذرة للحد من التضخم "
    "وحماية القدرة الشرائية للمواطنين مع مراقبة أسعار السلع الأساسية في الأسواق المحلية بشكل يومي "
    "وأضاف أن المفاوضات مع المؤسسات الدولية بشأن تمويل مشاريع البنية التحتية بلغت مراحلها النهائية"
)
UNRELATED = (
    "فاز المنتخب الوطني لكرة القدم على نظيره الضيف بثلاثة أهداف مقابل هدف واحد في المباراة الودية التي "
    "أقيمت مساء أمس على الملعب الأولمبي وسط حضور جماهيري كبير وقال المدرب إن الفريق قدم أداء مقنعا "
    "رغم غياب عدد من اللاعبين الأساسيين بسبب الإصابة وإنه سيواصل التحضير للتصفيات المؤهلة لكأس العالم"
)
DEFAULTS = DedupOptions()


def replace_words(text: str, replacements: dict[int, str]) -> str:
    """Return text with the words at the given positions replaced."""
    words = text.split()
    for position, word in replacements.items():
        words[position] = word
    return " ".join(words)


def numbered_words(start: int, stop: int) -> str:
    """Return distinct words w{start} .. w{stop - 1}, so word-set Jaccard is known exactly."""
    return " ".join(f"w{i}" for i in range(start, stop))


def first_appearance_order(ids: np.ndarray) -> list[int]:
    """Return the ids in the order they first appear."""
    return list(dict.fromkeys(ids.tolist()))


def test_paragraph_is_long_and_has_unique_shingles():
    words = PARAGRAPH.split()
    shingles = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    assert len(words) >= 80
    assert len(set(shingles)) == len(shingles)


def test_exact_duplicates_share_group_and_cluster():
    texts = [PARAGRAPH, UNRELATED, PARAGRAPH, "خبر قصير", UNRELATED, PARAGRAPH]
    result = find_duplicates(texts, DEFAULTS)
    assert result.exact_group.dtype == np.int64
    assert result.exact_group.tolist() == [0, 1, 0, 2, 1, 0]
    assert result.cluster.tolist() == [0, 1, 0, 2, 1, 0]
    assert result.near_pairs == []  # exact duplicates are not reported as near pairs
    assert result.members() == [[0, 2, 5], [1, 4]]


@pytest.mark.parametrize(
    "replacements",
    [{20: "وتراجع"}, {15: "الحالي", 60: "المستثمرين"}, {40: "الأجانب", 41: "والعرب"}],
    ids=["one-word", "two-words-apart", "two-words-adjacent"],
)
def test_light_edit_joins_cluster_but_unrelated_text_does_not(replacements):
    edited = replace_words(PARAGRAPH, replacements)
    result = find_duplicates([PARAGRAPH, UNRELATED, edited], DEFAULTS)
    assert result.exact_group.tolist() == [0, 1, 2]
    assert result.cluster.tolist() == [0, 1, 0]
    assert [(i, j) for i, j, _ in result.near_pairs] == [(0, 2)]
    assert result.near_pairs[0][2] >= DEFAULTS.threshold
    assert result.members() == [[0, 2]]


def test_half_the_words_changed_is_not_joined():
    words = PARAGRAPH.split()
    half_changed = " ".join(word if i % 2 else f"كلمة{i}" for i, word in enumerate(words))
    result = find_duplicates([PARAGRAPH, half_changed], DEFAULTS)
    assert result.cluster.tolist() == [0, 1]
    assert result.near_pairs == []


def test_pair_just_below_threshold_is_not_joined():
    # Word sets sharing 100 of 150 words: Jaccard 0.67 < 0.8, though most bands' buckets could match.
    options = DedupOptions(shingle_size=1, num_perm=256)
    result = find_duplicates([numbered_words(0, 125), numbered_words(25, 150)], options)
    assert result.cluster.tolist() == [0, 1]


@pytest.mark.parametrize("shift", [10, 50, 85])
def test_estimated_jaccard_is_close_to_true_jaccard(shift):
    first, second = numbered_words(0, 200), numbered_words(shift, 200 + shift)
    true_jaccard = (200 - shift) / (200 + shift)
    options = DedupOptions(shingle_size=1, num_perm=256, threshold=0.2)
    result = find_duplicates([first, second], options)
    assert len(result.near_pairs) == 1
    i, j, estimate = result.near_pairs[0]
    assert (i, j) == (0, 1)
    assert abs(estimate - true_jaccard) <= 0.1


def test_unrelated_texts_sharing_words_are_not_joined():
    # 1500 random 50-word texts over 5000 words: any two share about 0.5% of their words, but words
    # recur across many texts, so a poor permutation family lets one common word decide every MinHash.
    rng = np.random.default_rng(7)
    texts = [" ".join(f"w{i}" for i in rng.choice(5000, size=50, replace=False)) for _ in range(1500)]
    result = find_duplicates(texts, DedupOptions(shingle_size=1, threshold=0.5))
    assert result.near_pairs == []
    assert result.members() == []


def test_a_shared_shingle_with_a_tiny_hash_does_not_decide_every_permutation():
    # Among 100k words one hashes far below the rest; a permutation family that keeps a * x small for
    # small x would make it the minimum of every permutation and both texts would look identical.
    candidates = [f"w{i}" for i in range(100_000)]
    hashes, _ = shingle_hashes(candidates, 1)
    smallest = candidates[int(np.argmin(hashes))]
    first = f"{smallest} {numbered_words(200_000, 200_200)}"
    second = f"{smallest} {numbered_words(300_000, 300_200)}"
    result = find_duplicates([first, second], DedupOptions(shingle_size=1, threshold=0.3))
    assert result.near_pairs == []


def test_verify_pairs_keeps_only_pairs_at_or_above_threshold():
    signatures = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [1, 9, 9, 9], [1, 2, 3, 4]], dtype=np.uint64)
    candidates = np.array([[0, 1], [0, 2], [0, 3]])
    pairs, estimates = verify_pairs(signatures, candidates, 0.75)
    assert pairs.tolist() == [[0, 1], [0, 3]]
    assert estimates.tolist() == [0.75, 1.0]


def test_bucket_pairs_links_all_pairs_in_small_buckets_and_consecutive_ones_in_big():
    small = np.array([5, 7, 5, 5, 7, 8], dtype=np.uint64)
    assert sorted(map(tuple, bucket_pairs(small).tolist())) == [(0, 2), (0, 3), (1, 4), (2, 3)]
    big = np.zeros(1000, dtype=np.uint64)
    big[::2] = 1  # two buckets of 500 members each, interleaved
    pairs = bucket_pairs(big)
    assert sorted(map(tuple, pairs.tolist())) == [(i, i + 2) for i in range(998)]


def test_empty_and_blank_texts_are_exact_groups_but_never_near_duplicates():
    texts = ["", PARAGRAPH, "", "   ", "\n", ""]
    result = find_duplicates(texts, DEFAULTS)
    assert result.exact_group.tolist() == [0, 1, 0, 2, 3, 0]
    assert result.cluster.tolist() == [0, 1, 0, 2, 3, 0]
    assert result.near_pairs == []


@pytest.mark.parametrize("texts", [[], [""], ["", ""], ["كلمة"]])
def test_degenerate_inputs(texts):
    result = find_duplicates(texts, DEFAULTS)
    assert len(result.exact_group) == len(result.cluster) == len(texts)
    assert result.cluster.tolist() == [0] * len(texts)


def test_texts_shorter_than_a_shingle_are_one_shingle():
    result = find_duplicates(["عاجل", "عاجل جدا", "عاجل  جدا", "خبر"], DEFAULTS)
    # "عاجل جدا" and "عاجل  جدا" differ only in spacing: one equal two-word shingle, Jaccard 1.
    assert result.exact_group.tolist() == [0, 1, 2, 3]
    assert result.cluster.tolist() == [0, 1, 1, 2]
    assert result.near_pairs == [(1, 2, 1.0)]


def test_same_seed_gives_same_result():
    texts = [PARAGRAPH, replace_words(PARAGRAPH, {30: "جديد"}), UNRELATED, PARAGRAPH, ""]
    first = find_duplicates(texts, DEFAULTS)
    second = find_duplicates(list(texts), DEFAULTS)
    assert np.array_equal(first.exact_group, second.exact_group)
    assert np.array_equal(first.cluster, second.cluster)
    assert first.near_pairs == second.near_pairs


def test_near_off_gives_clusters_equal_to_exact_groups():
    texts = [PARAGRAPH, replace_words(PARAGRAPH, {30: "جديد"}), UNRELATED, PARAGRAPH]
    result = find_duplicates(texts, DEFAULTS.model_copy(update={"near": False}))
    assert np.array_equal(result.cluster, result.exact_group)
    assert result.exact_group.tolist() == [0, 1, 2, 0]
    assert result.near_pairs == []


def test_exact_off_keeps_every_text_in_its_own_group():
    texts = [PARAGRAPH, PARAGRAPH, "", ""]
    near_only = find_duplicates(texts, DedupOptions(exact=False))
    assert near_only.exact_group.tolist() == [0, 1, 2, 3]
    assert near_only.cluster.tolist() == [0, 0, 1, 2]  # equal texts still meet as near duplicates
    assert near_only.near_pairs == [(0, 1, 1.0)]
    neither = find_duplicates(texts, DedupOptions(exact=False, near=False))
    assert neither.cluster.tolist() == [0, 1, 2, 3]


def test_big_bucket_of_boilerplate_stays_linear():
    # 3000 texts that differ only in a trailing number all share buckets; linking each pair would be
    # 4.5 million verifications.
    texts = [f"{PARAGRAPH} رقم {i}" for i in range(3000)]
    result = find_duplicates(texts, DEFAULTS)
    assert result.members() == [list(range(3000))]
    assert len(result.near_pairs) < 20 * len(texts)  # linked along the bucket, not pair by pair


def test_non_string_text_is_reported_by_position():
    with pytest.raises(TaawunError, match="text 1 is NoneType"):
        find_duplicates(["خبر", None], DEFAULTS)


@pytest.mark.parametrize(
    "fields",
    [{"threshold": 0}, {"threshold": 1.5}, {"shingle_size": 0}, {"num_perm": 8}, {"treshold": 0.7}],
    ids=["threshold-zero", "threshold-above-one", "shingle-zero", "few-permutations", "unknown-key"],
)
def test_options_reject_bad_values(fields):
    with pytest.raises(ValidationError):
        DedupOptions(**fields)


@pytest.mark.parametrize(("threshold", "num_perm"), [(0.8, 128), (0.5, 128), (0.9, 256), (1.0, 16)])
def test_bands_fit_the_permutations(threshold, num_perm):
    bands, rows = choose_bands(threshold, num_perm)
    assert bands >= 1 and rows >= 1
    assert bands * rows <= num_perm


def test_bands_match_datasketch_for_defaults():
    # datasketch.MinHashLSH(threshold=0.8, num_perm=128) picks 9 bands of 13 rows.
    assert choose_bands(0.8, 128) == (9, 13)


VOCABULARY = ["خبر", "عاجل", "اليوم", "الرياضة", "a"]
small_texts = st.lists(st.sampled_from(VOCABULARY), max_size=4).map(" ".join) | st.sampled_from(["", " ", "a  b"])


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(small_texts, max_size=25),
    shingle_size=st.integers(1, 3),
    threshold=st.floats(0.3, 1.0),
)
def test_clusters_respect_exact_groups_and_first_appearance(texts, shingle_size, threshold):
    options = DedupOptions(shingle_size=shingle_size, threshold=threshold, num_perm=32)
    result = find_duplicates(texts, options)
    assert isinstance(result, DuplicateClusters)
    assert len(result.exact_group) == len(result.cluster) == len(texts)
    for i, text in enumerate(texts):
        for j, other in enumerate(texts):
            assert (result.exact_group[i] == result.exact_group[j]) == (text == other)
            if text == other:
                assert result.cluster[i] == result.cluster[j]
    assert first_appearance_order(result.exact_group) == list(range(len(set(texts))))
    assert first_appearance_order(result.cluster) == list(range(len(set(result.cluster.tolist()))))
    for i, j, estimate in result.near_pairs:
        assert i < j and result.cluster[i] == result.cluster[j] and texts[i] != texts[j]
        assert estimate >= threshold


def load_ant_rows() -> list[dict]:
    """Return the ANT articles, or skip when the corpus is not on this machine."""
    if not ANT_ARTICLES.exists():
        pytest.skip(f"ANT corpus not found at {ANT_ARTICLES}; place articles.jsonl.gz there to run this test")
    with gzip.open(ANT_ARTICLES, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_ant_france24_has_exact_duplicates_with_conflicting_labels():
    # Speed is measured by bench/data_build.py, not here.
    rows = load_ant_rows()
    texts = [row["text"] for row in rows]
    result = find_duplicates(texts, DEFAULTS)

    labels_by_group = defaultdict(set)
    for row, group in zip(rows, result.exact_group.tolist()):
        if row["source"] == "france24":
            labels_by_group[group].add(row["label"])
    conflicting = sum(len(labels) > 1 for labels in labels_by_group.values())
    assert conflicting >= 100, f"only {conflicting} France24 exact groups carry conflicting labels"
    assert len(set(result.exact_group.tolist())) < len(texts)
    for i, j, estimate in result.near_pairs:
        assert estimate >= DEFAULTS.threshold
        true_jaccard = word_shingle_jaccard(texts[i], texts[j], DEFAULTS.shingle_size)
        assert true_jaccard >= DEFAULTS.threshold - 0.15, f"texts {i} and {j}: Jaccard {true_jaccard:.2f}"


def word_shingle_jaccard(first: str, second: str, size: int) -> float:
    """Return the exact Jaccard similarity of two texts' word-shingle sets."""
    shingles = []
    for text in (first, second):
        words = text.split()
        shingles.append({tuple(words[i : i + size]) for i in range(max(len(words) - size + 1, 1))})
    return len(shingles[0] & shingles[1]) / len(shingles[0] | shingles[1])
