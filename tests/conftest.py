"""Shared fixtures: running the real CLI, writing small corpora and data configs, the shared real data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from train.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SCHEMA = ROOT / "configs" / "schema.yaml"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

WORDS = ("وزير الخارجية الحكومة البرلمان الاقتصاد السوق النفط المنتخب المباراة المستشفى اللقاح الفيلم المهرجان "
         "الجامعة الطلاب المناخ الأمن الجيش التعاون الاتفاق القمة الرئيس الشركة الاستثمار البنك الأسعار التضخم "
         "الفريق البطولة الهدف المدرب الكتاب الرواية المسرح التقنية الذكاء الاصطناعي القمر الصناعي الإنترنت "
         "المدرسة اللاجئين الفيضانات الطريق الحادث العاصمة المدينة الشعب الأحزاب الانتخابات المفاوضات").split()


def arabic_text(seed: int, words: int = 40) -> str:
    """A distinct pseudo-Arabic article body (same seed, same text)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def run_cli(*args: str, cwd: Path | None = None):
    """Run the real `taawun` command line in-process; returns click's Result (exit_code, output, stderr)."""
    runner = CliRunner()
    old = Path.cwd()
    try:
        if cwd:
            os.chdir(cwd)
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def write_config(path: Path, config: dict) -> Path:
    config.setdefault("schema", str(SCHEMA))
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def labelled_articles(n: int, start: int = 0) -> list[dict]:
    """`n` distinct articles with inline labels that cover every label of the default schema."""
    topics = ["politics", "security", "economy", "sports", "health", "culture", "technology", "society"]
    stances = ["supportive", "neutral", "critical"]
    return [
        {"id": f"a{i:03d}", "title": f"عنوان {i}", "text": arabic_text(i), "source": ["out1", "out2", "out3"][i % 3],
         "date": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}", "topic": topics[i % 8],
         "bilateral_security_cooperation": "yes" if i % 4 == 0 else "no", "stance": stances[i % 3]}
        for i in range(start, start + n)
    ]


INLINE_LABELS = {"topic": "topic", "bilateral_security_cooperation": "bilateral_security_cooperation",
                 "stance": "stance"}


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


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with a message when it is absent (a user's fresh clone)."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the project's shared real data (../shared/data)")
    return path


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


def experiment_file(folder: Path, data: Path, **overrides) -> Path:
    """An experiment config extending the project's base, pointed at `data`, writing runs and the store under `folder`."""
    from train.config.experiment import deep_merge

    config = deep_merge({"extends": str(ROOT / "configs" / "experiments" / "base.yaml"), "data": str(data),
                         "output_dir": str(folder / "runs"),
                         "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": "tests"},
                         "evaluation": {"bootstrap": 200}}, overrides)
    path = folder / "experiment.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, sample_dataset):
    """One TF-IDF run on the sample, trained through the CLI into a temporary SQLite store; returns its facts."""
    folder = tmp_path_factory.mktemp("trained")
    result = run_cli("train", experiment_file(folder, sample_dataset))
    assert result.exit_code == 0, result.output
    run_id = next(line.split()[1] for line in result.output.splitlines() if line.startswith("run "))
    return {"folder": folder, "run_id": run_id, "uri": f"sqlite:///{folder / 'mlflow.db'}", "output": result.output,
            "model_dir": folder / "runs" / "tests" / run_id / "model"}


def pair_task_data(folder: Path, n: int = 60) -> Path:
    """A stance-toward-a-claim dataset config: `agree` texts repeat their claim, the others are unrelated."""
    schema = folder / "pairs-schema.yaml"
    schema.write_text("name: pairs\ntasks:\n  - name: stance\n    target_field: claim\n"
                      "    labels: [agree, disagree, other]\n", encoding="utf-8")
    rows = [{"id": f"p{i}", "claim": arabic_text(1000 + i, words=8), "label": ["agree", "disagree", "other"][i % 3]}
            for i in range(n)]
    for i, row in enumerate(rows):
        row["text"] = row["claim"] if row["label"] == "agree" else arabic_text(7000 + i, words=8)
    source = {"path": str(write_jsonl(folder / "pairs.jsonl", rows)), "targets": {"claim": "claim"},
              "labels": {"stance": "label"}, "fields": {"title": None, "date": None, "source": None}}
    return write_config(folder / "pairs-data.yaml", {"schema": str(schema), "sources": [source],
                                                     "output": str(folder / "pairs-built")})
