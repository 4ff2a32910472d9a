"""Every registered model kind honours the contract (train.models.base), like scikit-learn's check_estimator."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from train.models import registry
from train.models.base import Articles, FitContext, Labelled, split_labels
from train.models.predictor import Predictor, load_predictor
from train.schema import Schema

# Small settings so that every kind fits the sample in seconds; everything else is the kind's default.
SETTINGS = {
    "tfidf": {},
    "sentence_encoder": {},
    "transformer": {"tiny": {"vocab_size": 800, "hidden_size": 32, "layers": 1, "heads": 2, "intermediate_size": 64},
                    "max_length": 128, "epochs": 2, "learning_rate": 3e-3, "early_stopping_patience": None},
    "ensemble": {"members": [{"kind": "tfidf"}, {"kind": "tfidf", "classifier": "complement_nb"}], "folds": 2},
}


@pytest.fixture(scope="module", params=registry.names())
def fitted(request, sample_dataset, tmp_path_factory):
    """(kind name, fitted model, schema, test articles) for each registered kind, fit on the sample's train split."""
    import datasets

    name = request.param
    work = tmp_path_factory.mktemp(f"contract-{name}")
    settings = {**SETTINGS.get(name, {}), **({"cache_dir": str(work / "cache")} if name == "sentence_encoder" else {})}
    dataset = datasets.load_from_disk(str(sample_dataset))
    schema = _schema(sample_dataset)
    config = registry.config_class(name)(**settings)
    model = registry.model_class(name)(config, schema.tasks)
    validation = Labelled(Articles.from_split(dataset["validation"]), split_labels(dataset["validation"], schema.tasks))
    returned = model.fit(Articles.from_split(dataset["train"]), split_labels(dataset["train"], schema.tasks),
                         FitContext(seed=3, validation=validation, work_dir=work))
    assert returned is model, "fit returns self"
    return name, model, schema, Articles.from_split(dataset["test"]), work


def _schema(folder) -> Schema:
    import json

    return Schema.model_validate(json.loads((folder / "taawun.json").read_text(encoding="utf-8"))["schema"])


def test_probabilities_per_task_in_schema_order(fitted):
    _, model, schema, test, _ = fitted
    proba = model.predict_proba(test)
    assert list(proba) == schema.task_names
    for task in schema.tasks:
        p = proba[task.name]
        assert p.shape == (len(test), len(task.labels))
        assert np.all(np.isfinite(p)) and np.all(p >= 0)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


def test_save_and_load_give_the_same_probabilities(fitted, tmp_path):
    name, model, schema, test, _ = fitted
    model.save(tmp_path)
    loaded = registry.model_class(name).load(tmp_path, model.config, schema.tasks)
    for task, values in model.predict_proba(test).items():
        np.testing.assert_allclose(loaded.predict_proba(test)[task], values, atol=1e-6)


def test_the_logged_pyfunc_predicts_as_the_model(fitted, tmp_path, sample_dataset):
    import json

    from train.tracking.store import log_model, use_experiment

    name, model, schema, test, _ = fitted
    settings = json.loads((sample_dataset / "taawun.json").read_text(encoding="utf-8"))
    preprocessing = {key: settings[key] for key in ("cleaning", "normalization", "schema")}
    predictor = Predictor(model, schema, schema.tasks, preprocessing, {"run_id": "contract"})
    predictor.save(tmp_path / "model")
    assert load_predictor(tmp_path / "model").model.kind == name
    frame = pd.DataFrame({"title": test.titles[:4], "text": test.texts[:4]})
    use_experiment(f"sqlite:///{tmp_path / 'mlflow.db'}", "contract")  # not the experiment an earlier test set
    with mlflow.start_run():
        uri = log_model(tmp_path / "model", frame, predictor.predict_frame(frame), None, model.requirements)
    out = mlflow.pyfunc.load_model(uri).predict(frame)
    pd.testing.assert_frame_equal(out, predictor.predict_frame(frame), atol=1e-6)
