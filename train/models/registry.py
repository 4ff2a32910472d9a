"""The model kinds taawun knows: kind name -> its config class and its model class, imported only when needed.

Adding a kind is one sub-package of `train.models` (a `config.py` with a pydantic config whose `kind` is a Literal of
the name, a model class following `train.models.base.ModelKind`), one line in KINDS, and one experiment YAML.
Config classes must import nothing heavy: the experiment config imports all of them to validate a file.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from pydantic import BaseModel

from train.errors import TaawunError

KINDS: dict[str, tuple[str, str]] = {
    "tfidf": ("train.models.tfidf.config:TfidfConfig", "train.models.tfidf.model:TfidfModel"),
    "sentence_encoder": ("train.models.sentence_encoder.config:SentenceEncoderConfig",
                         "train.models.sentence_encoder.model:SentenceEncoderModel"),
    "transformer": ("train.models.transformer.config:TransformerConfig",
                    "train.models.transformer.model:TransformerModel"),
    "ensemble": ("train.models.ensemble.config:EnsembleConfig", "train.models.ensemble.model:EnsembleModel"),
}
# Names used before 0.2: configs and saved model folders that say them still work.
ALIASES = {"encoder": "sentence_encoder"}


def names() -> list[str]:
    """The registered kind names."""
    return list(KINDS)


def canonical(name: str) -> str:
    """The registered name for `name` (aliases resolved); a clear error for an unknown kind."""
    name = ALIASES.get(name, name)
    if name not in KINDS:
        raise TaawunError(f"model kind {name!r} is not known; kinds: {names()}")
    return name


def _load(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(import_module(module), attribute)


def config_class(name: str) -> type[BaseModel]:
    """The pydantic config class of kind `name`."""
    return _load(KINDS[canonical(name)][0])


def config_classes() -> list[type[BaseModel]]:
    """Every kind's config class, in registry order."""
    return [_load(config) for config, _ in KINDS.values()]


def model_class(name: str) -> type:
    """The model class of kind `name` (imports the kind's module, and whatever heavy library it needs)."""
    return _load(KINDS[canonical(name)][1])


def model_config(data: dict[str, Any]) -> BaseModel:
    """A `model` mapping (with `kind`, possibly an old alias) as its kind's config object."""
    kind = canonical(data.get("kind", "tfidf"))
    return config_class(kind)(**{**data, "kind": kind})
