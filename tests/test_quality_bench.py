"""The benches' data: the ANT row that leaves one outlet's label unlabelled, and builds reused when current."""

from __future__ import annotations

import datasets

from tests.helpers import ROOT, bench_module
from train.schema import load_schema


def test_unlabel_removes_one_label_of_one_outlet_only():
    schema = load_schema(ROOT / "configs" / "schemas" / "ant_sections.yaml")
    names = schema.task("section").label_names
    split = datasets.Dataset.from_dict(
        {"source": ["alarabia", "alarabia", "skynews", "alarabia"],
         "section": [names.index("internationalNews"), names.index("sport"), names.index("internationalNews"), -1]},
        features=datasets.Features({"source": datasets.Value("string"),
                                    "section": datasets.ClassLabel(names=names)}))
    changed = bench_module("quality").unlabel(split, schema, source="alarabia", label="internationalNews")
    assert changed["section"] == [-1, names.index("sport"), names.index("internationalNews"), -1]
    assert changed.features["section"] == split.features["section"]


def test_benches_reuse_a_current_dataset_and_rebuild_a_changed_one(tmp_path, capfd):
    """A bench run builds its data once: a second run on the same config and inputs opens the build, one with other
    settings rebuilds it (two bench processes no longer queue on the build lock for data that is already there)."""
    common = bench_module("common")
    built, schema = common.dataset("sample", tmp_path)
    stamp = (tmp_path / "sample" / "taawun.json").stat().st_mtime_ns
    assert "building the dataset" in capfd.readouterr().err
    again, _ = common.dataset("sample", tmp_path)
    assert (tmp_path / "sample" / "taawun.json").stat().st_mtime_ns == stamp
    assert capfd.readouterr().err == "" and again["train"]["id"] == built["train"]["id"]
    common.dataset("sample", tmp_path, seed=7)
    assert (tmp_path / "sample" / "taawun.json").stat().st_mtime_ns != stamp
    assert "built from another version of the data config" in capfd.readouterr().err


def test_gold_intervals_resample_the_pooled_articles_as_scikit_learn_scores_them():
    """Each interval is the percentile range of the figure recomputed on resamples of the articles: checked against
    scikit-learn's f1_score on the same resamples; a perfect classifier's interval is [1, 1]."""
    import numpy as np
    from sklearn.metrics import f1_score

    quality = bench_module("quality")
    tasks = load_schema(ROOT / "configs" / "schema.yaml").tasks
    rng = np.random.default_rng(5)
    truth = {task.name: rng.integers(0, len(task.label_names), 60) for task in tasks}
    truth["bilateral_security_cooperation"] = (rng.random(60) < 0.85).astype(int)  # yes (0) is rare, as on gold
    noisy = {name: np.where(rng.random(60) < 0.7, y, rng.integers(0, y.max() + 1, 60)) for name, y in truth.items()}
    intervals = quality.gold_intervals({name: (y, noisy[name]) for name, y in truth.items()}, tasks, resamples=200)
    rows = np.random.default_rng(quality.common.SEED).integers(0, 60, size=(200, 60))
    y, predicted = truth["bilateral_security_cooperation"], noisy["bilateral_security_cooperation"]
    yes = [f1_score(y[r] == 0, predicted[r] == 0, zero_division=0) for r in rows]
    macro = [f1_score(truth["topic"][r], noisy["topic"][r], average="macro", zero_division=0) for r in rows]
    assert np.allclose(intervals["bilateral_security_cooperation:yes"], np.percentile(yes, [2.5, 97.5]))
    assert np.allclose(intervals["topic"], np.percentile(macro, [2.5, 97.5]))
    assert intervals["topic"][0] < f1_score(truth["topic"], noisy["topic"], average="macro") < intervals["topic"][1]
    perfect = quality.gold_intervals({name: (y, y) for name, y in truth.items()}, tasks, resamples=50)
    assert all(span == (1.0, 1.0) for span in perfect.values())


def test_another_fold_seed_draws_other_folds_of_whole_clusters(tmp_path):
    """`bench/quality.py --fold-seed`: every article in one fold, duplicate clusters whole, other folds than seed 13's."""
    quality, common = bench_module("quality"), bench_module("common")
    built, schema = common.dataset("sample", tmp_path)
    ids = [row for split in common.SPLITS for row in built[split]["id"]]
    cluster = dict(zip(ids, [c for split in common.SPLITS for c in built[split]["cluster"]], strict=True))
    drawn = {seed: quality.folds(built, schema.tasks, 3, seed) for seed in (common.SEED, 1)}
    for folds in drawn.values():
        assert sorted(article for fold in folds for article in fold) == sorted(ids)
        clusters = [{cluster[article] for article in fold} for fold in folds]
        assert all(not a & b for i, a in enumerate(clusters) for b in clusters[i + 1:])
    assert drawn[common.SEED] == quality.folds(built, schema.tasks, 3)  # the default draw
    assert drawn[common.SEED] != drawn[1]
