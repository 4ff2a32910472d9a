"""The shipped sample corpus builds through the CLI with the shipped config, as `make demo` does."""

from __future__ import annotations

import json

import datasets
import yaml

from tests.helpers import ROOT, run_cli


def test_sample_builds_with_agreement_and_duplicates(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "data" / "sample.yaml").read_text(encoding="utf-8"))
    config["output"] = str(tmp_path / "sample")
    path = tmp_path / "sample.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_cli("data", "build", path, cwd=ROOT)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "sample" / "report.json").read_text(encoding="utf-8"))
    built = datasets.load_from_disk(str(tmp_path / "sample"))
    assert sum(len(split) for split in built.values()) == 168  # 170 less two exact copies
    assert report["rejects"]["count"] == 0
    assert report["duplicates"]["exact_removed"] == 2 and report["duplicates"]["near_pairs"] >= 6
    assert report["annotations"]["annotators"] == ["annotator_a", "annotator_b"]
    assert report["annotations"]["disagreements"]["adjudicated"] == report["annotations"]["disagreements"]["count"]
    for task, agreement in report["annotations"]["agreement"].items():
        assert 0.8 < agreement["krippendorff_alpha"] < 1, task
    for split in built.values():  # every label of every task is in train; each split has each topic
        assert len(set(split["topic"])) == 8
    texts = " ".join(t for split in built.values() for t in split["text"])
    for leftover in ("<p>", "&nbsp;", "http", "@", "اترك تعليق", "ـ", "٢"):
        assert leftover not in texts, leftover
