"""The package's shape: no import cycles, kinds independent of each other, light imports, configs that mean something."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from tests.helpers import ROOT, experiment_file
from train.config.experiment import ExperimentConfig, load_experiment
from train.data.config import DataConfig, load_data_config
from train.models import registry
from train.schema import load_schema

PACKAGE = ROOT / "train"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """The package modules a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.add(name if name in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start through `graph`, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_module_imports_itself_back():
    graph = {name: _imports(path) - {name} for name, path in MODULES.items()}
    cycles = [cycle for name in graph if (cycle := _cycle_from(name, graph))]
    assert not cycles, f"import cycles: {cycles[0]}"


def test_a_kind_imports_nothing_of_another_kind():
    kinds = registry.names()
    for name, path in MODULES.items():
        own = next((kind for kind in kinds if name.startswith(f"train.models.{kind}")), None)
        if own is None:
            continue
        others = [m for m in _imports(path) if any(m.startswith(f"train.models.{k}") for k in kinds if k != own)]
        assert not others, f"{name} imports {others} of another model kind"


def test_every_kind_is_complete():
    for name in registry.names():
        kind, config = registry.model_class(name), registry.config_class(name)
        assert kind.kind == name and kind.config_class is config
        assert config.model_fields["kind"].default == name
    assert registry.canonical("encoder") == "sentence_encoder"  # the name saved models from before 0.2 carry


def _heavy_modules_after(*argv: str) -> list[str]:
    script = ("import sys\nfrom train.cli import main\nsys.argv = ['taawun', *sys.argv[1:]]\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print('HEAVY', sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=ROOT,
                            timeout=600)
    line = next(line for line in result.stdout.splitlines() if line.startswith("HEAVY"))
    return eval(line.removeprefix("HEAVY "))  # noqa: S307 (a list literal this test printed)


def test_help_imports_neither_torch_nor_transformers():
    assert _heavy_modules_after("--help") == []


def test_a_tfidf_train_imports_neither_torch_nor_transformers(tmp_path, sample_dataset):
    config = experiment_file(tmp_path, sample_dataset, evaluation={"splits": ["test"], "bootstrap": 50})
    assert _heavy_modules_after("train", str(config)) == []
    assert list((tmp_path / "runs" / "tests").glob("*/model/model.json"))  # it did train


def _config_models(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _config_models(arg)]


def _fields(model: type[BaseModel], prefix: str = "", seen: frozenset = frozenset()):
    """(key path, attribute name) of every field of a config class, nested configs included."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        yield key, name
        for nested in _config_models(field.annotation):
            if nested not in seen:
                yield from _fields(nested, f"{key}.", seen | {nested})


def _names_read() -> set[str]:
    """Attribute names and constant subscripts the package reads: `config.split.folds`, `values["text"]`."""
    names = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
                names.add(node.slice.value)
    return names


def test_every_config_key_is_read_by_the_code():
    read = _names_read()
    classes = [ExperimentConfig, DataConfig, *registry.config_classes()]
    unread = [f"{cls.__name__}: {key}" for cls in classes for key, name in _fields(cls) if name not in read]
    assert not unread, f"config keys that no code reads: {unread}"


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_load(path):
    config = load_experiment(path)
    assert config.model.kind in registry.names()


def test_shipped_data_configs_and_schemas_load(monkeypatch):
    monkeypatch.chdir(ROOT)  # their paths are relative to the project root
    for path in sorted((ROOT / "configs" / "schemas").glob("*.yaml")):
        load_schema(path)
    for path in sorted((ROOT / "configs" / "data").glob("*.yaml")):
        load_data_config(path)
