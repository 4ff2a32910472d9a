"""Tests for train.workflows.suggest: uncertainty sampling with diversity into Label Studio, and the whole labeling loop."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml

from tests.helpers import ROOT, experiment_file, run_cli, write_config, write_jsonl
from train.errors import TaawunError
from train.labelstudio import labelstudio_config
from train.models.predictor import load_predictor
from train.workflows.suggest import suggest

SAMPLE = ROOT / "data" / "sample" / "articles.jsonl"
TASKS = ("topic", "bilateral_security_cooperation", "stance")
# One sentence more: the variant is a near-duplicate of its article (Jaccard over 3-word shingles above 0.8).
EXTRA = " وأضاف المصدر أن المحادثات ستستمر خلال الأسبوع المقبل."


def sample_articles() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_uncertainty(model: Path | str, records: list[dict], adapt_priors: bool = False) -> dict[str, float]:
    """The expected score, computed here from the model's probabilities: mean over tasks of H(p) / log(labels); with
    `adapt_priors`, from the probabilities adapted to the label proportions estimated in `records`."""
    predictor = load_predictor(model)
    proba = predictor.predict_raw([r["title"] for r in records], [r["text"] for r in records], {})
    if adapt_priors:
        proba = predictor.adapt_priors(proba)[0]
    per_task = []
    for task in predictor.tasks:
        p = proba[task.name]
        logs = np.log(np.where(p > 0, p, 1.0))
        per_task.append(-(p * logs).sum(axis=1) / np.log(len(task.label_names)))
    return dict(zip((r["id"] for r in records), np.mean(per_task, axis=0), strict=True))


def test_picks_the_most_uncertain_articles(tmp_path, trained):
    # s001-s030 hold no near-duplicate pair (data/sample/DATASHEET.md): the plain top n is expected.
    records = sample_articles()[:30]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    result = suggest(str(trained["model_dir"]), pool, 8, tmp_path / "out" / "suggestions.json")
    expected = expected_uncertainty(trained["model_dir"], records)
    ranked = sorted(expected, key=lambda article_id: -expected[article_id])
    assert result.ids == ranked[:8]
    assert result.scores == pytest.approx([expected[i] for i in ranked[:8]], abs=1e-9)
    assert result.pool_size == 30 and result.near_duplicates_skipped == 0
    written = json.loads(result.output.read_text(encoding="utf-8"))
    assert [task["data"]["id"] for task in written] == result.ids
    assert [task["predictions"][0]["score"] for task in written] == pytest.approx([1 - s for s in result.scores],
                                                                                   abs=1e-6)  # confidence
    assert not list(result.output.parent.glob(".*tmp*"))  # the staging file was renamed, not left behind


def test_never_picks_two_near_duplicates(tmp_path, trained):
    base = sample_articles()[:30]
    variants = [{**r, "id": f"{r['id']}-v", "text": r["text"] + EXTRA} for r in base]
    records = [record for pair in zip(base, variants, strict=True) for record in pair]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    scores = expected_uncertainty(trained["model_dir"], records)
    expected, taken = [], set()
    for article_id in sorted(scores, key=lambda i: -scores[i]):  # greedy: best first, one per pair
        if article_id.removesuffix("-v") not in taken:
            taken.add(article_id.removesuffix("-v"))
            expected.append(article_id)
    result = suggest(str(trained["model_dir"]), pool, 10, tmp_path / "suggestions.json")
    assert result.ids == expected[:10]
    assert len({i.removesuffix("-v") for i in result.ids}) == 10
    assert result.near_duplicates_skipped > 0
    for seed in (0, 1):
        shuffled = suggest(str(trained["model_dir"]), pool, 20, tmp_path / f"random{seed}.json", strategy="random",
                           seed=seed)
        assert len({i.removesuffix("-v") for i in shuffled.ids}) == 20  # random also never takes both


def test_random_strategy_is_seeded(tmp_path, trained):
    pool = write_jsonl(tmp_path / "pool.jsonl", sample_articles()[:60])
    model = str(trained["model_dir"])
    first = suggest(model, pool, 10, tmp_path / "a.json", strategy="random", seed=3)
    again = suggest(model, pool, 10, tmp_path / "b.json", strategy="random", seed=3)
    other = suggest(model, pool, 10, tmp_path / "c.json", strategy="random", seed=4)
    uncertain = suggest(model, pool, 10, tmp_path / "d.json")
    assert first.ids == again.ids
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert first.ids != other.ids
    assert first.ids != uncertain.ids
    assert np.mean(uncertain.scores) > np.mean(first.scores)  # the point of uncertainty sampling


def test_output_is_a_label_studio_import_matching_the_schema_config(tmp_path, trained, monkeypatch):
    records = sample_articles()[:20]
    # The raw text goes out as it came, markup and all (the model sees it cleaned).
    records[0] = {**records[0], "text": "<p>" + records[0]["text"] + "</p> اترك تعليقاً"}
    renamed = [{"article": r["id"], "headline": r["title"], "body": r["text"]} for r in records]
    pool = write_jsonl(tmp_path / "pool.jsonl", renamed)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    reference = f"runs:/{trained['run_id']}/model"
    result = suggest(reference, pool, 20, tmp_path / "suggestions.json",
                     fields={"id": "article", "title": "headline", "text": "body"}, tasks=["stance"])
    predictor = load_predictor(trained["model_dir"])
    view = ElementTree.fromstring(labelstudio_config(predictor.schema))
    choices = {c.get("name"): (c.get("toName"), {choice.get("value") for choice in c.iter("Choice")})
               for c in view.iter("Choices")}
    variables = {element.get("value")[1:] for element in view.iter() if (element.get("value") or "").startswith("$")}
    assert set(choices) == set(TASKS)
    written = json.loads(result.output.read_text(encoding="utf-8"))
    assert len(written) == 20 and sorted(t["data"]["id"] for t in written) == sorted(r["id"] for r in records)
    by_id = {r["id"]: r for r in records}
    for task in written:
        assert variables <= set(task["data"])  # every $variable of the labeling config is in the task's data
        assert task["data"]["text"] == by_id[task["data"]["id"]]["text"]
        assert task["data"]["title"] == by_id[task["data"]["id"]]["title"]
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == reference
        assert 0 <= prediction["score"] <= 1
        assert [r["from_name"] for r in prediction["result"]] == list(TASKS)
        for item in prediction["result"]:
            to_name, labels = choices[item["from_name"]]
            assert item["to_name"] == to_name and item["type"] == "choices"
            assert len(item["value"]["choices"]) == 1 and item["value"]["choices"][0] in labels
    assert "<p>" in next(t["data"]["text"] for t in written if t["data"]["id"] == records[0]["id"])


def test_bad_requests_are_clear_errors(tmp_path, trained):
    model = str(trained["model_dir"])
    pool = write_jsonl(tmp_path / "pool.jsonl", sample_articles()[:5])
    out = tmp_path / "s.json"
    with pytest.raises(TaawunError, match="at least one"):
        suggest(model, pool, 0, out)
    with pytest.raises(TaawunError, match="no column 'body' for text"):
        suggest(model, pool, 3, out, fields={"text": "body"})
    no_ids = write_jsonl(tmp_path / "no_ids.jsonl", [{"text": r["text"]} for r in sample_articles()[:3]])
    with pytest.raises(TaawunError, match="no column 'id' for id"):
        suggest(model, no_ids, 3, out)
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"id": "x1", "text": "  "}, {"id": "x2", "text": ""}])
    with pytest.raises(TaawunError, match="no article to suggest.*empty text"):
        suggest(model, empty, 3, out)
    (tmp_path / "nothing.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(TaawunError, match="no readable article"):
        suggest(model, tmp_path / "nothing.jsonl", 3, out)
    with pytest.raises(TaawunError, match="not tasks of the model"):
        suggest(model, pool, 3, out, tasks=["sentiment"])
    with pytest.raises(TaawunError, match="strategy"):
        suggest(model, pool, 3, out, strategy="greedy")
    with pytest.raises(TaawunError, match=r"\.json file"):
        suggest(model, pool, 3, tmp_path / "s.jsonl")
    assert not out.exists()


def test_fewer_distinct_articles_than_asked(tmp_path, trained):
    records = sample_articles()[:4]
    pool = write_jsonl(tmp_path / "pool.jsonl", records + [{**records[0], "id": "copy"}, records[1]])
    result = suggest(str(trained["model_dir"]), pool, 10, tmp_path / "s.json")
    assert sorted(result.ids) in (sorted(r["id"] for r in records), sorted(["copy", *(r["id"] for r in records[1:])]))
    assert result.pool_size == 5  # the repeated record is read once; the copy under another id is a duplicate


def test_dependent_task_weighs_by_the_chance_it_applies_and_is_not_preannotated_when_hidden():
    from train.labelstudio import labelstudio_tasks
    from train.schema import Schema
    from train.workflows.suggest import Pool, uncertainty

    schema = Schema.model_validate({"name": "s", "tasks": [
        {"name": "coop", "labels": ["yes", "no"]},
        {"name": "kind", "labels": ["military", "police", "intel"],
         "applies_when": {"task": "coop", "labels": ["yes"]}}]})
    proba = {"coop": np.array([[0.9, 0.1], [0.1, 0.9]]), "kind": np.array([[0.4, 0.4, 0.2], [0.4, 0.4, 0.2]])}
    margin = uncertainty(proba, schema.tasks, schema, measure="margin")
    # coop's margin uncertainty is 0.2 for both; kind's is 1 (a tie), weighed by P(coop = yes): 0.9 and 0.1.
    assert margin == pytest.approx([(0.2 + 0.9) / 2, (0.2 + 0.1) / 2])
    coop = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)) / np.log(2)
    kind = -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)) / np.log(3)
    scores = uncertainty(proba, schema.tasks, schema)  # normalized entropy, the default
    assert scores == pytest.approx([(coop + 0.9 * kind) / 2, (coop + 0.1 * kind) / 2])
    pool = Pool({"id": ["a", "b"], "title": ["", ""], "text": ["x", "y"]})
    tasks = labelstudio_tasks(pool.columns, [0, 1], proba, scores, schema.tasks, "m1")
    assert [r["from_name"] for r in tasks[0]["predictions"][0]["result"]] == ["coop", "kind"]
    assert [r["from_name"] for r in tasks[1]["predictions"][0]["result"]] == ["coop"]  # kind is hidden: coop = no


# -- the loop: seed labels -> train -> suggest -> annotate in Label Studio -> rebuild -> retrain ---------------------
def truth_labels(built: Path) -> dict[str, dict[str, str]]:
    """The sample's final (adjudicated) labels, by article id."""
    dataset = datasets.load_from_disk(str(built))
    truth = {}
    for split in dataset.values():
        names = {task: split.features[task].names for task in TASKS}
        for row in split:
            truth[row["id"]] = {task: names[task][row[task]] for task in TASKS}
    return truth


