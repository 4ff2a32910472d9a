"""The levers for few labels (issue 12), each through `taawun train` on the sample, with a floor it needs to pass."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
from mlflow import MlflowClient

from tests.helpers import (
    ROOT,
    SCHEMA,
    experiment_file,
    printed_run_id,
    run_cli,
    sample_articles,
    write_config,
    write_jsonl,
)

RARE = {"sports": "Sport", "health": "Health", "culture": "Culture", "technology": "Tech"}


def _test_metrics(output: str, run_dir) -> dict:
    run_id = printed_run_id(output)
    return json.loads(next(run_dir.glob(f"runs/tests/{run_id}/evaluation/metrics.json")).read_text())["test"]


def _rare_topics_scenario(tmp_path, cooperation: str | None = None) -> tuple[list[dict], dict, list[dict]]:
    """The target's training articles have no sports, health, culture or technology; an auxiliary corpus of such
    articles labels their topic (a section name mapped onto it). With `cooperation`, the auxiliary articles also say
    that label for every one of them, and a few rare-topic articles join the target's training articles (so that
    cross-validation on them can see what the auxiliary ones teach). Returns the target's sources, the auxiliary
    source and its articles."""
    articles = sample_articles()
    rare = [a for a in articles if a["topic"] in RARE]
    held = {a["id"] for i, a in enumerate(rare) if i % 2 == 0}
    kept = {a["id"] for i, a in enumerate(rare) if cooperation and i % 4 == 1}
    target = [a for a in articles if a["topic"] not in RARE or a["id"] in kept]
    test = [a for a in rare if a["id"] in held] + target[::4]
    train = [a for a in target if a not in test]
    auxiliary = [{"id": f"aux-{a['id']}", "title": a["title"], "text": a["text"], "section": RARE[a["topic"]],
                  "cooperation": cooperation} for a in rare if a["id"] not in held | kept]
    labels = {task: task for task in ("topic", "bilateral_security_cooperation", "stance")}
    sources = [{"path": str(write_jsonl(tmp_path / "train.jsonl", train)), "labels": labels},
               {"path": str(write_jsonl(tmp_path / "test.jsonl", test)), "labels": labels, "split": "test"}]
    aux_labels = {"topic": "section", **({"bilateral_security_cooperation": "cooperation"} if cooperation else {})}
    aux_source = {"path": str(write_jsonl(tmp_path / "aux.jsonl", auxiliary)), "name": "sections",
                  "fields": {"date": None, "source": None}, "labels": aux_labels,
                  "label_map": {"topic": {value: key for key, value in RARE.items()}}, "auxiliary": True,
                  "weight": 0.5}
    return sources, aux_source, auxiliary


def _data_config(tmp_path, name: str, sources: list[dict]):
    return write_config(tmp_path / f"data-{name}.yaml", {
        "schema": str(SCHEMA), "sources": sources, "split": {"strategy": "file", "train": 0.85, "validation": 0.15,
                                                             "test": 0.0},
        "output": str(tmp_path / f"built-{name}")})


def test_an_auxiliary_corpus_teaches_the_labels_the_target_data_lacks(tmp_path):
    """The target's training articles have no sports, health, culture or technology; an auxiliary corpus does."""
    sources, aux_source, auxiliary = _rare_topics_scenario(tmp_path)
    scores = {}
    for name, extra in (("without", []), ("with", [aux_source])):
        data = _data_config(tmp_path, name, sources + extra)
        folder = tmp_path / name
        folder.mkdir()
        result = run_cli("train", experiment_file(folder, data, evaluation={"splits": ["test"], "bootstrap": 0}))
        assert result.exit_code == 0, result.output
        scores[name] = _test_metrics(result.output, folder)["topic"]
    report = json.loads((tmp_path / "built-with" / "report.json").read_text())
    added = report["split"]["auxiliary"]  # (the sample's exact duplicates are read once)
    assert added["train"] == added["articles"] >= len(auxiliary) - 3 and added["left_out"] == 0
    assert report["splits"]["validation"].get("auxiliary") is None  # training data only
    assert max(m["f1"] for label, m in scores["without"]["per_class"].items() if label in RARE) == 0.0
    assert scores["without"]["macro_f1"] <= 0.5  # four of eight labels never predicted
    assert scores["with"]["macro_f1"] >= 0.5 and scores["with"]["macro_f1"] - scores["without"]["macro_f1"] >= 0.25
    assert min(scores["with"]["per_class"][label]["f1"] for label in RARE) > 0


