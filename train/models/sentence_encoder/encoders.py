"""Sentence encoders: the bundled Universal Sentence Encoder multilingual v3, or a Hugging Face model (mean-pooled)."""

from __future__ import annotations

import hashlib

import numpy as np


class HubEncoder:
    """A Hugging Face / sentence-transformers encoder (name or local folder), mean-pooled and L2-normalized."""

    def __init__(self, name: str, max_length: int = 128):
        from train.models.hub import load_pretrained

        self.tokenizer, self.model = load_pretrained(name)
        self.model.eval()
        self.id = name
        self.dim = self.model.config.hidden_size
        digest = hashlib.sha256(self.model.config.to_json_string().encode()).hexdigest()[:12]
        self.version = f"hf-{digest}-len{max_length}"
        self.max_length = max_length

    def encode(self, sentences: list[str], batch_size: int = 64) -> np.ndarray:
        """Mean of the last hidden states over real tokens, L2-normalized."""
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(sentences), batch_size):
                batch = self.tokenizer(sentences[start : start + batch_size], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                states = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(mean, dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)


def make_encoder(name: str):
    """The encoder called `name`: the bundled USE multilingual v3, or a hub / local transformer."""
    from train.models.sentence_encoder.use import ENCODER_ID, UseEncoder

    if name == ENCODER_ID:
        return UseEncoder()
    return HubEncoder(name)
