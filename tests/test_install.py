"""Installing: pyproject.toml admits a range of torch versions (a GPU machine keeps its CUDA build), while `make
install` puts the CPU build of 2.13.0, on disk on the project's machines, before taawun."""

from __future__ import annotations

import re
import subprocess

from packaging.requirements import Requirement

from tests.helpers import ROOT


def test_the_package_takes_a_range_of_torch_versions():
    # the dependency line as written (tomllib is Python 3.11+, taawun runs on 3.10)
    torch = Requirement(re.search(r'^\s*"(torch[^"]*)",', (ROOT / "pyproject.toml").read_text(encoding="utf-8"),
                                  re.MULTILINE).group(1))
    assert not any(spec.operator in {"==", "==="} for spec in torch.specifier), torch
    for version in ("2.13.0+cpu", "2.13.0", "2.6.0+cu124", "2.14.1+cu128"):  # the CPU build here; CUDA builds
        assert torch.specifier.contains(version), (torch, version)


def test_make_install_puts_the_cpu_build_of_torch_before_taawun():
    result = subprocess.run(["make", "-n", "-B", ".venv/.installed"], capture_output=True, text=True, cwd=ROOT,
                            check=True)
    installs = [line for line in result.stdout.splitlines() if " -m pip install " in line and "--upgrade pip" not in line]
    assert installs[0].endswith("install --quiet 'torch==2.13.0'"), installs
    assert installs[1].endswith("install --quiet -e '.[test]'"), installs
