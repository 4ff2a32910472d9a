"""Faults around building a dataset: changed inputs, empty results, killed builds, two builds of one output.

Kills and concurrent builds run the real command in separate processes (`python -m train`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import yaml

from tests.helpers import ROOT, experiment_file, labelled_articles, run_cli, write_jsonl


def _report(folder: Path) -> dict:
    return json.loads((folder / "report.json").read_text(encoding="utf-8"))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".built"))


def _taawun(*args, cwd: Path, stderr=subprocess.PIPE) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "train", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=stderr, text=True)


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# Inputs changed since the build: opening the dataset from its data config rebuilds it.

LEGACY_MODEL = ROOT / "tests" / "fixtures" / "legacy" / "models" / "tfidf"


def _open(data: Path):
    """Open the dataset through the CLI, the cheap way: evaluate a stored model on it, logging nothing."""
    result = run_cli("evaluate", LEGACY_MODEL, "--input", data, "--split", "train", "--no-log", "--json")
    assert result.exit_code == 0, result.output
    return result


def test_train_rebuilds_when_the_articles_changed(corpus, tmp_path):
    articles = labelled_articles(80)
    config = corpus(articles)
    assert run_cli("data", "build", config).exit_code == 0
    fingerprint = _report(tmp_path / "built")["fingerprint"]
    articles[0]["topic"] = "sports"
    write_jsonl(tmp_path / "articles.jsonl", articles)
    result = run_cli("train", experiment_file(tmp_path, config))
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'articles.jsonl'} changed since the dataset was built; rebuilding" in result.output
    assert _report(tmp_path / "built")["fingerprint"] != fingerprint


def test_a_changed_gazetteer_rebuilds_and_the_dataset_keeps_the_new_copy(corpus, tmp_path):
    """The dataset keeps a copy of its schema's gazetteers (rule features read it): editing one is a changed input."""
    (tmp_path / "gazetteers").mkdir()
    gazetteer = tmp_path / "gazetteers" / "states_ar.yaml"
    gazetteer.write_bytes((ROOT / "configs" / "gazetteers" / "states_ar.yaml").read_bytes())
    schema = tmp_path / "schema.yaml"
    schema.write_bytes((ROOT / "configs" / "schema.yaml").read_bytes())
    config = corpus(labelled_articles(80), schema=str(schema))
    assert run_cli("data", "build", config).exit_code == 0
    assert (tmp_path / "built" / "gazetteers" / "states.yaml").read_bytes() == gazetteer.read_bytes()
    gazetteer.write_text(gazetteer.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    result = run_cli("train", experiment_file(tmp_path, config))
    assert result.exit_code == 0, result.output
    assert f"{gazetteer} changed since the dataset was built; rebuilding" in result.output
    assert (tmp_path / "built" / "gazetteers" / "states.yaml").read_text(encoding="utf-8").endswith("# edited\n")


def test_changed_annotations_adjudications_and_schema_are_seen(corpus, tmp_path):
    articles = labelled_articles(40)
    for article in articles:
        del article["stance"]
    schema = tmp_path / "schema.yaml"
    schema.write_text("name: copy\ntasks:\n"
                      "  - {name: topic, labels: [politics, security, economy, sports, health, culture, technology, "
                      "society]}\n  - {name: bilateral_security_cooperation, kind: binary, labels: ['yes', 'no']}\n"
                      "  - {name: stance, labels: [supportive, neutral, critical]}\n", encoding="utf-8")
    votes = tmp_path / "stance.csv"
    votes.write_text("id,stance\n" + "".join(f"a{i:03d},{['supportive', 'neutral', 'critical'][i % 3]}\n"
                                             for i in range(40)), encoding="utf-8")
    final = tmp_path / "adjudication.csv"
    final.write_text("id,stance\na001,critical\n", encoding="utf-8")
    config = corpus(articles, schema=str(schema), source={"labels": {"topic": "topic",
                    "bilateral_security_cooperation": "bilateral_security_cooperation"}},
                    annotations=[{"path": str(votes), "annotator": "b"},
                                 {"path": str(final), "role": "adjudication"}])
    assert "building the dataset" in _open(config).output

    # Same content, newer modification time: hashed, found equal, not rebuilt.
    for path in (tmp_path / "articles.jsonl", votes, final, schema):
        os.utime(path)
    assert "rebuilding" not in _open(config).output

    for path, edit in ((votes, "a002,critical\n"), (final, "a003,critical\n"), (schema, "# a comment\n")):
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(edit)
        assert f"{path} changed since the dataset was built; rebuilding" in _open(config).output
    assert "rebuilding" not in _open(config).output


def test_a_dataset_without_recorded_inputs_is_rebuilt_from_a_config(corpus, tmp_path):
    config = corpus()
    assert run_cli("data", "build", config).exit_code == 0
    settings_file = tmp_path / "built" / "taawun.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8"))
    assert {"size", "mtime_ns", "sha256"} <= set(settings["inputs"][str(tmp_path / "articles.jsonl")])
    del settings["inputs"]  # as written before inputs were recorded (tests/fixtures/legacy/dataset)
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    assert "does not record its inputs; rebuilding" in _open(config).output
    assert "inputs" in json.loads(settings_file.read_text(encoding="utf-8"))
    # From its folder, such a dataset opens as it is.
    settings_file.write_text(json.dumps(settings), encoding="utf-8")
    assert "rebuilding" not in _open(tmp_path / "built").output
    assert "inputs" not in json.loads(settings_file.read_text(encoding="utf-8"))


