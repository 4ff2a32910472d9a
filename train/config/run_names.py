"""Run names that follow the config: `tracking.run_name` may hold `{model.classifier}`-style placeholders.

A placeholder is a dotted key of the resolved experiment (defaults filled in, `--set` applied), so that
`run_name: tfidf-{model.classifier}` names a run trained with `--set model.classifier=linear_svm` "tfidf-linear_svm".
Without a run name, a run is named after its model kind.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel

from train.errors import TaawunError

DEFAULT_RUN_NAME = "{model.kind}"
PLACEHOLDER = re.compile(r"\{([\w.]+)\}")


def fill_run_name(config: BaseModel, source: str) -> BaseModel:
    """`config` (an ExperimentConfig) with the placeholders of its run name filled in from its own values."""
    values = config.model_dump(mode="json")
    template = config.tracking.run_name or DEFAULT_RUN_NAME
    name = PLACEHOLDER.sub(lambda match: _render(_lookup(values, match.group(1), source)), template)
    tracking = config.tracking.model_copy(update={"run_name": name})
    return config.model_copy(update={"tracking": tracking})


def _lookup(values: dict[str, Any], key: str, source: str) -> Any:
    """The value at a dotted key; an error naming the key and the closest existing ones when there is none."""
    found: Any = values
    for part in key.split("."):
        if not isinstance(found, dict) or part not in found:
            close = difflib.get_close_matches(key, list(_keys(values)), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise TaawunError(f"{source}: tracking.run_name: {{{key}}} names no key of the config{hint} (`taawun "
                              "config show` lists the keys)")
        found = found[part]
    return found


def _keys(values: dict[str, Any], prefix: str = ""):
    for key, value in values.items():
        yield f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _keys(value, f"{prefix}{key}.")


def _render(value: Any) -> str:
    """A config value as a run name shows it: lists joined by `+`, mappings as `key=value,...`, YAML booleans."""
    if isinstance(value, list):
        return "+".join(_render(item) for item in value)
    if isinstance(value, dict):
        return ",".join(f"{key}={_render(item)}" for key, item in value.items())
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "none"}[value]
    return str(value)
