"""`mlflow models serve -m runs:/<id>/model`: a real scoring server on 127.0.0.1 answers as `taawun predict` does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import run_cli, wait_until_answering, write_jsonl
from train.tracking.ui import free_port

ARTICLES = [
    {"id": "n1", "title": "نهائي البطولة", "text": "فاز المنتخب الوطني في المباراة النهائية للبطولة بهدفين نظيفين"},
    {"id": "n2", "title": "", "text": "ارتفعت أسعار النفط في الأسواق العالمية وتراجع الدولار أمام العملات"},
    {"id": "n3", "title": "زيارة رسمية", "text": "استقبل وزير الخارجية نظيره لبحث التعاون الأمني ومكافحة الإرهاب"},
]


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """`mlflow models serve` on the trained TF-IDF run, in this Python (`--env-manager local`), stopped afterwards."""
    folder = tmp_path_factory.mktemp("serve")
    url = f"http://127.0.0.1:{free_port()}"
    # MLflow starts `uvicorn` by name: the virtualenv's bin folder must be on PATH, as in an activated virtualenv.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": trained["uri"], "PATH": path}
    with open(folder / "serve.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"runs:/{trained['run_id']}/model",
             "--env-manager", "local", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]],
            cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # uvicorn's workers share its process group: stopped together
        try:
            wait_until_answering(f"{url}/ping", process, folder / "serve.log", "mlflow models serve")
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _invoke(url: str, payload: dict) -> list[dict]:
    request = urllib.request.Request(f"{url}/invocations", data=json.dumps(payload, ensure_ascii=False).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["predictions"]


@pytest.fixture(scope="module")
def predicted(trained, tmp_path_factory) -> list[dict]:
    """`taawun predict` on the same articles, from the same run."""
    folder = tmp_path_factory.mktemp("serve-predict")
    source = write_jsonl(folder / "in.jsonl", ARTICLES)
    result = run_cli("predict", f"runs:/{trained['run_id']}/model", "--input", source, "--output",
                     folder / "out.jsonl", "--tracking-uri", trained["uri"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (folder / "out.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("orient", ["dataframe_split", "dataframe_records"])
def test_served_model_answers_like_taawun_predict(server, predicted, orient):
    rows = [{"title": a["title"], "text": a["text"]} for a in ARTICLES]
    payload = ({"dataframe_split": {"columns": ["title", "text"], "data": [[r["title"], r["text"]] for r in rows]}}
               if orient == "dataframe_split" else {"dataframe_records": rows})
    served = _invoke(server, payload)
    assert len(served) == len(ARTICLES)
    tasks = [key for key in predicted[0] if key != "id" and not key.endswith("_probabilities")]
    assert tasks == ["topic", "bilateral_security_cooperation", "stance"]
    for row, expected in zip(served, predicted, strict=True):
        for task in tasks:
            assert row[task] == expected[task]
            for label, probability in expected[f"{task}_probabilities"].items():
                assert row[f"{task}.proba.{label}"] == pytest.approx(probability, abs=1e-6)
    assert served[0]["topic"] == "sports"  # the sports article, read right


def test_served_model_refuses_input_without_text(server):
    with pytest.raises(urllib.error.HTTPError) as refused:
        _invoke(server, {"dataframe_records": [{"title": "عنوان بلا نص"}]})
    assert refused.value.code == 400
    assert "missing inputs ['text']" in refused.value.read().decode()
