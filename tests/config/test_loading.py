"""Reading config files: a key written twice is an error naming the file and line; values read as YAML 1.2."""

from __future__ import annotations

import yaml

from tests.helpers import ROOT, SCHEMA, labelled_articles, run_cli, write_jsonl


def test_a_key_written_twice_is_an_error_naming_file_and_line(tmp_path):
    articles = write_jsonl(tmp_path / "articles.jsonl", labelled_articles(20))
    a = write_jsonl(tmp_path / "a.jsonl", [{"id": "a000", "topic": "politics"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"id": "a001", "topic": "sports"}])
    config = tmp_path / "data.yaml"
    # The second `annotations:` used to replace the first: annotator a's labels were silently dropped.
    config.write_text(f"schema: {SCHEMA}\nsources:\n  - path: {articles}\nannotations:\n  - path: {a}\n"
                      f"    annotator: a\nannotations:\n  - path: {b}\n    annotator: b\noutput: {tmp_path / 'out'}\n",
                      encoding="utf-8")
    result = run_cli("data", "build", config)
    assert result.exit_code == 1
    assert f"{config}:7:" in result.output and "'annotations' appears twice (first at line 4)" in result.output
    assert not (tmp_path / "out").exists()


def test_duplicate_keys_inside_a_schema_are_refused(tmp_path):
    schema = tmp_path / "schema.yaml"
    schema.write_text("name: s\ntasks:\n  - name: topic\n    labels: [a, b]\n    labels: [c, d]\n", encoding="utf-8")
    result = run_cli("schema", "check", schema)
    assert result.exit_code == 1 and f"{schema}:5:" in result.output and "'labels' appears twice" in result.output


def test_set_values_read_as_in_a_config_file():
    result = run_cli("config", "show", ROOT / "configs" / "experiments" / "tfidf.yaml", "--set", "model.params.C=1e3",
                     "--set", "tracking.run_name=no", "--set", "evaluation.bootstrap=200")
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["model"]["params"]["C"] == 1000.0
    assert shown["tracking"]["run_name"] == "no"  # YAML 1.2: `no` is a string, not false
    assert shown["evaluation"]["bootstrap"] == 200
    assert shown["model"]["params"]["max_iter"] == 2000  # defaults are filled in: what will run


def test_config_show_fills_every_default_of_a_data_config():
    result = run_cli("config", "show", ROOT / "configs" / "data" / "sample.yaml", cwd=ROOT)
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["dedup"]["threshold"] == 0.5 and shown["dedup"]["num_perm"] == 128
    assert shown["normalization"]["remove_diacritics"] is True
