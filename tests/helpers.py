"""Helpers for the tests: running the real CLI, writing small corpora and configs, finding the shared real data."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
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



def bench_module(name: str):
    """bench/NAME.py loaded as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def printed_run_id(output: str) -> str:
    """The MLflow run id that `taawun train` or `tune` printed (its `run ID ...` line)."""
    return re.search(r"^run (\w+) ", output, re.M).group(1)


def sample_articles() -> list[dict]:
    """The sample's articles with annotator A's labels inline."""
    labels = {row["id"]: row for row in csv.DictReader(open(ROOT / "data/sample/annotations/annotator_a.csv",
                                                            encoding="utf-8"))}
    rows = [json.loads(line) for line in (ROOT / "data/sample/articles.jsonl").read_text(encoding="utf-8").splitlines()]
    return [{**row, **{k: v for k, v in labels[row["id"]].items() if k != "id"}} for row in rows]


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



def skewed_heldout(tmp_path: Path, topic: str = "security", copies: int = 8) -> tuple[Path, float]:
    """The sample's held-out articles with every `topic` article repeated `copies` times (new ids): an outlet that
    files most of its articles under one label."""
    with open(SCHEMA.parents[1] / "data" / "sample" / "heldout.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    skewed = [{**row, "id": f"{row['id']}-{copy}"} for row in rows
              for copy in range(copies if row["label"] == topic else 1)]
    path = tmp_path / "skewed.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(skewed)
    share = sum(row["label"] == topic for row in skewed) / len(skewed)
    return path, share


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or skip the test with a message when it is absent (a user's fresh clone)."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the project's shared real data (../shared/data)")
    return path



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



def chromium_page(url: str, screenshot: Path, window: str = "1400,1000") -> str:
    """Open `url` in headless Chromium once its scripts ran: save a screenshot (PNG) and return the page's DOM.

    Skips the test where Chromium is not installed (`make test` installs Debian's chromium when run as root).
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium is not installed (make test installs Debian's chromium when run as root)")
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--virtual-time-budget=20000", f"--window-size={window}",
               f"--user-data-dir={screenshot.with_suffix('.profile')}", f"--screenshot={screenshot}", "--dump-dom", url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def wait_until_answering(url: str, process, log: Path, what: str, seconds: float = 90) -> None:
    """Wait until `url` answers a GET; fail with the end of `log` if `process` (the server `what`) exits first."""
    import time
    import urllib.request

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"{what} exited: {log.read_text()[-2000:]}")
            time.sleep(0.25)
    process.kill()
    pytest.fail(f"{what} did not answer {url} within {seconds:.0f} s")
