"""`taawun evaluate` and `taawun predict` on held-out articles: datasets, raw files, bad records, mismatches."""

from __future__ import annotations

import csv
import json
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.helpers import SCHEMA, arabic_text, run_cli, skewed_heldout, write_jsonl


def _raw_articles(tmp_path, n=30):
    rows = [json.loads(line) for line in (SCHEMA.parents[1] / "data" / "sample" / "articles.jsonl")
            .read_text(encoding="utf-8").splitlines()][:n]
    gold = {r["id"]: r for r in csv.DictReader(open(SCHEMA.parents[1] / "data/sample/annotations/annotator_a.csv",
                                                    encoding="utf-8"))}
    return [{"article_id": r["id"], "body": r["text"], "headline": r["title"],
             "section": gold[r["id"]]["topic"]} for r in rows]


def test_evaluate_on_dataset_split_logs_linked_run(trained, sample_dataset):
    result = run_cli("evaluate", trained["model_dir"], "--input", sample_dataset, "--split", "test", "--json",
                     "--tracking-uri", trained["uri"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[: result.output.rindex("}") + 1])
    logged = mlflow.MlflowClient(trained["uri"]).get_run(trained["run_id"]).data.metrics
    assert metrics["test"]["topic"]["macro_f1"] == logged["test/topic/macro_f1"]
    runs = mlflow.MlflowClient(trained["uri"]).search_runs(
        [mlflow.MlflowClient(trained["uri"]).get_run(trained["run_id"]).info.experiment_id],
        filter_string=f"tags.`taawun.training_run_id` = '{trained['run_id']}'")
    assert runs and runs[0].data.metrics["test/topic/macro_f1"] == logged["test/topic/macro_f1"]


def test_evaluate_raw_file_with_field_mapping_and_aliases(trained, tmp_path):
    rows = _raw_articles(tmp_path)
    rows[0]["section"] = "Finance" if rows[0]["section"] == "economy" else rows[0]["section"]
    rows[1]["section"] = "sport"  # an alias of sports in the schema
    path = write_jsonl(tmp_path / "heldout.jsonl", rows)
    result = run_cli("evaluate", f"runs:/{trained['run_id']}/model", "--input", path, "--field", "text=body",
                     "--field", "title=headline", "--field", "id=article_id", "--field", "topic=section", "--json",
                     "--tracking-uri", trained["uri"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[: result.output.rindex("}") + 1])["heldout"]
    assert set(metrics) == {"topic"} and metrics["topic"]["n"] == 30
    assert metrics["topic"]["accuracy"] > 0.5


def test_evaluate_raw_file_with_unknown_label(trained, tmp_path):
    rows = _raw_articles(tmp_path, 5)
    rows[2]["section"] = "weather"
    path = write_jsonl(tmp_path / "heldout.jsonl", rows)
    result = run_cli("evaluate", trained["model_dir"], "--input", path, "--field", "text=body", "--field",
                     "topic=section", "--no-log")
    assert result.exit_code == 1
    assert "heldout.jsonl:3: unknown topic label 'weather'" in result.output
    assert "The model's labels: ['politics'" in result.output


def test_evaluate_raw_file_without_a_label_column(trained, tmp_path):
    path = write_jsonl(tmp_path / "heldout.jsonl", _raw_articles(tmp_path, 5))
    result = run_cli("evaluate", trained["model_dir"], "--input", path, "--field", "text=body", "--no-log")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "heldout.jsonl: no label column for any of the model's tasks" in result.output
    assert "map one with --field TASK=COLUMN" in result.output


def test_evaluate_schema_mismatch(trained, tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text("name: other\ntasks:\n  - name: topic\n    labels: [sports, politics]\n", encoding="utf-8")
    articles = [{"id": f"x{i}", "text": arabic_text(i), "topic": ["sports", "politics"][i % 2]} for i in range(20)]
    source = {"path": str(write_jsonl(tmp_path / "a.jsonl", articles)), "labels": {"topic": "topic"},
              "fields": {"title": None, "date": None, "source": None}}
    config = tmp_path / "d.yaml"
    config.write_text(json.dumps({"schema": str(schema), "sources": [source], "output": str(tmp_path / "built")}),
                      encoding="utf-8")
    assert run_cli("data", "build", config).exit_code == 0
    result = run_cli("evaluate", trained["model_dir"], "--input", tmp_path / "built", "--no-log")
    assert result.exit_code == 1
    assert "no column for the model's tasks" in result.output or "differ from the model's" in result.output


def test_predict_jsonl_skips_and_reports_malformed_records(trained, tmp_path):
    rows = _raw_articles(tmp_path, 12)
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    lines.insert(4, '{"article_id": "broken", "body": ')
    lines.insert(8, '{"article_id": "empty", "body": ""}')
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = run_cli("predict", trained["model_dir"], "--input", source, "--output", output, "--field", "text=body",
                     "--field", "id=article_id", "--batch-size", "5")
    assert result.exit_code == 0, result.output
    assert "in.jsonl:5: malformed JSON" in result.output and "in.jsonl:9: empty text" in result.output
    assert "12 article(s) predicted" in result.output
    predictions = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [p["id"] for p in predictions] == [r["article_id"] for r in rows]
    first = predictions[0]
    assert first["topic"] in first["topic_probabilities"]
    assert abs(sum(first["stance_probabilities"].values()) - 1) < 1e-4


def test_predict_csv_windows_1256_to_csv(trained, tmp_path):
    rows = _raw_articles(tmp_path, 6)
    source = tmp_path / "in.csv"
    with open(source, "w", encoding="cp1256", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for row in rows:
            writer.writerow([row["article_id"], row["body"].encode("cp1256", "ignore").decode("cp1256")])
    output = tmp_path / "out.csv"
    result = run_cli("predict", f"runs:/{trained['run_id']}/model", "--input", source, "--output", output)
    assert result.exit_code == 0, result.output
    with open(output, encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [r["id"] for r in table] == [r["article_id"] for r in rows]
    assert {"topic", "topic.proba.politics", "stance.proba.critical"} <= set(table[0])


def test_predict_missing_text_column(trained, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "body": arabic_text(1)}])
    result = run_cli("predict", trained["model_dir"], "--input", source, "--output", tmp_path / "o.jsonl")
    assert result.exit_code == 1 and "no column 'text' for text; map it with --field text=COLUMN" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_evaluate_adapts_the_label_priors_to_a_skewed_outlet_and_logs_them(trained, tmp_path):
    path, share = skewed_heldout(tmp_path)
    args = ["evaluate", trained["model_dir"], "--input", path, "--field", "text=body", "--field", "topic=label",
            "--json", "--tracking-uri", trained["uri"]]
    plain, adapted = run_cli(*args), run_cli(*args, "--adapt-priors")
    assert plain.exit_code == 0 and adapted.exit_code == 0, adapted.output
    before = json.loads(plain.stdout[: plain.stdout.rindex("}") + 1])["heldout"]["topic"]
    after = json.loads(adapted.stdout[: adapted.stdout.rindex("}") + 1])["heldout"]["topic"]
    labels = list(before["per_class"])
    reference = json.loads((trained["model_dir"] / "model.json").read_text(encoding="utf-8"))[
        "label_priors"]["topic"]["prior"][labels.index("security")]
    estimated = after["estimated_priors"]
    assert "estimated_priors" not in before and sum(estimated.values()) == pytest.approx(1, abs=1e-4)
    # The estimate moves from the reference share to near the batch's (2/3), nearer than the plain model's share of
    # security predictions, and the security predictions follow it.
    predicted = {name: np.asarray(result["confusion_matrix"]).sum(axis=0)[labels.index("security")] / result["n"]
                 for name, result in {"plain": before, "adapted": after}.items()}
    assert abs(estimated["security"] - share) < min(abs(reference - share) / 5, abs(predicted["plain"] - share))
    assert predicted["adapted"] > predicted["plain"]
    run = mlflow.MlflowClient(trained["uri"]).search_runs(
        [mlflow.MlflowClient(trained["uri"]).get_run(trained["run_id"]).info.experiment_id],
        filter_string="tags.`taawun.adapt_priors` = 'true'")[0]
    assert run.data.metrics["heldout/topic/estimated_prior/security"] == pytest.approx(estimated["security"])
    table = run_cli(*[a for a in args if a != "--json"], "--adapt-priors", "--no-log")
    assert "note: topic: probabilities adapted to the label proportions estimated in these articles" in table.stdout


def test_predict_adapts_the_priors_over_the_whole_input_across_batches(trained, tmp_path):
    path, _ = skewed_heldout(tmp_path)
    outputs = {}
    for name, extra in {"plain": [], "adapted": ["--adapt-priors"], "one batch": ["--adapt-priors",
                                                                                 "--batch-size", "1000"]}.items():
        output = tmp_path / f"{name}.jsonl"
        result = run_cli("predict", trained["model_dir"], "--input", path, "--output", output, "--field", "text=body",
                         "--batch-size", "7", *extra)
        assert result.exit_code == 0, result.output
        outputs[name] = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
        if extra:
            assert "topic: probabilities adapted to the label proportions estimated in the input" in result.stderr
    plain, adapted, whole = outputs["plain"], outputs["adapted"], outputs["one batch"]
    assert [row["id"] for row in adapted] == [row["id"] for row in plain]
    # Batches of 7 are adapted together: the same probabilities as one batch of all.
    assert [row["topic_probabilities"] for row in adapted] == [row["topic_probabilities"] for row in whole]
    assert sum(row["topic"] == "security" for row in adapted) > sum(row["topic"] == "security" for row in plain)
    # The MLflow model, loaded by URI, adapts the same way when asked (`params`), and only then.
    mlflow.set_tracking_uri(trained["uri"])
    model = mlflow.pyfunc.load_model(f"runs:/{trained['run_id']}/model")
    with open(path, encoding="utf-8") as handle:
        frame = pd.DataFrame([{"title": row["title"], "text": row["body"]} for row in csv.DictReader(handle)])
    served = {name: model.predict(frame, params=params) for name, params in
              {"plain": None, "adapted": {"adapt_priors": True}}.items()}
    for name, rows in (("plain", plain), ("adapted", adapted)):
        assert served[name]["topic"].tolist() == [row["topic"] for row in rows]
        assert served[name]["topic.proba.security"].to_numpy() == pytest.approx(
            [row["topic_probabilities"]["security"] for row in rows], abs=1e-6)


def test_adapting_the_priors_of_a_handful_of_articles_is_refused(trained, tmp_path):
    source = write_jsonl(tmp_path / "few.jsonl", [{"id": f"a{i}", "text": arabic_text(i)} for i in range(5)])
    result = run_cli("predict", trained["model_dir"], "--input", source, "--output", tmp_path / "o.jsonl",
                     "--adapt-priors")
    assert result.exit_code == 1 and "5 are too few for an estimate (at least 20" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_adapting_the_priors_of_a_model_trained_without_them_says_to_retrain(trained, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained["model_dir"], folder)
    info = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    del info["label_priors"]
    (folder / "model.json").write_text(json.dumps(info), encoding="utf-8")
    path, _ = skewed_heldout(tmp_path)
    for engine, output in (("local", tmp_path / "o.jsonl"), ("spark", tmp_path / "spark.jsonl")):
        result = run_cli("predict", folder, "--input", path, "--output", output, "--field", "text=body",
                         "--adapt-priors", "--engine", engine)
        assert result.exit_code == 1 and "no reference label priors" in result.output and "Retrain it" in result.output
        assert not output.exists()  # Spark refuses before it starts
