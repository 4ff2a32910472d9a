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
