"""`taawun init DIR`: a project for a user's own corpus that builds and trains as generated, and never overwrites."""

from __future__ import annotations

import csv
import json

import mlflow
import yaml

from tests.helpers import ROOT, SCHEMA, run_cli, write_jsonl
from train.schema import load_schema

FILES = ["schema.yaml", "gazetteers/states_ar.yaml", "data.yaml", "experiment.yaml", "README.md"]


def labelled_sample(n: int) -> list[dict]:
    """The first `n` articles of the sample corpus with annotator A's labels inline, as a user's file would be."""
    articles = [json.loads(line) for line in (ROOT / "data/sample/articles.jsonl").read_text(encoding="utf-8")
                .splitlines()][:n]
    with open(ROOT / "data/sample/annotations/annotator_a.csv", encoding="utf-8") as handle:
        labels = {row.pop("id"): row for row in csv.DictReader(handle)}
    return [{**article, **labels[article["id"]]} for article in articles]


def test_init_makes_a_project_that_builds_and_trains_as_generated(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # a user's shell; mlflow.set_tracking_uri sets it
    project = tmp_path / "my news"
    result = run_cli("init", project)
    assert result.exit_code == 0, result.output
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == sorted(FILES)
    assert (project / "data").is_dir()
    assert load_schema(project / "schema.yaml") == load_schema(SCHEMA)  # the default schema, with a note on top
    assert (project / "schema.yaml").read_text(encoding="utf-8").startswith("# Your labeling schema, copied")
    assert "extends" not in yaml.safe_load((project / "experiment.yaml").read_text(encoding="utf-8"))

    write_jsonl(project / "data" / "articles.jsonl", labelled_sample(60))
    built = run_cli("data", "build", "data.yaml", cwd=project)
    assert built.exit_code == 0, built.output
    assert (project / "data" / "built" / "articles" / "report.json").is_file()
    trained = run_cli("train", "experiment.yaml", cwd=project)
    assert trained.exit_code == 0, trained.output
    run_id = next(line.split()[1] for line in trained.stdout.splitlines() if line.startswith("run "))
    run = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}").get_run(run_id)
    assert run.info.run_name == "tfidf-logreg" and run.data.metrics["test/topic/macro_f1"] > 0
    assert (project / "runs" / "my news" / run_id / "model" / "model.json").is_file()


def test_init_never_overwrites(tmp_path):
    project = tmp_path / "mine"
    project.mkdir()
    (project / "data.yaml").write_text("# my own\n", encoding="utf-8")
    result = run_cli("init", project)
    assert result.exit_code == 1
    assert f"{project / 'data.yaml'} already exist(s); taawun init never overwrites" in result.stderr
    assert (project / "data.yaml").read_text(encoding="utf-8") == "# my own\n"
    assert sorted(p.name for p in project.iterdir()) == ["data.yaml"]  # nothing else written either


def test_init_with_another_schema_maps_its_tasks_and_targets(tmp_path):
    schema = ROOT / "configs" / "schemas" / "ans_stance.yaml"
    result = run_cli("init", tmp_path / "ans", "--schema", schema)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((tmp_path / "ans" / "data.yaml").read_text(encoding="utf-8"))
    tasks = load_schema(schema).tasks
    assert data["sources"][0]["labels"] == {task.name: task.name for task in tasks}
    assert data["sources"][0]["targets"] == {task.target_field: task.target_field for task in tasks if task.target_field}
    shown = run_cli("config", "show", "data.yaml", cwd=tmp_path / "ans")
    assert shown.exit_code == 0, shown.output
