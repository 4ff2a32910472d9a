"""`taawun annotate suggest` through the CLI: a Label Studio import file from a trained model."""

from __future__ import annotations

import json

from tests.helpers import SCHEMA, run_cli


def test_suggest_writes_label_studio_tasks(trained, tmp_path):
    articles = (SCHEMA.parents[1] / "data" / "sample" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    pool = tmp_path / "pool.jsonl"
    pool.write_text("\n".join(articles[:40]) + "\n", encoding="utf-8")
    output = tmp_path / "tasks.json"
    result = run_cli("annotate", "suggest", trained["model_dir"], "--input", pool, "--n", "5", "--output", output)
    assert result.exit_code == 0, result.output
    assert "5 of 40 article(s) suggested (uncertainty)" in result.output
    tasks = json.loads(output.read_text(encoding="utf-8"))
    assert len(tasks) == 5 and len({t["data"]["id"] for t in tasks}) == 5
    choices = {r["from_name"] for t in tasks for p in t["predictions"] for r in p["result"]}
    assert choices == {"topic", "bilateral_security_cooperation", "stance"}
    random = run_cli("annotate", "suggest", trained["model_dir"], "--input", pool, "--n", "5", "--output",
                     tmp_path / "random.json", "--strategy", "random", "--seed", "3")
    assert random.exit_code == 0 and "(random)" in random.output
