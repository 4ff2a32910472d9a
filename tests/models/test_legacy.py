"""Models and datasets written by earlier versions of taawun still load and predict the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run_cli

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


@pytest.mark.parametrize("kind", ["tfidf", "encoder", "transformer"])
def test_old_model_folder_predicts_as_before(kind):
    from train.models.predictor import load_predictor

    expected = json.loads((LEGACY / "expected.json").read_text(encoding="utf-8"))
    articles = expected["articles"]
    predictor = load_predictor(LEGACY / "models" / kind)
    proba = predictor.predict_raw(articles["title"], articles["text"], {})
    for task, values in expected[kind].items():
        np.testing.assert_allclose(proba[task], np.asarray(values), atol=1e-5, err_msg=f"{kind} {task}")


def test_old_dataset_evaluates_through_the_cli():
    result = run_cli("evaluate", LEGACY / "models" / "tfidf", "--input", LEGACY / "dataset", "--split", "test",
                     "--no-log", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)["test"]
    assert set(metrics) == {"topic", "bilateral_security_cooperation", "stance"}
    assert metrics["topic"]["n"] > 0
