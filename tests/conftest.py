"""Shared fixtures: a corpus factory, the sample dataset built once, one trained TF-IDF run (helpers: helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    INLINE_LABELS,
    ROOT,
    experiment_file,
    labelled_articles,
    run_cli,
    write_config,
    write_jsonl,
)


@pytest.fixture
def corpus(tmp_path: Path):
    """A factory: write articles (and an optional config override) and return the data config's path."""

    def make(articles: list[dict] | None = None, **overrides) -> Path:
        articles = labelled_articles(40) if articles is None else articles
        source = {"path": str(write_jsonl(tmp_path / "articles.jsonl", articles)), "labels": dict(INLINE_LABELS)}
        source.update(overrides.pop("source", {}))
        config = {"sources": [source], "output": str(tmp_path / "built"), **overrides}
        return write_config(tmp_path / "data.yaml", config)

    return make


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory) -> Path:
    """The sample corpus built once per test session (through the CLI) into a temporary folder."""
    folder = tmp_path_factory.mktemp("sample")
    config = yaml.safe_load((ROOT / "configs" / "data" / "sample.yaml").read_text(encoding="utf-8"))
    config["schema"] = str(ROOT / config["schema"])
    for entry in config["sources"] + config["annotations"]:
        entry["path"] = str(ROOT / entry["path"])
    config["output"] = str(folder / "built")
    path = folder / "sample.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = run_cli("data", "build", path)
    assert result.exit_code == 0, result.output
    return folder / "built"


@pytest.fixture(scope="session")
def trained(tmp_path_factory, sample_dataset):
    """One TF-IDF run on the sample, trained through the CLI into a temporary SQLite store; returns its facts."""
    folder = tmp_path_factory.mktemp("trained")
    result = run_cli("train", experiment_file(folder, sample_dataset))
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    return {"folder": folder, "run_id": run_id, "uri": f"sqlite:///{folder / 'mlflow.db'}", "output": result.output,
            "stdout": result.stdout, "stderr": result.stderr, "model_dir": folder / "runs" / "tests" / run_id / "model"}


