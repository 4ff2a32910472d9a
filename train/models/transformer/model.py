"""The transformer kind: one shared pretrained encoder (AraBERT by default), one classification head per task.

Long articles are truncated to their head, to head and tail, or split into overlapping chunks whose logits are
averaged per article. The AraBERT preprocessing that matches the model name is applied before tokenization, at
training and at prediction alike. Weights are saved as safetensors; remote code is never trusted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from train.errors import TaawunError
from train.models.base import Articles, FitContext, ModelKind
from train.models.transformer.config import TransformerConfig
from train.models.transformer.encoding import Collator, encode
from train.models.transformer.finetune import fit_transformer
from train.models.transformer.network import build_network
from train.models.transformer.preprocess import arabert_name, make_preprocessor
from train.schema import Task

HEADS_FILE = "heads.safetensors"


class TransformerModel(ModelKind):
    """A fine-tuned encoder with one head per task; probabilities over the schema's labels, in schema order."""

    kind = "transformer"
    config_class = TransformerConfig
    requirements = ("torch", "transformers", "tokenizers", "safetensors", "arabert")

    def __init__(self, config: TransformerConfig, tasks: list[Task]):
        super().__init__(config, tasks)
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

    def fit(self, articles: Articles, labels: dict[str, np.ndarray], context: FitContext) -> TransformerModel:
        """Fine-tune on the training articles; early stopping and the best checkpoint use the validation macro-F1."""
        fit_transformer(self, articles, labels, context)
        return self

    def predict_proba(self, articles: Articles) -> dict[str, np.ndarray]:
        """Class probabilities per task; chunked articles average their windows' logits."""
        import torch

        docs = self.documents(articles.titles, articles.texts)
        target = [self.preprocess(t) for t in articles.targets[self.target_field]] if self.target_field else None
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
        return [np.concatenate(p)[unsorted] if p else np.zeros((0, len(t.labels)))
                for p, t in zip(parts, self.tasks, strict=True)]

    def save(self, folder: Path) -> None:
        """The encoder and tokenizer (save_pretrained, safetensors) and the heads (safetensors)."""
        from safetensors.torch import save_file

        self.network.encoder.save_pretrained(folder / "encoder", safe_serialization=True)
        self.tokenizer.save_pretrained(folder / "encoder")
        heads = {k: v.contiguous() for k, v in self.network.state_dict().items() if not k.startswith("encoder.")}
        save_file(heads, folder / HEADS_FILE)

    @classmethod
    def load(cls, folder: Path, config: TransformerConfig, tasks: list[Task]) -> TransformerModel:
        """Load what `save` wrote (local files only, no remote code)."""
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        from train.models.hub import quiet_transformers

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
