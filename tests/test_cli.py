"""The command line itself: entry points and a fast --help."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def test_help_imports_no_heavy_library():
    code = ("import sys; from train.cli import main; sys.argv = ['taawun', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('datasets', 'pandas', 'pyarrow', 'sklearn', 'torch', 'mlflow', 'numpy')"
            " if m in sys.modules]\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "data" in out and "schema" in out
    assert "HEAVY []" in out


def test_python_dash_m_train_is_the_cli():
    result = subprocess.run([sys.executable, "-m", "train", "schema", "check", "configs/schema.yaml"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "topic [single_label]" in result.stdout


def test_error_is_a_message_not_a_traceback(tmp_path):
    bad = tmp_path / "data.yaml"
    bad.write_text("sources: []\noutput: x\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "train", "data", "build", str(bad)], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "sources: List should have at least 1 item" in result.stderr
    assert "Traceback" not in result.stderr