def data_config(folder: Path, seed: Path, pool: Path, annotations: list[dict]) -> Path:
    return write_config(folder / "data.yaml", {
        "sources": [{"path": str(seed), "name": "seed", "labels": {t: t for t in TASKS}},
                    {"path": str(pool), "name": "pool"}],
        "annotations": annotations,
        "validation": {"allow_missing_labels": True},  # the pool waits, unlabeled, in the dataset
        "dedup": {"threshold": 0.5},
        "split": {"strategy": "random", "stratify_by": "topic", "train": 0.7, "validation": 0.15, "test": 0.15},
        "output": str(folder / "built"),
    })


def train_run(folder: Path, data: Path) -> Path:
    folder.mkdir()
    result = run_cli("train", experiment_file(folder, data, evaluation={"splits": ["test"]}))
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    return folder / "runs" / "tests" / run_id


def labelled(built: Path) -> dict[str, str]:
    dataset = datasets.load_from_disk(str(built))
    return {row["id"]: dataset[name].features["topic"].names[row["topic"]]
            for name in dataset for row in dataset[name] if all(row[t] >= 0 for t in TASKS)}


def label_studio_export(suggestions: Path, truth: dict[str, dict[str, str]]) -> list[dict]:
    """What Label Studio exports once annotators have labelled the suggested tasks (here: with the held-back truth)."""
    export = []
    for number, task in enumerate(json.loads(suggestions.read_text(encoding="utf-8")), start=1):
        labels = truth[task["data"]["id"]]
        export.append({**task, "id": number, "annotations": [{
            "id": 100 + number, "completed_by": {"id": 1, "email": "annotator@example.org"}, "was_cancelled": False,
            "result": [{"from_name": t, "to_name": "text", "type": "choices", "value": {"choices": [labels[t]]}}
                       for t in TASKS]}]})
    return export


