"""AraBERT fine-tuning: one shared encoder, one classification head per schema task, on the Hugging Face Trainer.

Long articles are truncated to their head, to head and tail, or split into overlapping chunks whose logits are
averaged per article. The AraBERT preprocessing that matches the model name is applied before tokenization, at
training and at prediction alike. Weights are saved as safetensors; remote code is never trusted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import TaawunError
from train.config.experiment import TransformerModelConfig
from train.schema import Task

HEADS_FILE = "heads.safetensors"


# -- preprocessing ------------------------------------------------------------------------------------------------
def arabert_name(config: TransformerModelConfig) -> str | None:
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


# -- encoding -----------------------------------------------------------------------------------------------------
@dataclass
class Encoded:
    """Token windows ready for the model, and the article each window belongs to."""

    features: list[dict[str, Any]]
    article: np.ndarray


def encode(tokenizer, texts: list[str], targets: list[str] | None, config: TransformerModelConfig,
           labels: dict[str, list[int]] | None = None) -> Encoded:
    """Tokenize articles (and targets, as the first segment of a pair) with the configured truncation."""
    body = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
    first = tokenizer(targets, add_special_tokens=False, truncation=False)["input_ids"] if targets else None
    features, owners = [], []
    for index, ids in enumerate(body):
        prefix = first[index][: config.max_length // 4] if first else None
        budget = config.max_length - (3 if prefix is not None else 2) - (len(prefix) if prefix else 0)
        for window in _windows(ids, budget, config):
            item = _with_special_tokens(tokenizer, prefix, window)
            if labels:
                item.update({f"labels_{task}": values[index] for task, values in labels.items()})
            features.append(item)
            owners.append(index)
    return Encoded(features, np.asarray(owners, dtype=np.int64))


def _windows(ids: list[int], budget: int, config: TransformerModelConfig) -> list[list[int]]:
    """The token windows of one article: head, head and tail, or overlapping chunks."""
    if len(ids) <= budget:
        return [ids]
    if config.truncation == "head":
        return [ids[:budget]]
    if config.truncation == "head_tail":
        head = min(config.head_tokens, budget)
        return [ids[:head] + ids[len(ids) - (budget - head):]]
    stride = max(1, budget - config.chunk_overlap)
    starts = range(0, max(len(ids) - config.chunk_overlap, 1), stride)
    return [ids[start : start + budget] for start in starts][: config.max_chunks]


def _with_special_tokens(tokenizer, prefix: list[int] | None, window: list[int]) -> dict[str, list[int]]:
    """BERT's layout: [CLS] text [SEP], or [CLS] target [SEP] text [SEP] with segment ids 0 then 1."""
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if prefix is None:
        input_ids = [cls, *window, sep]
        types = [0] * len(input_ids)
    else:
        input_ids = [cls, *prefix, sep, *window, sep]
        types = [0] * (len(prefix) + 2) + [1] * (len(window) + 1)
    return {"input_ids": input_ids, "token_type_ids": types, "attention_mask": [1] * len(input_ids)}


