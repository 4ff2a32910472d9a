"""Loading pretrained Hugging Face models (a hub name or a local folder), shared by the kinds that use them.

Remote code is never trusted. With HF_HUB_OFFLINE=1 a hub name must already be in the local cache; otherwise the
error says how to provide the model.
"""

from __future__ import annotations

import os
from pathlib import Path

from train.errors import TaawunError


def quiet_transformers() -> None:
    """No per-file progress bars and load reports in the output of a command."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_pretrained(name: str):
    """Tokenizer and encoder from a local folder or the hub; a hub name missing offline is a clear error."""
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    local = Path(name).is_dir()
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local or offline)
        encoder = AutoModel.from_pretrained(name, local_files_only=local or offline, trust_remote_code=False)
    except (OSError, ValueError) as err:
        if local:
            raise TaawunError(f"model.name {name!r}: the folder holds no loadable model and tokenizer ({err})") from None
        raise TaawunError(
            f"model.name {name!r} is not in the local Hugging Face cache"
            + (" and HF_HUB_OFFLINE=1 forbids downloading it" if offline else " and could not be downloaded")
            + ". Download it where the hub is reachable (`hf download " + name + "`) and copy the cache, or set "
            "model.name to a local folder holding the model (config.json, weights, tokenizer files)."
        ) from None
    return tokenizer, encoder
