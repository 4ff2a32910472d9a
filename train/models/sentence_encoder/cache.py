"""The on-disk cache of sentence vectors, keyed by the encoder's id and version and the sentence's hash (no pickle)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from train import progress
from train.files import atomic_file

SHARD_ROWS = 50_000
CHUNK_BATCHES = 8  # batches encoded between two updates of the progress bar


def default_cache_dir() -> Path:
    """TAAWUN_CACHE_DIR, else $XDG_CACHE_HOME/taawun/embeddings, else ~/.cache/taawun/embeddings."""
    if os.environ.get("TAAWUN_CACHE_DIR"):
        return Path(os.environ["TAAWUN_CACHE_DIR"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "taawun" / "embeddings"


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
        """Vectors for `sentences`, computing and storing only those not cached yet (progress on stderr)."""
        keys = [self.key(s) for s in sentences]
        missing = {k: s for k, s in zip(keys, sentences, strict=True) if k not in self.vectors}
        cached = len(keys) - len(missing)
        self.misses += len(missing)
        self.hits += cached
        if keys:
            progress.step(f"embedding {len(keys)} sentences with {self.encoder.id}: " + (
                "all cached" if not missing else f"{cached} cached, {len(missing)} to compute"))
        if missing:
            vectors = self._encode(list(missing.values()), batch_size)
            self.vectors.update(zip(missing, vectors, strict=True))
            self._store(list(missing), vectors)
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self.vectors[k] for k in keys])

    def _encode(self, sentences: list[str], batch_size: int) -> np.ndarray:
        """The encoder's vectors, computed a few batches at a time so that a terminal shows a bar when there are many."""
        chunk = batch_size * CHUNK_BATCHES
        vectors = []
        with progress.bar(total=len(sentences), unit="sentences") as shown:
            for start in range(0, len(sentences), chunk):
                vectors.append(self.encoder.encode(sentences[start : start + chunk], batch_size=batch_size))
                shown.update(len(vectors[-1]))
        return np.concatenate(vectors).astype(np.float32)

    def _store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """New shards, written to a temporary name then renamed: a crash never leaves a broken shard."""
        self.folder.mkdir(parents=True, exist_ok=True)
        taken = len(list(self.folder.glob("shard-*.npz")))
        for offset in range(0, len(keys), SHARD_ROWS):
            path = self.folder / f"shard-{taken + offset // SHARD_ROWS:05d}-{os.getpid()}.npz"
            with atomic_file(path, "wb") as handle:
                np.savez(handle, keys=np.array(keys[offset : offset + SHARD_ROWS], dtype="S16"),
                         vectors=vectors[offset : offset + SHARD_ROWS])


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