def test_a_search_weighs_the_auxiliary_articles_per_task(tmp_path):
    """The auxiliary articles teach the rare topics but call every one of them security cooperation (they are sports,
    health, culture and technology news). Searched per task, the weights keep them for topic and drop them for
    cooperation, on scores of the target articles alone; stance, which they do not label, has nothing to choose."""
    sources, aux_source, _ = _rare_topics_scenario(tmp_path, cooperation="yes")
    data = _data_config(tmp_path, "misleading", sources + [aux_source])
    tasks, evaluation = ["topic", "bilateral_security_cooperation", "stance"], {"splits": ["test"], "bootstrap": 0}
    fixed, _ = _train(tmp_path / "fixed", data, tasks=tasks, evaluation=evaluation)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        searched, run_id = _train(tmp_path / "searched", data, tasks=tasks, evaluation=evaluation,
                                  model={"search": {"auxiliary_weights": [0, 1], "folds": 3}})
    # Fewer rare-topic articles than inner folds: expected when folds stratify on the rarest task, and no concern of
    # the user's (scikit-learn's "least populated class" warning stays off their terminal).
    assert not [w for w in caught if "least populated" in str(w.message)]
    client = MlflowClient(f"sqlite:///{tmp_path / 'searched' / 'mlflow.db'}")
    trials = client.search_runs([client.get_run(run_id).info.experiment_id],
                                f"tags.mlflow.parentRunId = '{run_id}'")
    best = {}
    for trial in trials:
        task = trial.data.tags["taawun.trial_task"]
        score = trial.data.metrics[f"search/{task}/macro_f1"]
        best.setdefault(task, []).append((score, float(trial.data.params["trial.auxiliary_weight"])))
    assert sorted(best) == ["bilateral_security_cooperation", "topic"]  # stance: no auxiliary label, no weight
    assert sorted(len(v) for v in best.values()) == [2, 2]
    assert max(best["topic"])[1] == 1.0 and max(best["bilateral_security_cooperation"])[1] == 0.0, best
    cooperation = "bilateral_security_cooperation"
    assert searched[cooperation]["per_class"]["yes"]["precision"] > fixed[cooperation]["per_class"]["yes"]["precision"]
    assert searched[cooperation]["macro_f1"] - fixed[cooperation]["macro_f1"] >= 0.04, (searched, fixed)
    assert searched["topic"]["macro_f1"] >= 0.5  # the rare topics still learnt from the auxiliary articles


def test_searching_auxiliary_weights_without_auxiliary_articles_says_so(tmp_path, sample_dataset):
    output = _refused(tmp_path, sample_dataset, tasks=["topic"], model={"search": {"auxiliary_weights": [0, 1]}})
    assert "model.search.auxiliary_weights" in output and "no auxiliary article" in output


