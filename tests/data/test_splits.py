"""Splitting: no duplicate cluster crosses splits, stratification, held-out sources, dates and files."""

from __future__ import annotations

import json
from collections import Counter

import datasets
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import arabic_text, labelled_articles, run_cli
from train.data.splits import assign_splits


@settings(max_examples=200, deadline=None)
@given(
    clusters=st.lists(st.integers(0, 30), min_size=1, max_size=120),
    labels=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=120, max_size=120),
    forced=st.lists(st.booleans(), min_size=120, max_size=120),
    seed=st.integers(0, 2**32 - 1),
    use_forced=st.booleans(),
)
def test_no_cluster_crosses_splits(clusters, labels, forced, seed, use_forced):
    forced = forced[: len(clusters)] if use_forced else [False] * len(clusters)
    result = assign_splits(clusters, labels[: len(clusters)], forced,
                           {"train": 0.7, "validation": 0.15, "test": 0.15}, seed)
    splits_of: dict[int, set] = {}
    for index, (cluster, split) in enumerate(zip(clusters, result.assignment, strict=True)):
        if split is not None:
            splits_of.setdefault(cluster, set()).add(split)
        assert (split is None) == (index in result.excluded)
        if forced[index]:
            assert split == "test"
    assert all(len(splits) == 1 for splits in splits_of.values())
    for index, twin in result.excluded.items():
        assert clusters[twin] == clusters[index] and forced[twin] and not forced[index]


def test_split_is_reproducible_and_stratified():
    clusters = list(range(400))
    labels = ["a"] * 300 + ["b"] * 100
    fractions = {"train": 0.8, "validation": 0.1, "test": 0.1}
    first = assign_splits(clusters, labels, [False] * 400, fractions, 7).assignment
    assert first == assign_splits(clusters, labels, [False] * 400, fractions, 7).assignment
    assert first != assign_splits(clusters, labels, [False] * 400, fractions, 8).assignment
    counts = Counter(zip(first, labels, strict=True))
    assert counts["train", "a"] == 240 and counts["test", "a"] == 30 and counts["test", "b"] == 10


def _rows(folder):
    built = datasets.load_from_disk(str(folder))
    return {name: list(split) for name, split in built.items()}


def test_near_duplicates_stay_in_one_split(corpus, tmp_path):
    articles = labelled_articles(60)
    base = arabic_text(4242, words=80)
    for i in range(6):  # six light re-edits of one article (word i changed): one cluster
        words = base.split()
        words[i] = "تعديل"
        articles[i * 10]["text"] = " ".join(words)
    result = run_cli("data", "build", corpus(articles, split={"train": 0.5, "validation": 0.25, "test": 0.25}))
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "built")
    homes = {name for name, split in rows.items() for r in split if r["id"] in {f"a{i * 10:03d}" for i in range(6)}}
    assert len(homes) == 1
    clusters = {name: {r["cluster"] for r in split} for name, split in rows.items()}
    assert not (clusters["train"] & clusters["test"]) and not (clusters["train"] & clusters["validation"])


def test_holdout_source_is_the_test_split(corpus, tmp_path):
    articles = labelled_articles(30)
    # out2's light re-edit of an out3 article: a near duplicate across the held-out boundary.
    articles[0]["text"] = arabic_text(77, words=80)
    articles[1]["text"] = " ".join(["تعديل", *articles[0]["text"].split()[1:]])
    articles[0]["source"] = "out3"
    result = run_cli("data", "build", corpus(articles, split={"strategy": "source", "holdout_sources": ["out3"]}))
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "built")
    assert {r["source"] for r in rows["test"]} == {"out3"}
    assert "out3" not in {r["source"] for r in rows["train"] + rows["validation"]}
    rejects = [json.loads(x) for x in (tmp_path / "built" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["id"], r["kind"]) for r in rejects] == [("a001", "crosses_split")]


def test_date_cutoff_puts_later_articles_in_test(corpus, tmp_path):
    result = run_cli("data", "build", corpus(split={"strategy": "date", "date_cutoff": "2024-10-01"}))
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "built")
    assert rows["test"] and all(r["date"] >= "2024-10-01" for r in rows["test"])
    assert all(r["date"] < "2024-10-01" for r in rows["train"] + rows["validation"])


def test_test_split_from_a_separate_file(corpus, tmp_path):
    from tests.helpers import INLINE_LABELS, write_config, write_jsonl

    held_out = write_jsonl(tmp_path / "heldout.jsonl", labelled_articles(8, start=500))
    config = corpus()
    data = __import__("yaml").safe_load(config.read_text())
    data["sources"].append({"path": str(held_out), "labels": dict(INLINE_LABELS), "split": "test"})
    data["split"] = {"strategy": "file"}
    write_config(config, data)
    assert run_cli("data", "build", config).exit_code == 0
    rows = _rows(tmp_path / "built")
    assert sorted(r["id"] for r in rows["test"]) == [f"a{i}" for i in range(500, 508)]


def test_folds_partition_the_articles_into_test_splits():
    clusters = [i // 2 for i in range(300)]  # pairs of duplicates
    labels = ["a"] * 200 + ["b"] * 100
    fractions = {"train": 0.8, "validation": 0.2, "test": 0.0}
    runs = [assign_splits(clusters, labels, [False] * 300, fractions, 7, fold=(k, 5)).assignment for k in range(5)]
    tests = [{i for i, split in enumerate(run) if split == "test"} for run in runs]
    assert set().union(*tests) == set(range(300)) and sum(map(len, tests)) == 300  # each article tested once
    for run, test in zip(runs, tests, strict=True):
        assert Counter(labels[i] for i in test) == {"a": 40, "b": 20}  # stratified: 1/5 of each label
        rest = Counter(split for split in run if split != "test")
        assert rest == {"train": 192, "validation": 48}
        for i in range(0, 300, 2):
            assert run[i] == run[i + 1]  # a duplicate pair never crosses splits


def test_cross_validation_fold_through_the_cli(corpus, tmp_path):
    tests = []
    for fold in range(3):
        config = corpus(split={"folds": 3, "fold": fold, "train": 0.8, "validation": 0.2, "test": 0.0})
        result = run_cli("data", "build", config)
        assert result.exit_code == 0, result.output
        tests.append({r["id"] for r in _rows(tmp_path / "built")["test"]})
        assert f"fold {fold} of 3" in (tmp_path / "built" / "report.md").read_text(encoding="utf-8")
    assert all(tests) and not (tests[0] & tests[1]) and not (tests[1] & tests[2]) and not (tests[0] & tests[2])
    result = run_cli("data", "build", corpus(split={"folds": 3, "fold": 3}))
    assert result.exit_code != 0 and "fold must be 0 to 2" in result.output and "split" in result.output