# An empty result is refused unless asked for.

def test_empty_source_keeps_the_previous_dataset(corpus, tmp_path):
    config = corpus()
    assert run_cli("data", "build", config).exit_code == 0
    before = _report(tmp_path / "built")
    (tmp_path / "articles.jsonl").write_text("", encoding="utf-8")
    result = run_cli("data", "build", config)
    assert result.exit_code == 1, result.output
    assert "no articles to write" in result.output and "0 record(s) read" in result.output
    assert "validation.allow_empty: true" in result.output
    assert _report(tmp_path / "built") == before
    assert _leftovers(tmp_path) == []


def test_every_record_rejected_keeps_the_previous_dataset(corpus, tmp_path):
    assert run_cli("data", "build", corpus()).exit_code == 0
    before = _report(tmp_path / "built")
    articles = labelled_articles(12)
    for article in articles:
        article["topic"] = "weather"
    result = run_cli("data", "build", corpus(articles, validation={"on_invalid": "reject"}))
    assert result.exit_code == 1, result.output
    assert "12 record(s) read, 12 rejected (unknown_label: 12)" in result.output
    assert _report(tmp_path / "built") == before

    allowed = run_cli("data", "build", corpus(articles, validation={"on_invalid": "reject", "allow_empty": True}))
    assert allowed.exit_code == 0, allowed.output
    built = datasets.load_from_disk(str(tmp_path / "built"))
    assert sum(len(split) for split in built.values()) == 0
    assert len((tmp_path / "built" / "rejects.jsonl").read_text().splitlines()) == 12


def test_report_only_says_the_dataset_would_be_empty(corpus, tmp_path):
    result = run_cli("data", "build", corpus([]), "--report-only")
    assert result.exit_code == 1
    assert "no articles to write" in result.output


# Killed builds and concurrent builds.

