"""`taawun predict --engine spark`: a real local SparkSession scores a folder of files as `taawun predict` does."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from tests.helpers import ROOT, run_cli, write_jsonl


def _sample(n: int, start: int = 0) -> list[dict]:
    lines = (ROOT / "data" / "sample" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[start : start + n]]


def _archive(folder):
    """A folder of two files (one gzipped) of sample articles, with a malformed line and an empty text among them."""
    folder.mkdir()
    first, second = _sample(12), _sample(12, start=12)
    lines = [json.dumps(a, ensure_ascii=False) for a in first]
    lines[3:3] = ['{"id": "broken", "text": ', json.dumps({"id": "blank", "title": "عنوان", "text": " "})]
    (folder / "2024-01.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with gzip.open(folder / "2024-02.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(a, ensure_ascii=False) + "\n" for a in second))
    return folder, first + second


def _read_parts(folder) -> dict[str, dict]:
    rows = [json.loads(line) for part in sorted(folder.glob("part-*")) for line in part.read_text("utf-8").splitlines()]
    return {row["id"]: row for row in rows}


@pytest.mark.slow
def test_spark_engine_scores_a_folder_like_taawun_predict(trained, tmp_path):
    pytest.importorskip("pyspark", reason="pip install 'taawun[spark]' (make test-all installs it)")
    if not shutil.which("java"):
        pytest.skip("Java is not installed (Debian: openjdk-17-jre-headless)")
    archive, articles = _archive(tmp_path / "archive")
    model = [f"runs:/{trained['run_id']}/model", "--tracking-uri", trained["uri"]]
    local_input = write_jsonl(tmp_path / "all.jsonl", articles)
    result = run_cli("predict", *model, "--input", local_input, "--output", tmp_path / "local.jsonl")
    assert result.exit_code == 0, result.output
    expected = {row["id"]: row for row in map(json.loads, (tmp_path / "local.jsonl").read_text("utf-8").splitlines())}

    spark = ["--engine", "spark", "--spark-master", "local[2]", "--spark-conf", "spark.sql.shuffle.partitions=2"]
    result = run_cli("predict", *model, "--input", archive, "--output", tmp_path / "out.jsonl", *spark)
    assert result.exit_code == 0, result.output
    assert "24 article(s) predicted" in result.output and "2 malformed record(s) skipped" in result.output
    assert "2024-01.jsonl: malformed record; skipped" in result.output
    assert "2024-01.jsonl: empty text; skipped (id 'blank'" in result.output
    got = _read_parts(tmp_path / "out.jsonl")
    assert got.keys() == expected.keys()
    for article_id, row in got.items():
        for task in ("topic", "bilateral_security_cooperation", "stance"):
            assert row[task] == expected[article_id][task]
            assert row[f"{task}_probabilities"] == pytest.approx(expected[article_id][f"{task}_probabilities"],
                                                                 abs=1e-6)

    # Adapted to the whole input's label proportions: on the driver, the same labels and probabilities as locally.
    adapted = {}
    for engine, extra in {"local": [], "spark": spark}.items():
        output = tmp_path / f"adapted-{engine}.jsonl"
        result = run_cli("predict", *model, "--input", archive if extra else local_input, "--output", output,
                         "--adapt-priors", *extra)
        assert result.exit_code == 0, result.output
        assert "topic: probabilities adapted to the label proportions estimated in the input" in result.output
        adapted[engine] = _read_parts(output) if extra else {
            row["id"]: row for row in map(json.loads, output.read_text("utf-8").splitlines())}
    assert adapted["spark"].keys() == expected.keys()
    for article_id, row in adapted["spark"].items():
        for task in ("topic", "bilateral_security_cooperation", "stance"):
            assert row[task] == adapted["local"][article_id][task]
            assert row[f"{task}_probabilities"] == pytest.approx(
                adapted["local"][article_id][f"{task}_probabilities"], abs=1e-6)
    assert any(row["topic_probabilities"] != pytest.approx(expected[article_id]["topic_probabilities"], abs=1e-3)
               for article_id, row in adapted["spark"].items())

    result = run_cli("predict", *model, "--input", local_input, "--output", tmp_path / "out.parquet", *spark)
    assert result.exit_code == 0, result.output
    import pandas as pd

    frame = pd.read_parquet(tmp_path / "out.parquet").set_index("id")
    assert list(frame.columns) == ["topic", "topic_probabilities", "bilateral_security_cooperation",
                                   "bilateral_security_cooperation_probabilities", "stance", "stance_probabilities"]
    assert frame["topic"].to_dict() == {key: row["topic"] for key, row in expected.items()}


def test_local_engine_refuses_a_folder(trained, tmp_path):
    archive, _ = _archive(tmp_path / "archive")
    result = run_cli("predict", trained["model_dir"], "--input", archive, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert "is a folder: this engine reads one file" in result.output and "--engine spark" in result.output


def test_spark_engine_checks_its_input_and_output_before_starting(trained, tmp_path, monkeypatch):
    archive, _ = _archive(tmp_path / "archive")
    spark = ["predict", trained["model_dir"], "--engine", "spark", "--input"]
    result = run_cli(*spark, archive, "--output", tmp_path / "out.txt")
    assert result.exit_code == 1 and "name the output folder .jsonl, .csv or .parquet" in result.output

    (tmp_path / "mine.jsonl").mkdir()
    (tmp_path / "mine.jsonl" / "notes.txt").write_text("keep me", encoding="utf-8")
    result = run_cli(*spark, archive, "--output", tmp_path / "mine.jsonl")
    assert result.exit_code == 1 and "is not an earlier output of this command (no _SUCCESS)" in result.output

    legacy = tmp_path / "legacy.jsonl"
    legacy.write_bytes('{"id": "w1", "text": "وزير الخارجية يستقبل نظيره في العاصمة"}\n'.encode("cp1256") * 50)
    result = run_cli(*spark, legacy, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "windows-1256, not plain UTF-8" in result.output
    assert "use --engine local, which reads it" in result.output

    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    result = run_cli(*spark, archive, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "--engine spark needs Java 17 or newer" in result.output
    assert not (tmp_path / "out.jsonl").exists()
