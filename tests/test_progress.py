"""Progress of `taawun data build` and `taawun train`: a line on stderr as each long step starts (never on stdout,
which holds the tables), a bar on a terminal when a loop has many items, and no long silence."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.helpers import ROOT, experiment_file, labelled_articles, printed_run_id, run_cli

STEP = re.compile(r"^\[\d+\.\ds\] (.+)$")
LEGACY = ROOT / "tests" / "fixtures" / "legacy"


def steps(stderr: str) -> list[str]:
    """The progress steps a command wrote, without their `[1.2s]` stamps."""
    return [match.group(1) for line in stderr.splitlines() if (match := STEP.match(line))]


def in_order(found: list[str], expected: list[str]) -> bool:
    """Whether each expected start of a step is found, in this order (other steps may come between)."""
    position = 0
    for start in expected:
        position = next((i + 1 for i in range(position, len(found)) if found[i].startswith(start)), -1)
        if position < 0:
            return False
    return True


def test_data_build_says_each_step_on_stderr_only(corpus):
    result = run_cli("data", "build", corpus())
    assert result.exit_code == 0, result.output
    found = steps(result.stderr)
    assert in_order(found, ["reading ", "cleaning and normalizing 40 articles", "labelling", "de-duplicating 40 articles",
                            "splitting (random)", "assembling 40 articles", "writing the dataset to "]), found
    assert not steps(result.stdout) and "\r" not in result.stderr  # off a terminal: lines, no bar


def test_tfidf_train_says_each_step_on_stderr_only(trained, sample_dataset):
    import datasets

    train_articles = len(datasets.load_from_disk(str(sample_dataset))["train"])
    found = steps(trained["stderr"])
    assert in_order(found, ["opening the tracking store", "opening the dataset",
                            f"fitting TF-IDF features on {train_articles} articles",
                            "fitting topic: logreg on ", "fitting bilateral_security_cooperation: logreg on ",
                            "fitting stance: logreg on ", "evaluating on validation", "evaluating on test",
                            "writing the evaluation and the model to ", "logging the run to MLflow"]), found
    assert not steps(trained["stdout"]) and "macro-F1" in trained["stdout"]


def test_a_search_says_how_many_fits_per_task_and_what_it_chose(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, model={"search": {"grid": {"C": [1.0, 10.0]}, "folds": 2}},
                             tasks=["stance"], evaluation={"splits": ["test"], "bootstrap": 0})
    result = run_cli("train", config)
    assert result.exit_code == 0, result.output
    assert "searching stance: 2 combination(s) by 2-fold cross-validation" in steps(result.stderr)
    assert re.search(r"stance: chose \{'C': (1\.0|10\.0)\} \(macro-F1 0\.\d{3}\)", "\n".join(steps(result.stderr)))


def test_embedding_says_how_many_sentences_and_how_many_were_cached(tmp_path):
    model = tmp_path / "encoder"
    shutil.copytree(LEGACY / "models" / "encoder", model)
    saved = json.loads((model / "model.json").read_text(encoding="utf-8"))
    saved["model"]["cache_dir"] = str(tmp_path / "cache")  # an empty cache
    (model / "model.json").write_text(json.dumps(saved), encoding="utf-8")
    evaluate = ("evaluate", model, "--input", LEGACY / "dataset", "--split", "test", "--no-log")
    first = run_cli(*evaluate)
    assert first.exit_code == 0, first.output
    embedding = [step for step in steps(first.stderr) if step.startswith("embedding ")]
    assert embedding and all(re.fullmatch(r"embedding (\d+) sentences with use-multilingual-v3: 0 cached, \1 to "
                                          "compute", step) for step in embedding), embedding
    again = run_cli(*evaluate)
    assert again.exit_code == 0, again.output
    cached = [step for step in steps(again.stderr) if step.startswith("embedding ")]
    assert [re.sub(r": .*", "", step) for step in cached] == [re.sub(r": .*", "", step) for step in embedding]
    assert all(step.endswith(": all cached") for step in cached), cached
    # inside `taawun predict`'s bar over batches, no line: it would tear the bar
    predicted = run_cli("predict", model, "--input", ROOT / "data" / "sample" / "new.jsonl", "--output",
                        tmp_path / "predictions.jsonl")
    assert predicted.exit_code == 0, predicted.output
    assert not steps(predicted.stderr) and "predicting new.jsonl" in predicted.stderr


def _in_terminal(argv: list[str], cwd) -> str:
    """Run a command with stdout and stderr on a pseudo-terminal; everything it wrote there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal has a size
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=cwd)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=300)
    os.close(leader)
    assert process.returncode == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_a_terminal_gets_a_bar_over_many_articles(tmp_path, corpus):
    config = corpus(labelled_articles(2500))
    shown = _in_terminal([sys.executable, "-m", "train", "data", "build", str(config)], tmp_path)
    assert re.search(r"\d+/2500 \[", shown), shown[-2000:]  # tqdm's "n/total [elapsed<left, rate]"
    assert "cleaning and normalizing 2500 articles" in shown


@pytest.mark.slow
def test_a_tfidf_train_on_the_sample_is_never_silent_long(tmp_path, sample_dataset):
    """The real command in a process of its own: the longest time without a new line on stderr or stdout."""
    config = experiment_file(tmp_path, sample_dataset)
    started = time.monotonic()
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "taawun"), "train", str(config)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stamps = [started]
    lines = []
    for line in process.stdout:
        stamps.append(time.monotonic())
        lines.append(line)
    process.wait()
    stamps.append(time.monotonic())
    assert process.returncode == 0, "".join(lines)[-3000:]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    longest = max(range(len(gaps)), key=gaps.__getitem__)
    after = lines[longest - 1].strip() if longest else "(the start)"
    assert gaps[longest] < 8.0, f"silent for {gaps[longest]:.1f}s after: {after}"


def test_an_ensemble_says_and_logs_the_weights_it_chose_per_task(tmp_path, sample_dataset):
    """The weights chosen on out-of-fold probabilities are what an ensemble decided: the terminal says them per task,
    and the run keeps them as metrics (the MLflow UI compares them across runs), equal to the saved model's."""
    from mlflow import MlflowClient

    members = [{"kind": "tfidf"}, {"kind": "tfidf", "classifier": "complement_nb"}]
    config = experiment_file(tmp_path, sample_dataset, model={"kind": "ensemble", "folds": 2, "members": members},
                             tasks=["topic", "stance"], evaluation={"splits": ["test"], "bootstrap": 0})
    result = run_cli("train", config)
    assert result.exit_code == 0, result.output
    found = "\n".join(steps(result.stderr))
    for task in ("topic", "stance"):
        assert re.search(rf"^{task}: ensemble weights 0\.\d\d tfidf-logreg, 0\.\d\d tfidf-complement_nb "
                         r"\(out-of-fold macro-F1 0\.\d{3}\)$", found, re.M), found
    run_id = printed_run_id(result.output)
    metrics = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id).data.metrics
    saved = json.loads(next(tmp_path.glob(f"runs/tests/{run_id}/model/ensemble.json")).read_text())["weights"]
    for task in ("topic", "stance"):
        logged = [metrics[f"fit/{task}/weight/{i}-{name}"] for i, name in ((1, "tfidf-logreg"),
                                                                         (2, "tfidf-complement_nb"))]
        assert logged == pytest.approx(saved[task]) and sum(logged) == pytest.approx(1.0)
