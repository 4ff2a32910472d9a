"""Loading YAML config files into typed pydantic objects, with errors that name the file and key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from train.errors import TaawunError

Model = TypeVar("Model", bound=pydantic.BaseModel)


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (only true/false, so labels such as `yes` and `no` stay strings); no key twice in a mapping.

    PyYAML keeps the last of two equal keys, so a second `annotations:` silently dropped the first one's annotators.
    """

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first at line {seen[key] + 1}); merge the two or remove "
                    "one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 floats without a dot: 1e3, 2E-5 (PyYAML's YAML 1.1 rules read them as strings).
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789.")
)


def parse_yaml_value(text: str):
    """One value written as in a config file (`no` stays a string, `[1, 2]` is a list)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        raise TaawunError(f"{text!r} is not a YAML value: {getattr(err, 'problem', err)}") from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from `path`; a missing file or a YAML syntax error is a TaawunError."""
    path = Path(path)
    if not path.is_file():
        raise TaawunError(f"{path}: no such file. Check the path (it is relative to the current directory).")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise TaawunError(f"{where}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TaawunError(f"{path}: expected a mapping of keys to values at the top level, got {type(data).__name__}.")
    return data


def format_validation_error(err: pydantic.ValidationError, source: str, hide: frozenset[str] = frozenset()) -> str:
    """One line per problem: `source: key.path: message`; `hide` drops path parts that are not keys (union tags)."""
    lines = []
    for problem in err.errors():
        key = ".".join(str(part) for part in problem["loc"] if part not in hide)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        elif problem["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{source}: {key}: {message}" if key else f"{source}: {message}")
    return "\n".join(lines)


def validate_config(model: type[Model], data: dict[str, Any], source: str, hide: frozenset[str] = frozenset()) -> Model:
    """Validate `data` as `model`; problems become one TaawunError naming `source` and each key path."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        raise TaawunError(format_validation_error(err, source, hide)) from None


def load_config(model: type[Model], path: str | Path) -> Model:
    """Read `path` (YAML) and validate it as `model`."""
    return validate_config(model, read_yaml(path), str(path))