def test_features_per_task_keep_an_auxiliary_corpus_out_of_the_other_tasks_vocabulary(tmp_path):
    """An auxiliary corpus labelled for topic alone, whose made-up words are in every one of its articles, fills a
    small shared vocabulary: stance then sees nothing of its own articles. Fit per task, stance's vocabulary comes
    from the articles labelled for stance, and the saved model predicts with it."""
    import random

    rng = random.Random(7)
    junk = ["".join(rng.choice("ثجحخذزشصضطظغ") for _ in range(6)) for _ in range(60)]
    articles = sample_articles()
    test, train = articles[::4], [a for i, a in enumerate(articles) if i % 4]
    labels = {task: task for task in ("topic", "bilateral_security_cooperation", "stance")}
    auxiliary = [{"id": f"aux-{i}", "title": junk[i % 60], "text": " ".join(rng.sample(junk, 60)) + ".",
                  "section": "Sport"} for i in range(250)]
    data = _data_config(tmp_path, "junk", [
        {"path": str(write_jsonl(tmp_path / "train.jsonl", train)), "labels": labels},
        {"path": str(write_jsonl(tmp_path / "test.jsonl", test)), "labels": labels, "split": "test"},
        {"path": str(write_jsonl(tmp_path / "aux.jsonl", auxiliary)), "name": "sections", "auxiliary": True,
         "fields": {"date": None, "source": None}, "labels": {"topic": "section"},
         "label_map": {"topic": {"Sport": "sports"}}, "weight": 0.5}])
    features = {"word_ngrams": [1, 1], "char_ngrams": None, "max_word_features": 60}
    evaluation = {"splits": ["test"], "bootstrap": 0}
    shared, _ = _train(tmp_path / "shared", data, tasks=["topic", "stance"], evaluation=evaluation,
                       model={"features": features})
    per_task, run_id = _train(tmp_path / "per-task", data, tasks=["topic", "stance"], evaluation=evaluation,
                              model={"features": features, "features_per_task": True})
    assert per_task["stance"]["macro_f1"] - shared["stance"]["macro_f1"] >= 0.15, (per_task["stance"], shared["stance"])
    folder = next((tmp_path / "per-task").glob(f"runs/tests/{run_id}/model"))
    vocabulary = {task: set(json.loads((folder / f"features-{task}" / "features.json").read_text())["unigrams"])
                  for task in ("topic", "stance")}
    assert len(vocabulary["topic"] & set(junk)) >= 50 and not vocabulary["stance"] & set(junk)
    out = tmp_path / "predicted.jsonl"
    source = write_jsonl(tmp_path / "new.jsonl", [{k: a[k] for k in ("id", "title", "text")} for a in test])
    assert run_cli("predict", folder, "--input", source, "--output", out).exit_code == 0
    predicted = [json.loads(line)["stance"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(predicted) == len(test) and len(set(predicted)) > 1


def _train(folder, data, **overrides) -> tuple[dict, str]:
    folder.mkdir(parents=True, exist_ok=True)
    result = run_cli("train", experiment_file(folder, data, **overrides))
    assert result.exit_code == 0, result.output
    run_id = printed_run_id(result.output)
    return _test_metrics(result.output, folder), run_id


def _refused(folder, data, **overrides) -> str:
    """The output of a `taawun train` that must stop with a clear error (no traceback)."""
    folder.mkdir(parents=True, exist_ok=True)
    result = run_cli("train", experiment_file(folder, data, **overrides))
    assert result.exit_code != 0
    assert "Traceback" not in result.output, result.output
    return result.output


def test_tuned_thresholds_find_the_rare_positive_class(tmp_path, sample_dataset):
    """Unweighted logistic regression rarely says `yes`; a threshold tuned on out-of-fold predictions does."""
    task = "bilateral_security_cooperation"
    plain, _ = _train(tmp_path / "plain", sample_dataset, model={"class_weight": "none"}, tasks=[task],
                      evaluation={"splits": ["test"], "bootstrap": 0})
    tuned, run_id = _train(tmp_path / "tuned", sample_dataset, model={"class_weight": "none"}, tasks=[task],
                           thresholds={"tune": "cv", "folds": 3}, evaluation={"splits": ["test"], "bootstrap": 0})
    model = next((tmp_path / "tuned").glob(f"runs/tests/{run_id}/model"))
    threshold = json.loads((model / "model.json").read_text())["thresholds"][task]
    assert 0 < threshold < 0.5  # below the untuned decision: more `yes`
    logged = MlflowClient(f"sqlite:///{tmp_path / 'tuned' / 'mlflow.db'}").get_run(run_id).data.metrics
    assert logged[f"fit/{task}/threshold"] == threshold
    assert plain[task]["positive"]["f1"] < 0.95 <= tuned[task]["positive"]["f1"]
    # predict decides with the threshold too
    rows = [{"id": "x", "text": sample_articles()[0]["text"]}]
    out = tmp_path / "predicted.jsonl"
    assert run_cli("predict", model, "--input", write_jsonl(tmp_path / "in.jsonl", rows), "--output", out).exit_code == 0
    predicted = json.loads(out.read_text())
    expected = "yes" if predicted[f"{task}_probabilities"]["yes"] >= threshold else "no"
    assert predicted[task] == expected


@pytest.mark.slow
def test_self_training_learns_from_unlabelled_articles(tmp_path):
    """Three labelled articles per topic, the rest of the training articles unlabelled (an auxiliary source)."""
    articles = sample_articles()
    test = articles[::3]
    rest = [a for a in articles if a not in test]
    labelled, seen = [], {}
    for article in rest:
        if seen.get(article["topic"], 0) < 3:
            labelled.append(article)
            seen[article["topic"]] = seen.get(article["topic"], 0) + 1
    unlabelled = [{k: a[k] for k in ("id", "title", "text", "source", "date")} for a in rest if a not in labelled]
    labels = {task: task for task in ("topic", "bilateral_security_cooperation", "stance")}
    data = write_config(tmp_path / "data.yaml", {
        "schema": str(SCHEMA),
        "sources": [{"path": str(write_jsonl(tmp_path / "labelled.jsonl", labelled)), "labels": labels},
                    {"path": str(write_jsonl(tmp_path / "test.jsonl", test)), "labels": labels, "split": "test"},
                    {"path": str(write_jsonl(tmp_path / "pool.jsonl", unlabelled)), "auxiliary": True}],
        "split": {"strategy": "file", "train": 0.9, "validation": 0.1, "test": 0.0},
        "output": str(tmp_path / "built")})
    common = {"tasks": ["topic"], "evaluation": {"splits": ["test"], "bootstrap": 0},
              "model": {"kind": "sentence_encoder", "cache_dir": str(tmp_path / "cache")}}
    plain, _ = _train(tmp_path / "plain", data, **common)
    trained, run_id = _train(tmp_path / "self", data, self_training={"rounds": 3, "threshold": 0.35, "weight": 1.0},
                             **common)
    assert trained["topic"]["macro_f1"] >= plain["topic"]["macro_f1"] + 0.05
    model = json.loads(next((tmp_path / "self").glob(f"runs/tests/{run_id}/model/model.json")).read_text())
    added = [round_["topic"] for round_ in model["self_training"]]
    assert len(added) == 3 and added[0] > 0  # pseudo-labels per round, saved with the model


def test_silver_labels_from_the_schemas_rules_train_with_a_lower_weight(tmp_path):
    """`taawun weak apply` labels the unlabelled pool; the silver labels count where no annotator labelled."""
    articles = sample_articles()
    test = articles[::3]
    rest = [a for a in articles if a not in test]
    labelled = rest[:20]
    pool = [{k: a[k] for k in ("id", "title", "text", "source", "date")} for a in rest[20:]]
    pool_file = write_jsonl(tmp_path / "pool.jsonl", pool)
    silver = tmp_path / "silver.jsonl"
    applied = run_cli("weak", "apply", SCHEMA, "--input", pool_file, "--output", silver)
    assert applied.exit_code == 0, applied.output
    labels = {task: task for task in ("topic", "bilateral_security_cooperation", "stance")}
    sources = [{"path": str(write_jsonl(tmp_path / "labelled.jsonl", labelled)), "labels": labels},
               {"path": str(write_jsonl(tmp_path / "test.jsonl", test)), "labels": labels, "split": "test"},
               {"path": str(pool_file), "auxiliary": True, "weight": 0.5}]
    split = {"strategy": "file", "train": 0.9, "validation": 0.1, "test": 0.0}
    scores = {}
    for name, votes in (("without", []), ("with", [{"path": str(silver), "role": "silver"}])):
        data = write_config(tmp_path / f"data-{name}.yaml", {
            "schema": str(SCHEMA), "sources": sources, "annotations": votes, "split": split,
            "output": str(tmp_path / f"built-{name}")})
        scores[name], _ = _train(tmp_path / name, data, tasks=["topic", "bilateral_security_cooperation"],
                                 evaluation={"splits": ["test"], "bootstrap": 0})
    without, with_silver = scores["without"], scores["with"]
    assert with_silver["topic"]["macro_f1"] >= without["topic"]["macro_f1"] + 0.2
    cooperation = "bilateral_security_cooperation"
    assert with_silver[cooperation]["positive"]["f1"] >= without[cooperation]["positive"]["f1"] + 0.2
    report = json.loads((tmp_path / "built-with" / "report.json").read_text())
    assert "silver:weak" not in report["annotations"]["annotators"]  # machine labels are not an annotator


@pytest.mark.slow
def test_sentence_evidence_points_at_the_cooperation_sentence(tmp_path, sample_dataset):
    """A sentence scorer for the cooperation task: predict names, for each article, the sentence that says `yes`."""
    from train.text.clean import CleaningOptions, NormalizationOptions, TextPipeline
    from train.text.sentences import split_sentences

    task = "bilateral_security_cooperation"
    model = {"kind": "sentence_encoder", "cache_dir": str(tmp_path / "cache"), "evidence": {"pooling": "max"}}
    metrics, run_id = _train(tmp_path / "run", sample_dataset, model=model, tasks=["topic", task],
                             evaluation={"splits": ["test"], "bootstrap": 0})
    assert metrics[task]["positive"]["f1"] >= 0.8
    folder = next((tmp_path / "run").glob(f"runs/tests/{run_id}/model"))
    articles = [a for a in sample_articles() if a[task] == "yes"][:12]
    source = write_jsonl(tmp_path / "yes.jsonl", [{k: a[k] for k in ("id", "title", "text")} for a in articles])
    out = tmp_path / "predicted.jsonl"
    assert run_cli("predict", folder, "--input", source, "--output", out).exit_code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    # The evidence is one of the article's sentences, and speaks of security cooperation more often than the article's
    # sentences do on average.
    terms = ("تعاون", "مشترك", "مكافحة", "الارهاب", "امني", "عسكري", "تدريب", "تمرين", "مناورات", "دفاع")
    speaks = lambda sentence: any(term in sentence for term in terms)  # noqa: E731
    evidence = [row[f"{task}_evidence"]["sentence"] for row in rows]
    pipeline = TextPipeline(CleaningOptions(), NormalizationOptions())
    sentences = [s for a in articles for s in split_sentences(pipeline(a["text"]).text, 64)]
    assert set(evidence) <= set(sentences)
    share = sum(map(speaks, evidence)) / len(evidence)
    assert share >= sum(map(speaks, sentences)) / len(sentences) + 0.15


def test_rule_features_carry_the_schemas_rules_to_articles_unlike_the_training_ones(tmp_path):
    """With four `yes` articles to learn from, TF-IDF cannot tell cooperation between two states; the schema's
    co-occurrence rules (two states, a cooperation and a security term in one sentence) can, as features. The model
    keeps the rules and their gazetteer: `taawun predict` applies them from the model folder alone."""
    task = "bilateral_security_cooperation"
    articles = sample_articles()
    yes = [a for a in articles if a[task] == "yes"]
    no = [a for a in articles if a[task] == "no"]
    train = yes[:4] + no[::2]
    test = [a for a in articles if a not in train]
    labels = {name: name for name in ("topic", task, "stance")}
    data = write_config(tmp_path / "data.yaml", {
        "schema": str(SCHEMA), "output": str(tmp_path / "built"),
        "sources": [{"path": str(write_jsonl(tmp_path / "train.jsonl", train)), "labels": labels},
                    {"path": str(write_jsonl(tmp_path / "test.jsonl", test)), "labels": labels, "split": "test"}],
        "split": {"strategy": "file", "train": 0.9, "validation": 0.1, "test": 0.0}})
    scores = {}
    for name, weight in (("without", 0.0), ("with", 1.0)):
        metrics, run_id = _train(tmp_path / name, data, model={"rules_weight": weight}, tasks=[task],
                                 evaluation={"splits": ["test"], "bootstrap": 0})
        scores[name] = metrics[task]["positive"]["f1"]
    assert (tmp_path / "built" / "gazetteers" / "states.yaml").is_file()  # the dataset keeps what its rules read
    assert scores["without"] <= 0.3 and scores["with"] >= scores["without"] + 0.3, scores
    model = tmp_path / "with" / "runs" / "tests" / run_id / "model"
    assert json.loads((model / "model.json").read_text())["model"]["rules_weight"] == 1.0
    moved = tmp_path / "moved" / "model"
    shutil.copytree(model, moved)  # away from the dataset and the schema's folder
    predicted = tmp_path / "predicted.jsonl"
    result = run_cli("predict", moved, "--input", tmp_path / "test.jsonl", "--output", predicted)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in predicted.read_text(encoding="utf-8").splitlines()]
    hits = sum(row[task] == "yes" == article[task] for row, article in zip(rows, test, strict=True))
    assert hits >= 8, hits  # the rules applied again from the model folder alone


def test_rule_features_without_rules_name_the_key(tmp_path):
    """A schema without rules cannot give rule features: the error says so and how to turn them off."""
    schema = tmp_path / "schema.yaml"
    schema.write_text("name: plain\ntasks:\n  - name: topic\n    labels: [politics, security, economy, sports, "
                      "health, culture, technology, society]\n", encoding="utf-8")
    data = write_config(tmp_path / "data.yaml", {
        "schema": str(schema), "output": str(tmp_path / "built"),
        "sources": [{"path": str(ROOT / "data/sample/articles.jsonl")}],
        "annotations": [{"path": str(ROOT / "data/sample/annotations/annotator_a.csv"), "annotator": "a"}]})
    output = _refused(tmp_path / "run", data, model={"rules_weight": 1.0})
    assert "rules_weight" in output and "declares no labelling rules" in output, output


def test_rule_features_on_a_dataset_without_its_gazetteers_say_to_rebuild(tmp_path, sample_dataset):
    """A dataset built before datasets kept their schema's gazetteers cannot apply the co-occurrence rules."""
    old = tmp_path / "old"
    shutil.copytree(sample_dataset, old)
    shutil.rmtree(old / "gazetteers")
    output = _refused(tmp_path / "run", old, model={"rules_weight": 1.0})
    assert "gazetteer 'states' is not loaded" in output and "taawun data build" in output, output
