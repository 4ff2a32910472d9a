"""`taawun annotate suggest` through the CLI: a Label Studio import file from a trained model."""

from __future__ import annotations

import json

from tests.helpers import SCHEMA, run_cli, skewed_heldout


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


def test_suggest_adapts_the_priors_to_the_pool_as_predict_does(trained, tmp_path):
    """A pool from an outlet that files two thirds of its articles under security: with --adapt-priors, the
    pre-annotations are the labels `taawun predict --adapt-priors` gives (proportions estimated in the same pool),
    and some differ from the plain model's."""
    pool, _ = skewed_heldout(tmp_path)
    labels = {}
    for name, extra in {"plain": [], "adapted": ["--adapt-priors"]}.items():
        output = tmp_path / f"{name}.jsonl"
        result = run_cli("predict", trained["model_dir"], "--input", pool, "--output", output, "--field", "text=body",
                         *extra)
        assert result.exit_code == 0, result.output
        labels[name] = {row["id"]: row["topic"] for row in map(json.loads, output.read_text("utf-8").splitlines())}
    suggested = {}
    for name, extra in {"plain": [], "adapted": ["--adapt-priors"]}.items():
        output = tmp_path / f"{name}.json"
        result = run_cli("annotate", "suggest", trained["model_dir"], "--input", pool, "--field", "text=body",
                         "--n", "500", "--output", output, *extra)
        assert result.exit_code == 0, result.output
        assert ("note: topic: probabilities adapted to the label proportions estimated in the pool" in result.output
                ) == bool(extra)
        suggested[name] = {task["data"]["id"]: next(r["value"]["choices"][0] for r in task["predictions"][0]["result"]
                                                    if r["from_name"] == "topic")
                           for task in json.loads(output.read_text("utf-8"))}
        assert suggested[name] == {article: labels[name][article] for article in suggested[name]}
    assert any(suggested["adapted"][article] != labels["plain"][article] for article in suggested["adapted"])
