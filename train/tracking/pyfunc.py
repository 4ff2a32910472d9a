"""The MLflow pyfunc model, logged as code (MLflow "models from code"), so no Python object is pickled.

MLflow runs this file when a model is loaded; `load_context` reads the saved model folder (JSON, npz, skops).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class TaawunModel(PythonModel):
    """Predicts labels and probabilities for every task from raw article text (`text`, optional `title`)."""

    def load_context(self, context) -> None:
        """Load the model folder logged as the `model` artifact."""
        from train.models.predictor import load_predictor

        self.predictor = load_predictor(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """A DataFrame of raw articles -> a DataFrame with one label column and probability columns per task."""
        return self.predictor.predict_frame(model_input)


mlflow.models.set_model(TaawunModel())