class Collator:
    """Pads a batch to its longest window (dynamic) or to `max_length`, and stacks the labels."""

    def __init__(self, pad_id: int, max_length: int | None):
        self.pad_id = pad_id
        self.max_length = max_length

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = self.max_length or max(len(item["input_ids"]) for item in batch)
        out: dict[str, Any] = {}
        for key, pad in (("input_ids", self.pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
            out[key] = torch.tensor([item[key] + [pad] * (width - len(item[key])) for item in batch])
        for key in batch[0]:
            if key.startswith("labels_"):
                out[key] = torch.tensor([item[key] for item in batch])
        return out


# -- the network --------------------------------------------------------------------------------------------------
def build_network(encoder, tasks: list[Task], task_weights: dict[str, float], class_weights: dict[str, list[float]]):
    """The multi-task module: the encoder's [CLS] state -> dropout -> one linear head per task."""
    import torch
    from torch import nn

    class MultiTaskClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            hidden = encoder.config.hidden_size
            self.dropout = nn.Dropout(getattr(encoder.config, "hidden_dropout_prob", 0.1))
            self.heads = nn.ModuleDict({task.name: nn.Linear(hidden, len(task.labels)) for task in tasks})
            self.task_names = [task.name for task in tasks]
            self.task_weights = {task.name: float(task_weights.get(task.name, 1.0)) for task in tasks}
            for name, weights in class_weights.items():
                self.register_buffer(f"class_weight_{name}", torch.tensor(weights, dtype=torch.float32))

        def forward(self, input_ids, attention_mask, token_type_ids=None, **labels):
            state = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                 token_type_ids=token_type_ids).last_hidden_state[:, 0]
            state = self.dropout(state)
            logits = {name: self.heads[name](state) for name in self.task_names}
            out = {"logits": tuple(logits[name] for name in self.task_names)}
            if labels:
                out["loss"] = self._loss(logits, labels)
            return out

        def _loss(self, logits, labels):
            total = logits[self.task_names[0]].new_zeros(())
            for name in self.task_names:
                target = labels.get(f"labels_{name}")
                if target is None or not (target >= 0).any():  # no labelled window for this task in the batch
                    continue
                weight = getattr(self, f"class_weight_{name}", None)
                loss = nn.functional.cross_entropy(logits[name], target, weight=weight, ignore_index=-1)
                total = total + self.task_weights[name] * loss
            return total

    return MultiTaskClassifier()


# -- the model kind -----------------------------------------------------------------------------------------------
@dataclass
class FitContext:
    """What fitting a transformer needs beyond the data: where to work, resuming, reporting."""

    work_dir: Path
    resume: bool = False
    callbacks: list = field(default_factory=list)


class TransformerModel:
    """A fine-tuned encoder with one head per task; probabilities over the schema's labels, in schema order."""

    kind = "transformer"

    def __init__(self, config: TransformerModelConfig, tasks: list[Task]):
        self.config = config
        self.tasks = tasks
        targets = {task.target_field for task in tasks}
        if len(targets) > 1:
            raise TaawunError(f"tasks {[t.name for t in tasks]} read different inputs (target fields {targets}); "
                              "one encoder pass serves tasks with the same input: train them in separate runs")
        self.target_field = next(iter(targets))
        self.preprocess = make_preprocessor(arabert_name(config))
        self.tokenizer = None
        self.network = None

    def documents(self, titles: list[str], texts: list[str]) -> list[str]:
        """What the encoder reads: AraBERT-preprocessed title and text."""
        joined = [f"{t}\n{x}" if self.config.use_title and t else x for t, x in zip(titles, texts, strict=True)]
        return [self.preprocess(text) for text in joined]

    def fit(self, split, seed: int, validation, context: FitContext) -> None:
        """Fine-tune on the train split; early stopping and the best checkpoint use the validation macro-F1."""
        from train.models.transformer.finetune import fit_transformer

        fit_transformer(self, split, seed, validation, context)

    def predict_proba(self, titles: list[str], texts: list[str], targets: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Class probabilities per task; chunked articles average their windows' logits."""
        import torch

        docs = self.documents(titles, texts)
        target = [self.preprocess(t) for t in targets[self.target_field]] if self.target_field else None
        encoded = encode(self.tokenizer, docs, target, self.config)
        logits = self._logits(encoded.features)
        out = {}
        for index, task in enumerate(self.tasks):
            summed = np.zeros((len(docs), len(task.labels)))
            np.add.at(summed, encoded.article, logits[index])
            counts = np.bincount(encoded.article, minlength=len(docs))[:, None]
            out[task.name] = torch.softmax(torch.from_numpy(summed / np.maximum(counts, 1)), dim=1).numpy()
        return out

    def _logits(self, features: list[dict]) -> list[np.ndarray]:
        """Logits per task for all windows, in batches of similar length (less padding); a progress bar when long."""
        import torch
        from tqdm import tqdm

        network = self.network
        device = next(network.parameters()).device
        order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
        collate = Collator(self.tokenizer.pad_token_id, None)
        parts: list[list[np.ndarray]] = [[] for _ in self.tasks]
        network.eval()
        starts = range(0, len(order), self.config.eval_batch_size)
        with torch.no_grad():
            for start in tqdm(starts, desc="predicting", unit=" batches", disable=len(starts) < 20, leave=False):
                batch = collate([features[i] for i in order[start : start + self.config.eval_batch_size]])
                outputs = network(**{k: v.to(device) for k, v in batch.items()})["logits"]
                for index, logits in enumerate(outputs):
                    parts[index].append(logits.float().cpu().numpy())
        unsorted = np.empty_like(order)
        unsorted[order] = np.arange(len(order))
        return [np.concatenate(p)[unsorted] if p else np.zeros((0, len(t.labels))) for p, t in zip(parts, self.tasks,
                                                                                                   strict=True)]

    def save(self, folder: Path) -> None:
        """The encoder and tokenizer (save_pretrained, safetensors) and the heads (safetensors)."""
        from safetensors.torch import save_file

        self.network.encoder.save_pretrained(folder / "encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(folder / "encoder")
        heads = {k: v.contiguous() for k, v in self.network.state_dict().items() if not k.startswith("encoder.")}
        save_file(heads, folder / HEADS_FILE)

    @classmethod
    def load(cls, folder: Path, config: TransformerModelConfig, tasks: list[Task]) -> TransformerModel:
        """Load what `save` wrote (local files only, no remote code)."""
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        quiet_transformers()
        model = cls(config, tasks)
        model.tokenizer = AutoTokenizer.from_pretrained(folder / "encoder", local_files_only=True)
        encoder = AutoModel.from_pretrained(folder / "encoder", local_files_only=True, trust_remote_code=False)
        heads = load_file(folder / HEADS_FILE)
        class_weights = {k.removeprefix("class_weight_"): v.tolist() for k, v in heads.items()
                         if k.startswith("class_weight_")}
        model.network = build_network(encoder, tasks, config.task_weights, class_weights)
        model.network.load_state_dict(heads, strict=False)
        model.network.eval()
        return model


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
