"""The default schema's rules on real articles (../shared/data; skipped without it): floors under today's figures.

The floors sit below what the rules measure today, so that a change that breaks matching (normalization, the
gazetteer, proclitics) fails here; they are not targets to tune the rules toward (gold measures the rules).
"""

from __future__ import annotations

import json

from tests.helpers import SCHEMA, run_cli, shared_file


def test_rules_on_the_gold_articles(tmp_path):
    gold = shared_file("gold/articles.jsonl.gz")
    result = run_cli("weak", "apply", SCHEMA, "--input", gold, "--output", tmp_path / "silver.jsonl",
                     "--gold", gold)
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "silver.report.json").read_text())["tasks"]
    topic, cooperation = tasks["topic"]["label_model"]["gold"], tasks["bilateral_security_cooperation"]["label_model"]
    assert topic["n"] == 240 and topic["coverage"] > 0.5 and topic["accuracy"] > 0.7
    assert cooperation["gold"]["accuracy"] > 0.9 and cooperation["gold"]["positive"]["precision"] > 0.5
    assert "stance" not in tasks  # no rules: no silver labels
