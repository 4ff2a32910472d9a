"""AraBERT's preprocessing, matched to the model name, applied before tokenization at training and prediction alike."""

from __future__ import annotations

from pathlib import Path

from train.errors import TaawunError
from train.models.transformer.config import TransformerConfig


def arabert_name(config: TransformerConfig) -> str | None:
    """The AraBERT model whose preprocessing applies: explicit, or the model name when it is an AraBERT (auto)."""
    choice = config.arabert_preprocess
    if choice == "none":
        return None
    if choice == "auto":
        return config.name if "arabert" in config.name.lower() and not config.tiny else None
    return choice


def make_preprocessor(name: str | None):
    """A callable text -> text applying AraBERT's preprocessing for `name` (identity for None).

    AraBERT v2 and v1 models expect Farasa-segmented text; Farasa is a Java tool that farasapy downloads on first use,
    so offline it is checked here, before any training, with an error that says what to do.
    """
    if name is None:
        return lambda text: text
    try:
        from arabert.preprocess import SEGMENTED_MODELS, ArabertPreprocessor
    except ImportError:
        raise TaawunError("AraBERT preprocessing needs the `arabert` package: pip install arabert") from None
    short = name.replace("aubmindlab/", "").replace("wissamantoun/", "")
    if short in SEGMENTED_MODELS:
        _require_farasa(name)
    import logging

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # arabert warns via the root logger
    return ArabertPreprocessor(model_name=name).preprocess


def _require_farasa(name: str) -> None:
    import shutil

    try:
        import farasa
    except ImportError:
        farasa = None
    jar = Path(farasa.__file__).parent / "farasa_bin" / "lib" / "FarasaSegmenterJar.jar" if farasa else None
    if not (jar and jar.is_file() and shutil.which("java")):
        raise TaawunError(
            f"{name} expects Farasa-segmented text, and Farasa is not available here (it needs Java and a jar that "
            "farasapy downloads on first use, which is impossible offline). Use a model that needs no segmentation "
            "(aubmindlab/bert-base-arabertv02, the default), or install Java and run farasapy once with network."
        )
