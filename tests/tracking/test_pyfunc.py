"""The logged pyfunc model imports the installed taawun when it is the model's version; its bundled copy otherwise.

MLflow puts the model's `code/` folder (a copy of the `train` package) first on `sys.path`. Each case loads the model
in a fresh Python, as a user or a server would, and asks where `train` was imported from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.helpers import ROOT

LOAD = """
import sys
import mlflow
import pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.DataFrame({"text": ["فاز المنتخب الوطني في المباراة النهائية للبطولة"]}))
assert "topic" in out.columns
print(sys.modules["train"].__file__)
"""


@pytest.fixture(scope="module")
def logged_model(trained, tmp_path_factory) -> Path:
    """The trained run's pyfunc model, downloaded from its store."""
    folder = tmp_path_factory.mktemp("pyfunc")
    mlflow.set_tracking_uri(trained["uri"])  # a logged model's files are found through the global tracking URI
    return Path(mlflow.artifacts.download_artifacts(f"runs:/{trained['run_id']}/model", dst_path=str(folder)))


def _imported_from(model: Path, cwd: Path) -> Path:
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    result = subprocess.run([sys.executable, "-c", LOAD, str(model)], cwd=cwd, capture_output=True, text=True,
                            env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return Path(result.stdout.strip().splitlines()[-1]).resolve()


def test_the_installed_taawun_of_the_same_version_is_used(logged_model, tmp_path):
    assert (logged_model / "code" / "train" / "__init__.py").is_file()  # the bundled copy is there
    assert _imported_from(logged_model, tmp_path) == (ROOT / "train" / "__init__.py").resolve()


def test_the_bundled_code_is_used_for_another_version(logged_model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(logged_model, copy)
    info_path = copy / "artifacts" / "model" / "model.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["taawun_version"] = "0.0.0+other"
    info_path.write_text(json.dumps(info), encoding="utf-8")
    assert _imported_from(copy, tmp_path) == (copy / "code" / "train" / "__init__.py").resolve()
