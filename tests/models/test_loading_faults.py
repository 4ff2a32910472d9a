"""A model folder with a missing, truncated or corrupt file: a clear error naming the folder, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_jsonl

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "models"


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _drop_key(path: Path) -> None:
    info = json.loads(path.read_text(encoding="utf-8"))
    del info["tasks"]
    path.write_text(json.dumps(info), encoding="utf-8")


def _garble(path: Path) -> None:
    path.write_bytes(b"\x00" * 64 + path.read_bytes()[64:])


CASES = {
    "model.json cut short": ("tfidf", "model.json", _truncate, "model.json: not valid JSON"),
    "model.json without tasks": ("tfidf", "model.json", _drop_key, "model.json: no ['tasks']"),
    "a classifier missing": ("tfidf", "classifier-topic.skops", Path.unlink, "no classifier-topic.skops"),
    "a classifier cut short": ("tfidf", "classifier-topic.skops", _truncate, "cannot load the tfidf model"),
    "TF-IDF features missing": ("tfidf", "features.npz", Path.unlink, "cannot load the tfidf model"),
    "heads missing": ("transformer", "heads.safetensors", Path.unlink, "cannot load the transformer model"),
    "heads corrupt": ("transformer", "heads.safetensors", _garble, "cannot load the transformer model"),
    "heads cut short": ("transformer", "heads.safetensors", _truncate, "cannot load the transformer model"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_model_folder_is_a_clear_error(case, tmp_path):
    kind, name, damage, message = CASES[case]
    folder = tmp_path / "model"
    shutil.copytree(LEGACY / kind, folder)
    damage(folder / name)
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "x", "text": "نص قصير"}])
    result = run_cli("predict", folder, "--input", source, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and message in result.output, result.output
    assert str(folder) in result.output
    assert not (tmp_path / "out.jsonl").exists()