@pytest.mark.slow
def test_annotation_loop_through_label_studio(tmp_path, sample_dataset):
    truth = truth_labels(sample_dataset)
    articles = [r for r in sample_articles() if r["id"] in truth]  # exact duplicates left the built sample
    seed = write_jsonl(tmp_path / "seed.jsonl", [{**r, **truth[r["id"]]} for r in articles[::3]])
    pool = write_jsonl(tmp_path / "pool.jsonl", [r for i, r in enumerate(articles) if i % 3])
    config = data_config(tmp_path, seed, pool, [])
    assert run_cli("data", "build", config).exit_code == 0
    before = labelled(tmp_path / "built")
    assert len(before) == len(articles[::3])
    run = train_run(tmp_path / "first", tmp_path / "built")

    n = 20
    result = suggest(str(run / "model"), pool, n, tmp_path / "suggestions.json")
    assert len(result.ids) == n and not set(result.ids) & set(before)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(label_studio_export(result.output, truth), ensure_ascii=False), encoding="utf-8")

    config = data_config(tmp_path, seed, pool, [{"path": str(export), "format": "labelstudio"}])
    built = run_cli("data", "build", config)
    assert built.exit_code == 0, built.output
    after = labelled(tmp_path / "built")
    assert len(after) == len(before) + n
    assert set(after) - set(before) == set(result.ids)
    assert all(after[i] == truth[i]["topic"] for i in result.ids)
    report = json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))
    assert "annotator@example.org" in report["annotations"]["annotators"]

    second = train_run(tmp_path / "second", tmp_path / "built")
    metrics = json.loads((second / "evaluation" / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["test"]) == set(TASKS)
    config_logged = yaml.safe_load((second / "config.yaml").read_text(encoding="utf-8"))
    assert Path(config_logged["data"]) == tmp_path / "built"