def _big_corpus(tmp_path: Path, n: int = 1500) -> Path:
    """A corpus large enough that a build takes seconds (time to kill it, or to start another)."""
    config = {"schema": str(ROOT / "configs" / "schema.yaml"),
              "sources": [{"path": str(write_jsonl(tmp_path / "articles.jsonl", labelled_articles(n))),
                           "labels": {t: t for t in ("topic", "bilateral_security_cooperation", "stance")}}],
              "output": str(tmp_path / "built")}
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_a_build_killed_while_writing_is_cleaned_up_by_the_next(tmp_path):
    config = _big_corpus(tmp_path)
    assert run_cli("data", "build", config).exit_code == 0
    before = _report(tmp_path / "built")
    build = _taawun("data", "build", config, cwd=tmp_path)
    staging = f".built.tmp-{build.pid}"
    while not (tmp_path / staging).exists():
        assert build.poll() is None, "the build ended before it was seen writing"
        time.sleep(0.005)
    build.send_signal(signal.SIGKILL)
    build.wait()
    assert staging in _leftovers(tmp_path)
    assert _report(tmp_path / "built") == before  # the previous dataset is untouched

    result = run_cli("data", "build", config)
    assert result.exit_code == 0, result.output
    assert f"removed {staging}" in result.output
    assert _leftovers(tmp_path) == []
    assert _report(tmp_path / "built")["fingerprint"] == before["fingerprint"]


def test_a_build_killed_between_the_renames_is_restored(tmp_path):
    """What a build killed between its two renames leaves: the old dataset as backup, the new one staged, no output."""
    config = _big_corpus(tmp_path, n=40)
    assert run_cli("data", "build", config).exit_code == 0
    before = _report(tmp_path / "built")
    pid = _dead_pid()
    (tmp_path / "built").rename(tmp_path / f".built.old-{pid}")
    (tmp_path / f".built.tmp-{pid}").mkdir()
    (tmp_path / f".built.tmp-{pid}" / "dataset_dict.json").write_text("{}")

    # Opening it restores it (and rebuilds nothing: the inputs did not change).
    result = _open(config)
    assert "rebuilding" not in result.output
    assert f"restored {tmp_path / 'built'} from .built.old-{pid}" in result.output
    assert _leftovers(tmp_path) == []
    assert _report(tmp_path / "built") == before


def test_two_builds_of_one_output_at_once(tmp_path):
    config = _big_corpus(tmp_path)
    builds = [_taawun("data", "build", config, cwd=tmp_path) for _ in range(2)]
    outcomes = [(build.pid, build.communicate(timeout=300)[1]) for build in builds]
    outcomes = [(pid, build.returncode, err) for (pid, err), build in zip(outcomes, builds, strict=True)]
    assert sorted(code for _, code, _ in outcomes) == [0, 1], outcomes
    (winner, _, _), (_, _, refused) = sorted(outcomes, key=lambda outcome: outcome[1])
    assert f"being built by another taawun process (pid {winner})" in refused
    assert _leftovers(tmp_path) == []
    assert sum(len(split) for split in datasets.load_from_disk(str(tmp_path / "built")).values()) == 1500


def test_two_commands_needing_one_dataset_at_once_build_it_once(tmp_path):
    from train.data.dataset import build_lock

    config = _big_corpus(tmp_path)
    logs = [tmp_path / f"stderr-{index}.txt" for index in range(2)]
    # The test holds the build lock until both commands wait on it, so they race for it however slowly each starts.
    with build_lock(tmp_path / "built", wait=False):
        commands = []
        for log in logs:
            with log.open("w", encoding="utf-8") as stderr:  # the child keeps its own copy of the descriptor
                commands.append(_taawun("evaluate", LEGACY_MODEL, "--input", config, "--split", "test", "--no-log",
                                        "--json", cwd=tmp_path, stderr=stderr))
        deadline = time.monotonic() + 120
        while not all("waiting for taawun" in log.read_text(encoding="utf-8") for log in logs):
            assert time.monotonic() < deadline and all(c.poll() is None for c in commands), \
                [log.read_text(encoding="utf-8") for log in logs]
            time.sleep(0.1)
    outcomes = [(command.pid, command.communicate(timeout=300)[0], log.read_text(encoding="utf-8"))
                for command, log in zip(commands, logs, strict=True)]
    assert [command.returncode for command in commands] == [0, 0], outcomes
    builders = [pid for pid, _, err in outcomes if "building the dataset" in err]
    assert len(builders) == 1, outcomes
    waited = next(err for pid, _, err in outcomes if pid not in builders)
    assert f"waiting for taawun (pid {builders[0]}) to finish building" in waited
    assert _leftovers(tmp_path) == []
