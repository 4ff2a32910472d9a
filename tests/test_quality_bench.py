"""bench/quality.py's ANT row that leaves one outlet's label unlabelled: only that outlet's rows of that label lose it."""

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
