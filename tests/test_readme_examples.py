"""The README's commands work as written, on files the repository ships: the example inputs under data/sample/
(heldout.csv, new.jsonl, unlabelled.jsonl) are the sample corpus's own held-out articles."""

from __future__ import annotations

import csv
import json
import re
import shlex
import shutil

import datasets
import pytest

from tests.helpers import ROOT, run_cli

README = ROOT / "README.md"
SAMPLE = ROOT / "data" / "sample"
EXAMPLES = ("data/sample/heldout.csv", "data/sample/new.jsonl", "data/sample/unlabelled.jsonl")
# The commands that run here on their own; others (`annotate push` to Label Studio, `predict --engine spark`) need a
# server or an engine, and their own tests run them.
LOCAL = ("taawun evaluate ", "taawun predict ", "taawun annotate suggest ")


def runs_here(command: str) -> bool:
    """Whether a README line is one of the commands this file runs, on an example file."""
    return (command.startswith(LOCAL) and "--engine" not in command
            and any(example in command for example in EXAMPLES))


def readme_blocks() -> list[tuple[str, list[str]]]:
    """The README's bash blocks: the heading above each, and its `taawun ...` lines as written (comments included)."""
    blocks, heading, block = [], "", None
    for line in README.read_text(encoding="utf-8").splitlines():
        if block is None and line.startswith("#"):
            heading = line.lstrip("# ")
        elif line.startswith("```"):
            block = [] if line.strip() == "```bash" and block is None else None
            if block is not None:
                blocks.append((heading, block))
        elif block is not None and line.startswith("taawun "):
            block.append(line)
    return blocks


def readme_commands() -> list[str]:
    """Every `taawun ...` line of the README's bash blocks."""
    return [command for _, block in readme_blocks() for command in block]


def argv(command: str, run_ids: list[str]) -> list[str]:
    """A README line as `taawun` arguments: `<run id>` placeholders filled in (the last run; for two, the first two)."""
    placeholders = command.count("<run id>")
    for run_id in (run_ids[:placeholders] if placeholders > 1 else run_ids[-1:] * placeholders):
        command = command.replace("<run id>", run_id, 1)
    return shlex.split(command, comments=True)[1:]


def raw_articles(path) -> dict[str, dict]:
    return {article["id"]: article for article in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_the_example_files_are_held_out_articles_of_the_sample(sample_dataset):
    dataset = datasets.load_from_disk(str(sample_dataset))
    raw = raw_articles(SAMPLE / "articles.jsonl")
    test_ids, validation_ids = list(dataset["test"]["id"]), list(dataset["validation"]["id"])
    topics = dataset["test"].features["topic"].names
    with open(SAMPLE / "heldout.csv", encoding="utf-8", newline="") as handle:
        heldout = list(csv.DictReader(handle))
    assert [row["id"] for row in heldout] == test_ids  # never an article a model trained on the sample has seen
    assert [row["label"] for row in heldout] == [topics[label] for label in dataset["test"]["topic"]]  # final labels
    assert all(row["body"] == raw[row["id"]]["text"] and row["title"] == raw[row["id"]]["title"] for row in heldout)
    new = raw_articles(SAMPLE / "new.jsonl")
    assert list(new) == test_ids and all(article == raw[i] for i, article in new.items())  # raw, without labels
    unlabelled = raw_articles(SAMPLE / "unlabelled.jsonl")
    assert list(unlabelled) == validation_ids + test_ids and all(a == raw[i] for i, a in unlabelled.items())


def test_readme_commands_on_the_example_files_run(trained, tmp_path, monkeypatch):
    """Each README line using an example file, against the session's TF-IDF run (models:/news-tfidf/1 is that run's
    model here; the slow test below registers it as the README does)."""
    commands = [command for command in readme_commands() if runs_here(command)]
    assert {example for example in EXAMPLES if any(example in command for command in commands)} == set(EXAMPLES)
    (tmp_path / "data").symlink_to(ROOT / "data")  # run where the README's relative paths resolve; write here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["uri"])
    for command in commands:
        command = command.replace("models:/news-tfidf/1", "runs:/<run id>/model")
        result = run_cli(*argv(command, [trained["run_id"]]), cwd=tmp_path)
        assert result.exit_code == 0, f"{command}\n{result.output}"
        _check_output(command, result, tmp_path)


def _check_output(command: str, result, folder) -> None:
    """What each example command must have produced."""
    if " evaluate " in f" {command} " and "--json" in command:
        metrics = json.loads(result.stdout)["heldout"]
        assert set(metrics) == {"topic"} and metrics["topic"]["n"] == len(raw_articles(SAMPLE / "new.jsonl"))
    elif " evaluate " in f" {command} ":
        assert result.stdout.startswith("[heldout]") and "\ntopic " in result.stdout
        if "--adapt-priors" in command:
            assert "note: topic: probabilities adapted to the label proportions estimated" in result.stdout
    elif " predict " in f" {command} ":
        predictions = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(predictions) == len(raw_articles(SAMPLE / "new.jsonl"))
    elif " suggest " in f" {command} ":
        wanted = int(re.search(r"--n (\d+)", command).group(1))
        assert len(json.loads((folder / "tasks.json").read_text(encoding="utf-8"))) == wanted


@pytest.mark.slow
def test_the_readme_training_block_runs_as_written(tmp_path, monkeypatch):
    """The first block of "Training, evaluating, predicting" (but `taawun ui`, a server) and the other lines that
    run an example file here, verbatim, in a copy of the project."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(SAMPLE, tmp_path / "data" / "sample")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the README's default store, ./mlflow.db
    block = next(commands for heading, commands in readme_blocks() if heading == "Training, evaluating, predicting")
    commands = [c for c in block if c.split()[1] != "ui" and "--engine" not in c]
    commands += [c for c in readme_commands() if runs_here(c) and c not in commands]
    run_ids: list[str] = []
    for command in commands:
        result = run_cli(*argv(command, run_ids), cwd=tmp_path)
        assert result.exit_code == 0, f"{command}\n{result.output}"
        if command.split()[1] == "train" and "--dry-run" not in command:
            run_ids.append(re.search(r"^run (\w+) logged", result.stdout, re.MULTILINE).group(1))
        elif "--dry-run" in command:
            assert "nothing was trained or logged" in result.stdout
        elif any(example in command for example in EXAMPLES):
            _check_output(command, result, tmp_path)
    assert len(run_ids) == 3  # the default, TF-IDF, and TF-IDF registered as news-tfidf (models:/news-tfidf/1, evaluated)
