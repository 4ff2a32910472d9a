"""The annotation loop against a real Label Studio 1.23 server on 127.0.0.1 (slow: the server starts in ~2 minutes).

`make labelstudio` installs the server into its own virtualenv, `.venv-labelstudio` (`make test-all` does it first).
The test starts it on a free port with a fresh data folder, an admin whose API token is set on the command line, and
two annotators who sign up through the web form as people do; then: train on seed labels, `taawun annotate push`
(twice), the annotators label the tasks through the API with their own tokens, `taawun annotate pull --data-config`
exports and builds, and the dataset holds their labels, named by e-mail.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import datasets
import pytest
import requests

from tests.helpers import ROOT, run_cli, write_config, write_jsonl
from tests.workflows.test_suggest import TASKS, expected_uncertainty, sample_articles, train_run, truth_labels
from train.labelstudio import labelstudio_config
from train.models.predictor import load_predictor
from train.workflows.annotate import same_config

pytestmark = pytest.mark.slow

SERVER = ROOT / ".venv-labelstudio" / "bin" / "label-studio"
ADMIN, TOKEN = "admin@example.org", "taawun-live-test-token-0123456789"
ANNOTATORS = ("amal@example.org", "omar@example.org")
PROJECT = "taawun live test"
START_TIMEOUT = 420  # a fresh data folder runs all of Label Studio's migrations first: ~2 minutes on 2 cores


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Label Studio exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(f"{url}/health", timeout=10).ok:
                return
        except requests.RequestException:  # not listening yet, or still busy migrating
            pass
        time.sleep(2)
    pytest.fail(f"Label Studio did not answer on {url} within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """A Label Studio server on 127.0.0.1 with a fresh data folder: its URL, stopped (whole process group) after."""
    if not SERVER.exists():
        pytest.skip("Label Studio is not installed in .venv-labelstudio: run `make labelstudio` (make test-all does)")
    folder = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("LABEL_STUDIO_", "DJANGO_"))}
    # No version check against PyPI, no analytics: nothing leaves the machine.
    env.update(LATEST_VERSION_CHECK="false", COLLECT_ANALYTICS="false", LABEL_STUDIO_BASE_DATA_DIR=str(folder / "data"))
    log = folder / "server.log"
    command = [str(SERVER), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
               "--data-dir", str(folder / "data"), "--username", ADMIN, "--password", "admin-password-1",
               "--user-token", TOKEN, "--enable-legacy-api-token"]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=folder, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def sign_up(url: str, email: str) -> str:
    """Sign up through Label Studio's web form, as a new annotator does; returns their API token."""
    session = requests.Session()
    session.get(f"{url}/user/signup/", timeout=30)
    form = {"email": email, "password": "annotator-password-1", "csrfmiddlewaretoken": session.cookies["csrftoken"]}
    session.post(f"{url}/user/signup/", data=form, headers={"Referer": f"{url}/user/signup/"}, timeout=30)
    answer = session.get(f"{url}/api/current-user/token", timeout=30)
    assert answer.ok, answer.text
    return answer.json()["token"]


def annotate_all(client, project_id: int, truth: dict[str, dict[str, str]], limit: int | None = None) -> list[str]:
    """Label the project's tasks (the first `limit`) with the held-back truth, one POST per task as the UI sends."""
    labelled = []
    for task in list(client.tasks.list(project=project_id))[:limit]:
        labels = truth[task.data["id"]]
        client.annotations.create(id=task.id, result=[
            {"from_name": t, "to_name": "text", "type": "choices", "value": {"choices": [labels[t]]}} for t in TASKS])
        labelled.append(task.data["id"])
    return labelled


