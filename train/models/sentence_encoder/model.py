"""A frozen pretrained sentence encoder with light heads: `model.kind: encoder`, for small labelled sets.

An article is split into sentences (Arabic punctuation aware), the title and the sentences are embedded, and the
sentence vectors are pooled (mean, max, title). A logistic regression (or a small MLP) per task reads the pooled vector,
optionally beside the TF-IDF features (a hybrid). Embeddings are cached on disk per sentence, keyed by the encoder's id
and version and the sentence's hash, as NumPy arrays (no pickle).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from train.errors import TaawunError
from train.config.experiment import EncoderModelConfig
from train.schema import Task

SENTENCE_END = re.compile(r"[.!?؟؛\n]+")
SHARD_ROWS = 50_000


def split_sentences(text: str, limit: int) -> list[str]:
    """Sentences of a text, split on . ! ? ؟ ؛ and line breaks; at most `limit` (the article's first ones)."""
    sentences = [s.strip() for s in SENTENCE_END.split(text)]
    return [s for s in sentences if s][:limit]


def default_cache_dir() -> Path:
    """TAAWUN_CACHE_DIR, else $XDG_CACHE_HOME/taawun/embeddings, else ~/.cache/taawun/embeddings."""
    if os.environ.get("TAAWUN_CACHE_DIR"):
        return Path(os.environ["TAAWUN_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "taawun" / "embeddings"


# -- encoders -----------------------------------------------------------------------------------------------------
class HubEncoder:
    """A Hugging Face / sentence-transformers encoder (name or local folder), mean-pooled and L2-normalized."""

    def __init__(self, name: str, max_length: int = 128):
        from train.models.transformer.model import load_pretrained

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


# -- the cache ----------------------------------------------------------------------------------------------------
class EmbeddingCache:
    """Sentence vectors on disk under `<root>/<encoder id>@<version>/`, in .npz shards of (keys, vectors)."""

    def __init__(self, root: Path, encoder):
        safe = re.sub(r"[^\w.@-]+", "_", f"{encoder.id}@{encoder.version}")
        self.folder = root / safe
        self.encoder = encoder
        self.vectors: dict[bytes, np.ndarray] = {}
        self.hits = self.misses = 0
        for shard in sorted(self.folder.glob("shard-*.npz")):
            with np.load(shard, allow_pickle=False) as data:
                self.vectors.update(zip(data["keys"].tolist(), data["vectors"], strict=True))

    @staticmethod
    def key(sentence: str) -> bytes:
        """The cache key of a (normalized) sentence."""
        return hashlib.blake2b(sentence.encode("utf-8"), digest_size=16).digest()

    def embed(self, sentences: list[str], batch_size: int) -> np.ndarray:
        """Vectors for `sentences`, computing and storing only those not cached yet."""
        keys = [self.key(s) for s in sentences]
        missing = {k: s for k, s in zip(keys, sentences, strict=True) if k not in self.vectors}
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        if missing:
            vectors = self.encoder.encode(list(missing.values()), batch_size=batch_size).astype(np.float32)
            self.vectors.update(zip(missing, vectors, strict=True))
            self._store(list(missing), vectors)
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def _store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """New shards, written to a temporary name then renamed: a crash never leaves a broken shard."""
        self.folder.mkdir(parents=True, exist_ok=True)
        taken = len(list(self.folder.glob("shard-*.npz")))
        for offset in range(0, len(keys), SHARD_ROWS):
            path = self.folder / f"shard-{taken + offset // SHARD_ROWS:05d}-{os.getpid()}.npz"
            staging = path.with_suffix(".tmp.npz")
            np.savez(staging, keys=np.array(keys[offset : offset + SHARD_ROWS], dtype="S16"),
                     vectors=vectors[offset : offset + SHARD_ROWS])
            staging.replace(path)


def cache_info(root: Path) -> list[dict[str, Any]]:
    """Per encoder folder: sentences cached and bytes on disk."""
    rows = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()):
        shards = list(folder.glob("shard-*.npz"))
        sentences = 0
        for shard in shards:
            with np.load(shard, allow_pickle=False) as data:
                sentences += len(data["keys"])
        rows.append({"encoder": folder.name, "sentences": sentences, "bytes": sum(s.stat().st_size for s in shards)})
    return rows


# -- the model kind -----------------------------------------------------------------------------------------------
class EncoderModel:
    """Pooled sentence embeddings (and optionally TF-IDF) with one classifier per task."""

    kind = "encoder"

    def __init__(self, config: EncoderModelConfig, tasks: list[Task]):
        self.config = config
        self.tasks = tasks
        self._encoder = None
        self._cache = None
        self.tfidf = None
        self.classifiers: dict[str, Any] = {}

    @property
    def encoder(self):
        """The sentence encoder, loaded on first use."""
        if self._encoder is None:
            self._encoder = make_encoder(self.config.encoder)
        return self._encoder

    @property
    def cache(self) -> EmbeddingCache:
        """The embedding cache of this encoder."""
        if self._cache is None:
            self._cache = EmbeddingCache(self.config.cache_dir or default_cache_dir(), self.encoder)
        return self._cache

    def article_vectors(self, titles: list[str], texts: list[str]) -> np.ndarray:
        """One pooled vector per article: the chosen poolings over its sentences, concatenated."""
        pieces = [split_sentences(text, self.config.max_sentences) or [text.strip() or "."] for text in texts]
        flat = [s for sentences in pieces for s in sentences]
        vectors = self.cache.embed(flat + [t.strip() or "." for t in titles], self.config.batch_size)
        sentence_vectors, title_vectors = vectors[: len(flat)], vectors[len(flat):]
        bounds = np.cumsum([0] + [len(p) for p in pieces])
        pooled = []
        for name in self.config.pooling:
            if name == "mean":
                pooled.append(np.add.reduceat(sentence_vectors, bounds[:-1]) / np.diff(bounds)[:, None])
            elif name == "max":
                pooled.append(np.maximum.reduceat(sentence_vectors, bounds[:-1]))
            else:  # title; an article without a title gets zeros
                pooled.append(title_vectors * np.array([[bool(t.strip())] for t in titles], dtype=np.float32))
        return np.hstack(pooled).astype(np.float32)

    def _features(self, task: Task, titles, texts, targets: dict[str, list[str]], vectors=None, tfidf_rows=None):
        """The task's input: article vector ([u, v, u*v, u-v] with the target's for pair tasks), + TF-IDF."""
        vectors = self.article_vectors(titles, texts) if vectors is None else vectors
        if task.target_field:
            target = self.article_vectors([""] * len(texts), targets[task.target_field])
            vectors = np.hstack([vectors, target, vectors * target, vectors - target])
        blocks = [sp.csr_matrix(vectors)] if "encoder" in self.config.features else []
        if self.tfidf is not None:
            from train.models.tfidf.model import document

            if tfidf_rows is None:
                docs = [document(t, x, self.config.tfidf.use_title) for t, x in zip(titles, texts, strict=True)]
                tfidf_rows = self.tfidf.transform(docs)
            blocks.append(tfidf_rows * self.config.tfidf_weight)
        return sp.hstack(blocks, format="csr")

    def fit(self, split, seed: int, validation=None) -> None:
        """Embed the training articles (cached), fit TF-IDF if asked, then one head per task."""
        from train.models.tfidf.model import _require_two_classes, document
        from train.features.tfidf import TfidfFeatures

        titles, texts = list(split["title"]), list(split["text"])
        vectors = self.article_vectors(titles, texts) if "encoder" in self.config.features else None
        tfidf_rows = None
        if "tfidf" in self.config.features:
            self.tfidf = TfidfFeatures(self.config.tfidf)
            tfidf_rows = self.tfidf.fit_transform([document(t, x, self.config.tfidf.use_title)
                                                   for t, x in zip(titles, texts, strict=True)])
        targets = {t.target_field: list(split[t.target_field]) for t in self.tasks if t.target_field}
        for task in self.tasks:
            x = self._features(task, titles, texts, targets, vectors, tfidf_rows)
            y = np.asarray(split[task.name])
            mask = y >= 0
            _require_two_classes(task, y[mask])
            self.classifiers[task.name] = self._fit_head(x[mask], y[mask], seed)

    def _fit_head(self, x, y, seed: int):
        from sklearn.utils.class_weight import compute_sample_weight

        weights = compute_sample_weight("balanced", y) if self.config.class_weight == "balanced" else None
        if self.config.head == "mlp":
            from sklearn.neural_network import MLPClassifier

            head = MLPClassifier(**{"hidden_layer_sizes": (256,), "max_iter": 300, "early_stopping": False,
                                    **self.config.params}, random_state=seed)
            return head.fit(x, y, sample_weight=weights)
        from sklearn.linear_model import LogisticRegression

        head = LogisticRegression(**{"C": 1.0, "max_iter": 2000, **self.config.params}, random_state=seed)
        return head.fit(x, y, sample_weight=weights)

    def predict_proba(self, titles: list[str], texts: list[str], targets: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Class probabilities per task, shape (n, number of schema labels)."""
        vectors = self.article_vectors(titles, texts) if "encoder" in self.config.features else None
        out = {}
        for task in self.tasks:
            x = self._features(task, titles, texts, targets, vectors)
            classifier = self.classifiers[task.name]
            proba = np.zeros((x.shape[0], len(task.labels)))
            proba[:, classifier.classes_] = classifier.predict_proba(x)
            out[task.name] = proba
        return out

    def encoder_info(self) -> dict[str, str]:
        """What the model was trained with; loading against another encoder is refused."""
        return {"id": self.encoder.id, "version": self.encoder.version}

    def save(self, folder: Path) -> None:
        """Heads as skops files, TF-IDF as JSON/npz, the encoder's identity in encoder.json."""
        import json

        from train.models.tfidf.model import save_classifiers

        if self.tfidf is not None:
            self.tfidf.save(folder)
        save_classifiers(self.classifiers, folder)
        (folder / "encoder.json").write_text(json.dumps(self.encoder_info()), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, config: EncoderModelConfig, tasks: list[Task]) -> EncoderModel:
        """Load what `save` wrote; the current encoder must be the one the model was trained with."""
        import json

        from train.models.tfidf.model import load_classifiers
        from train.features.tfidf import TfidfFeatures

        model = cls(config, tasks)
        saved = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        if saved != model.encoder_info():
            raise TaawunError(f"{folder}: the model was trained with encoder {saved}, but this installation has "
                              f"{model.encoder_info()}; install the encoder version it names, or retrain")
        if (folder / "features.json").is_file():
            model.tfidf = TfidfFeatures.load(folder)
        model.classifiers = load_classifiers(folder, tasks)
        return model
