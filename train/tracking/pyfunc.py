"""The MLflow pyfunc model, logged as code (MLflow "models from code"), so no Python object is pickled.

MLflow runs this file when a model is loaded; `load_context` reads the saved model folder (JSON, npz, skops). The model
also carries a copy of the `train` package (`code/`), which MLflow puts first on `sys.path`: loading a model runs
Python code stored with it. Where taawun of the model's version is installed, the installed package is used instead;
the bundled copy is the fallback, for a Python without taawun.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class TaawunModel(PythonModel):
    """Predicts labels and probabilities for every task from raw article text (`text`, optional `title`)."""

    def load_context(self, context) -> None:
        """Load the model folder logged as the `model` artifact, with the installed taawun when it matches."""
        folder = Path(context.artifacts["model"])
        saved = json.loads((folder / "model.json").read_text(encoding="utf-8")).get("taawun_version")
        prefer_installed(folder.parents[1] / "code", saved)
        from train.models.predictor import load_predictor

        self.predictor = load_predictor(folder)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """A DataFrame of raw articles -> a DataFrame with one label column and probability columns per task.
        `params={"adapt_priors": True}` adapts the probabilities to the label proportions of the frame's articles."""
        return self.predictor.predict_frame(model_input, adapt_priors=bool((params or {}).get("adapt_priors")))


def prefer_installed(bundled: Path, model_version: str | None) -> bool:
    """Import `train` from the installed taawun rather than from `bundled` when its version is the model's.

    Returns whether the installed package is used. The bundled folder leaves `sys.path`, and modules already imported
    from it are forgotten, so the next import finds the installed package.
    """
    try:
        installed = version("taawun")
    except PackageNotFoundError:
        return False
    if installed != model_version:
        return False
    bundled = bundled.resolve()
    sys.path[:] = [entry for entry in sys.path if not _same(entry, bundled)]
    for name in [name for name in sys.modules if name == "train" or name.startswith("train.")]:
        origin = getattr(sys.modules[name], "__file__", None) or ""
        if Path(origin).resolve().is_relative_to(bundled):
            del sys.modules[name]
    return True


def _same(entry: str, folder: Path) -> bool:
    try:
        return Path(entry).resolve() == folder
    except (OSError, ValueError):
        return False


mlflow.models.set_model(TaawunModel())
