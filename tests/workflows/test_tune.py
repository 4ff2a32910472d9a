"""`taawun tune`: candidates compared on the training split alone; the test split changes nothing it chooses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from tests.helpers import ROOT, experiment_file, printed_run_id, run_cli, sample_articles, write_config, write_jsonl

TUNE = {"folds": 3, "ensemble": 2,
        "candidates": [{"kind": "tfidf", "grid": {"params.C": [1.0, 10.0]}},
                       {"kind": "tfidf", "classifier": "complement_nb"}]}


def _tune(folder, data) -> tuple[dict, dict]:
    folder.mkdir()
    config = experiment_file(folder, data, tune=TUNE, thresholds={"tune": "cv", "folds": 3},
                             evaluation={"splits": ["test"], "bootstrap": 0})
    result = run_cli("tune", config)
    assert result.exit_code == 0, result.output
    chosen = yaml.safe_load(result.output.split("use as they are):\n", 1)[1].split("\n\n", 1)[0])
    run_id = printed_run_id(result.output)
    model = json.loads(next(folder.glob(f"runs/tests/{run_id}/model/model.json")).read_text())
    assert "<- chosen" in result.output
    metrics = json.loads(next(folder.glob(f"runs/tests/{run_id}/evaluation/metrics.json")).read_text())["test"]
    return chosen, {**model, "test_metrics": metrics}


def test_tune_chooses_on_the_training_split_only(tmp_path, sample_dataset):
    import datasets

    chosen, model = _tune(tmp_path / "a", sample_dataset)
    assert chosen["model"]["kind"] in ("tfidf", "ensemble")
    # The same dataset with every test label changed: the choice, its weights and thresholds must not move.
    changed = tmp_path / "changed"
    shutil.copytree(sample_dataset, changed)
    dataset = datasets.load_from_disk(str(sample_dataset))
    test = dataset["test"].map(lambda row: {"topic": (row["topic"] + 1) % 8,
                                            "bilateral_security_cooperation": 1 - row["bilateral_security_cooperation"]})
    shutil.rmtree(changed / "test")
    test.save_to_disk(str(changed / "test"))
    chosen_again, model_again = _tune(tmp_path / "b", changed)
    assert chosen_again == chosen
    assert model_again.get("thresholds") == model.get("thresholds")
    assert model_again["model"] == model["model"]
    assert model_again["test_metrics"] != model["test_metrics"]  # the labels did change what the test split says


def _tags(folder, output: str) -> dict:
    from mlflow import MlflowClient

    run_id = printed_run_id(output)
    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").get_run(run_id).data.tags


def _tune_and_load(folder, data, tagged: str, **overrides):
    """`taawun tune` run in `folder` on an experiment with `overrides` (its run's tag saying `tagged`); the result, the
    experiment, its train split, schema and tasks."""
    from train.config.experiment import load_experiment
    from train.workflows.train import load_training_data

    folder.mkdir()
    config = experiment_file(folder, data, evaluation={"splits": ["test"], "bootstrap": 0}, **overrides)
    result = run_cli("tune", config)
    assert result.exit_code == 0, result.output
    assert tagged in _tags(folder, result.output)["taawun.tuned"]
    experiment = load_experiment(config)
    dataset, _, _, schema, tasks = load_training_data(experiment)
    return result, experiment, dataset["train"], schema, tasks


def test_tune_scores_choices_on_the_target_articles_never_the_auxiliary_ones(tmp_path):
    """An auxiliary corpus's labels (mapped sections, silver votes) train every fold, but no choice is scored on them:
    evaluation measures the target data, so the trials, ensemble weights and thresholds are compared on it alone."""
    from train.evaluation.metrics import labelled_macro_f1
    from train.workflows.tune import choose

    articles = sample_articles()
    target, auxiliary = articles[:110], articles[110:]
    topics = sorted({a["topic"] for a in articles})
    shifted = [{**a, "id": f"aux-{a['id']}", "topic": topics[(topics.index(a["topic"]) + 1) % len(topics)]}
               for a in auxiliary]  # labels that contradict the target's: scored on, they would pull every choice
    labels = {task: task for task in ("topic", "bilateral_security_cooperation", "stance")}
    data = write_config(tmp_path / "data.yaml", {
        "sources": [{"path": str(write_jsonl(tmp_path / "target.jsonl", target)), "labels": labels},
                    {"path": str(write_jsonl(tmp_path / "aux.jsonl", shifted)), "labels": {"topic": "topic"},
                     "auxiliary": True}],
        "split": {"strategy": "random", "train": 0.7, "validation": 0.15, "test": 0.15},
        "output": str(tmp_path / "built")})
    _, experiment, split, schema, tasks = _tune_and_load(tmp_path / "run", data, "scored on the target articles",
                                                         tune=TUNE, tasks=["topic"])
    is_auxiliary = np.asarray(split["auxiliary"])
    assert is_auxiliary.sum() >= len(auxiliary) - 3 and (~is_auxiliary).sum() >= 60
    trials, _ = choose(experiment, split, tasks, schema)
    truth = np.where(is_auxiliary, -1, np.asarray(split["topic"]))
    for trial in trials:
        proba = trial.proba["topic"]
        assert np.all(proba[is_auxiliary] == 0)  # never held out: trained on in every fold
        assert np.allclose(proba[~is_auxiliary].sum(axis=1), 1)  # every target article held out once
        assert trial.scores["topic"] == labelled_macro_f1(truth, proba)


def test_tune_group_by_holds_out_whole_outlets(tmp_path, sample_dataset):
    """`tune.group_by: source`: every fold holds out whole outlets, so the choice is made for outlets never seen."""
    import datasets

    from train.config.experiment import TuneConfig
    from train.models.base import Articles, split_labels
    from train.schema import Schema
    from train.workflows.tune import column_groups, tune_folds

    split = datasets.load_from_disk(str(sample_dataset))["train"]
    tasks = Schema.model_validate(yaml.safe_load((ROOT / "configs" / "schema.yaml").read_text())).tasks
    folds = tune_folds(TuneConfig(candidates=[{"kind": "tfidf"}], folds=3, group_by="source"), split,
                       Articles.from_split(split), split_labels(split, tasks), tasks, seed=13)
    # An outlet's copy of another outlet's article (syndication) goes with its duplicate cluster, never apart from it.
    outlet, cluster, group = np.asarray(split["source"]), np.asarray(split["cluster"]), column_groups(split, "source")
    assert 0 < (group != outlet).sum() <= 8 and set(group) == set(outlet)
    held = [set(group[rows]) for _, rows in folds]
    assert sorted(g for groups in held for g in groups) == sorted(set(outlet))  # each outlet held out once
    for (fit, rows), groups in zip(folds, held, strict=True):
        assert not groups & set(group[fit]) and not set(cluster[rows]) & set(cluster[fit])

    single = {"folds": 3, "candidates": [{"kind": "tfidf", "classifier": "complement_nb"}]}
    for name, tune, expected in (
            ("grouped", {**single, "group_by": "source"}, None),
            ("no-column", {**single, "group_by": "outlet"}, "tune.group_by: the dataset has no column 'outlet'"),
            ("too-few", {**single, "folds": 6, "group_by": "source"}, "set tune.folds to at most 5")):
        folder = tmp_path / name
        folder.mkdir()
        result = run_cli("tune", experiment_file(folder, sample_dataset, tune=tune,
                                                 evaluation={"splits": ["test"], "bootstrap": 0}))
        if expected is None:
            assert result.exit_code == 0, result.output
            assert "grouped by source" in _tags(folder, result.output)["taawun.tuned"]
            line = next(line for line in result.output.splitlines() if line.startswith("trial 0:tfidf"))
            assert all(f"{name} 0." in line or f"{name} 1.000" in line for name in set(outlet)), line
        else:
            assert result.exit_code != 0 and "Traceback" not in result.output
            assert expected in result.output, result.output


def test_tune_adapt_priors_scores_each_held_out_outlet_with_its_own_label_proportions(tmp_path, sample_dataset):
    """`tune.adapt_priors`: a trial is scored as `--adapt-priors` will use the model, each held-out outlet's
    probabilities adapted to its own label proportions; no label of that outlet is read for its own adaptation."""
    from train.evaluation.metrics import labelled_macro_f1
    from train.models.base import Articles, split_labels
    from train.models.selection import adapted_out_of_fold
    from train.workflows.tune import choose, column_groups, tune_folds

    adapting = {"folds": 5, "group_by": "source", "adapt_priors": True,
                "candidates": [{"kind": "tfidf"}]}
    folder = tmp_path / "run"
    result, experiment, split, _, tasks = _tune_and_load(folder, sample_dataset,
                                                         "label priors adapted to each held-out source", tune=adapting)
    labels, groups = split_labels(split, tasks), column_groups(split, "source")
    trials, _ = choose(experiment, split, tasks)
    plain, _ = choose(experiment.model_copy(update={"tune": experiment.tune.model_copy(
        update={"adapt_priors": False})}), split, tasks)
    folds = tune_folds(experiment.tune, split, Articles.from_split(split), labels, tasks, experiment.seed)
    for trial, unadapted in zip(trials, plain, strict=True):
        adapted = adapted_out_of_fold(tasks, trial.proba, labels, folds, groups)
        assert trial.scores == {task: labelled_macro_f1(labels[task], p) for task, p in adapted.items()}
        assert trial.proba["topic"].tolist() == unadapted.proba["topic"].tolist()  # the same models' probabilities
    assert any(t.scores != u.scores for t, u in zip(trials, plain, strict=True))  # adaptation moved the scores
    # Each trial's child run also gives its macro-F1 on every held-out outlet, adapted as scored.
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    parent = client.get_run(printed_run_id(result.output)).info
    [child] = client.search_runs([parent.experiment_id], f"tags.mlflow.parentRunId = '{parent.run_id}'")
    adapted = adapted_out_of_fold(tasks, trials[0].proba, labels, folds, groups)
    for outlet in set(groups):
        truth = np.where(groups == outlet, labels["stance"], -1)
        assert child.data.metrics[f"cv/stance/macro_f1_by_group/{outlet}"] == pytest.approx(
            labelled_macro_f1(truth, adapted["stance"]))

    # One outlet's labels changed: its own adapted probabilities do not move, the other outlets' (calibrated on it) do.
    proba = plain[0].proba
    sizes = {value: (groups == value).sum() for value in set(groups)}
    outlet = max(sizes, key=sizes.get)
    mine = groups == outlet
    changed = {task.name: np.where(mine & (labels[task.name] >= 0), (labels[task.name] + 1) % len(task.labels),
                                   labels[task.name]) for task in tasks}
    before = adapted_out_of_fold(tasks, proba, labels, folds, groups)
    after = adapted_out_of_fold(tasks, proba, changed, folds, groups)
    small = [value for value, size in sizes.items() if size < 20]
    assert small, "the sample should have an outlet too small to adapt"
    for task in before:
        assert np.array_equal(before[task][mine], after[task][mine])
        assert not np.allclose(before[task][~mine], after[task][~mine])
        kept = np.isin(groups, small)
        assert np.array_equal(before[task][kept], proba[task][kept])  # too few articles to estimate proportions
        assert not np.allclose(before[task][mine], proba[task][mine])

    folder = tmp_path / "ungrouped"
    folder.mkdir()
    result = run_cli("tune", experiment_file(folder, sample_dataset, tune={**adapting, "group_by": None}))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "adapt_priors" in result.output and "set `group_by`" in result.output, result.output
