"""The configs for the real data in ../shared/data build, and find what is known to be there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, run_cli, shared_file


def _build(name: str, tmp_path: Path) -> dict:
    """Build configs/data/NAME.yaml into tmp_path (paths made absolute); return its report."""
    config = yaml.safe_load((ROOT / "configs" / "data" / f"{name}.yaml").read_text(encoding="utf-8"))
    config["schema"] = str(ROOT / config["schema"])
    for source in config["sources"]:
        source["path"] = str(ROOT / source["path"])
    config["output"] = str(tmp_path / name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_cli("data", "build", path)
    assert result.exit_code == 0, result.output
    return json.loads((tmp_path / name / "report.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_ant_finds_france24_articles_filed_under_two_sections(tmp_path):
    shared_file("ant/articles.jsonl.gz")
    report = _build("ant", tmp_path)
    conflicts = report["duplicates"]["conflicts"]
    france24 = [c for c in conflicts if all(i.startswith("FR") for i in c["ids"])]
    assert len(france24) > 500, "the France24 cross-section duplicates were not found"
    assert all(len(c["labels"]["section"]) >= 2 for c in france24)
    assert report["rejects"]["by_reason"]["duplicate_conflict"] == sum(len(c["ids"]) for c in conflicts)
    # Two bodies are empty in the corpus; 13 more hold nothing but an outlet disclaimer line.
    assert report["rejects"]["by_reason"]["empty_text"] == 15
    assert report["cleaning"]["removed"]["boilerplate"] > 1000  # the config's outlet patterns are applied
    import datasets

    built = datasets.load_from_disk(str(tmp_path / "ant"))
    assert set(built["test"]["source"]) == {"CNN"}
    assert "CNN" not in set(built["train"]["source"]) | set(built["validation"]["source"])
    total = sum(s["articles"] for s in report["splits"].values())
    assert total + report["rejects"]["count"] + report["duplicates"]["exact_removed"] == 27650


def test_gold_builds_with_the_default_schema(tmp_path):
    shared_file("gold/articles.jsonl.gz")
    report = _build("gold", tmp_path)
    assert sum(s["articles"] for s in report["splits"].values()) == 240
    for split in report["splits"].values():
        assert split["labels"]["bilateral_security_cooperation"]["yes"] > 0