def test_push_annotate_pull_build_against_a_real_label_studio(label_studio, tmp_path, sample_dataset):
    from label_studio_sdk import LabelStudio

    truth = truth_labels(sample_dataset)
    articles = [r for r in sample_articles() if r["id"] in truth]
    seed = write_jsonl(tmp_path / "seed.jsonl", [{**r, **truth[r["id"]]} for r in articles[::3]])
    pooled = [r for i, r in enumerate(articles) if i % 3]
    pool = write_jsonl(tmp_path / "pool.jsonl", pooled)
    seed_config = write_config(tmp_path / "seed.yaml", {
        "sources": [{"path": str(seed), "name": "seed", "labels": {t: t for t in TASKS}}],
        "dedup": {"threshold": 0.5}, "split": {"stratify_by": "topic", "train": 0.7, "validation": 0.15, "test": 0.15},
        "output": str(tmp_path / "seed-built")})
    assert run_cli("data", "build", seed_config).exit_code == 0
    model = train_run(tmp_path / "first", tmp_path / "seed-built") / "model"

    server = ("--url", label_studio, "--api-key", TOKEN, "--project", PROJECT)
    first = run_cli("annotate", "push", model, "--input", pool, "--n", "12", *server)
    assert first.exit_code == 0, first.output
    assert f"Label Studio project {PROJECT!r}" in first.output and "created" in first.output
    assert "12 of " in first.output
    admin = LabelStudio(base_url=label_studio, api_key=TOKEN)
    (project,) = [p for p in admin.projects.list() if p.title == PROJECT]
    first_ids = {task.data["id"] for task in admin.tasks.list(project=project.id)}
    # The second push adapts the priors to the rest of the pool (the 12 already there are left out of it).
    again = run_cli("annotate", "push", model, "--input", pool, "--n", "5", "--adapt-priors", *server)
    assert again.exit_code == 0, again.output
    assert "labeling config unchanged" in again.output and "12 article(s) already in the project" in again.output
    assert "note: topic: probabilities adapted to the label proportions estimated in the pool" in again.output

    assert same_config(admin.projects.get(project.id).label_config, labelstudio_config(load_predictor(model).schema))
    tasks = list(admin.tasks.list(project=project.id))
    ids = [task.data["id"] for task in tasks]
    assert len(ids) == 17 and len(set(ids)) == 17  # the second push added 5 new articles, none twice
    uncertainty = {**expected_uncertainty(model, [r for r in pooled if r["id"] not in first_ids], adapt_priors=True),
                   **expected_uncertainty(model, [r for r in articles if r["id"] in first_ids])}
    for task in tasks:
        (prediction,) = admin.predictions.list(task=task.id)
        assert prediction.score == pytest.approx(1 - uncertainty[task.data["id"]], abs=1e-5)  # confidence, stored
        assert {r["from_name"] for r in prediction.result} == set(TASKS)

    amal, omar = (LabelStudio(base_url=label_studio, api_key=sign_up(label_studio, email)) for email in ANNOTATORS)
    labelled = annotate_all(amal, project.id, truth)
    annotate_all(omar, project.id, truth, limit=6)

    export = tmp_path / "export.json"
    data_config = write_config(tmp_path / "data.yaml", {
        "sources": [{"path": str(seed), "name": "seed", "labels": {t: t for t in TASKS}},
                    {"path": str(export), "format": "labelstudio", "name": "labelstudio"}],  # the export's articles
        "annotations": [{"path": str(export), "format": "labelstudio"}],
        "dedup": {"threshold": 0.5}, "split": {"stratify_by": "topic", "train": 0.7, "validation": 0.15, "test": 0.15},
        "output": str(tmp_path / "built")})
    pulled = run_cli("annotate", "pull", "--url", label_studio, "--api-key", TOKEN, "--project", PROJECT,
                     "--output", export, "--data-config", data_config)
    assert pulled.exit_code == 0, pulled.output
    assert f"17 annotated task(s), 23 annotation(s) by 2 annotator(s) ({', '.join(ANNOTATORS)})" in pulled.output

    dataset = datasets.load_from_disk(str(tmp_path / "built"))
    rows = {row["id"]: row for split in dataset.values() for row in split}
    names = {task: dataset["train"].features[task].names for task in TASKS}
    for article_id in labelled:
        assert {t: names[t][rows[article_id][t]] for t in TASKS} == truth[article_id]
        assert "export.json#task " in rows[article_id]["origin"]
    assert len(rows) == len(articles[::3]) + 17
    report = json.loads((tmp_path / "built" / "report.json").read_text(encoding="utf-8"))
    annotators = report["annotations"]["annotators"]  # the seed's inline labels count as annotator "inline"
    assert set(ANNOTATORS) <= set(annotators) and not [a for a in annotators if a.startswith("labelstudio:")]
