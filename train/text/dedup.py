"""Exact and near-duplicate clusters of article texts.

Exact duplicates are texts with equal content. The texts are compared as given: cleaning and Arabic
normalization happen upstream (`train.text.clean`), so "identical after normalization" means identical here.

Near duplicates come from MinHash LSH over word shingles: each text's set of shingles is reduced to
`num_perm` minimum hash values, the signatures are cut into bands, texts sharing a band's bucket become
candidate pairs, and a candidate pair is joined only if its estimated Jaccard similarity (the fraction
of equal minimum hash values) reaches the threshold. Clusters are the connected components over exact
groups and joined pairs. Everything is seeded and uses xxhash, never Python's salted `hash()`, so the
clusters are the same in every process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import xxhash
from pydantic import BaseModel, ConfigDict, Field

from train.errors import TaawunError

_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_LOW_29_BITS = np.uint64((1 << 29) - 1)
_LOW_32_BITS = np.uint64((1 << 32) - 1)
_MIX_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd, so multiplying by it loses no bits
# Shingles x permutations per MinHash block: 4 MB per buffer, so a block stays in cache through the
# dozen passes of `_permute` and the min-reduction (measured 20-35% faster than half or double).
_BLOCK_ELEMENTS = 1 << 19
# Buckets up to this size are verified pair by pair; bigger ones (boilerplate repeated across thousands
# of texts) link consecutive members only, which union-find makes transitive, to stay linear.
_BIG_BUCKET = 64
_VERIFY_BLOCK = 1 << 16  # candidate pairs compared per block, to bound memory
_GRID_POINTS = 1001  # integration grid for the LSH band/row choice


class DedupOptions(BaseModel):
    """How duplicates are found: exact grouping, MinHash LSH near duplicates, or both."""

    model_config = ConfigDict(extra="forbid")

    exact: bool = Field(default=True, description="group texts identical after normalization")
    near: bool = Field(default=True, description="join MinHash LSH near duplicates")
    threshold: float = Field(default=0.8, gt=0, le=1, description="Jaccard threshold over word shingles")
    shingle_size: int = Field(default=3, ge=1, description="words per shingle")
    num_perm: int = Field(default=128, ge=16, description="MinHash permutations")
    seed: int = 1


@dataclass
class DuplicateClusters:
    """Per-text exact groups and near-duplicate clusters, both numbered by first appearance."""

    exact_group: np.ndarray
    cluster: np.ndarray
    near_pairs: list[tuple[int, int, float]]

    def members(self) -> list[list[int]]:
        """Return the clusters with more than one member, as ascending text indices, by cluster id."""
        order = np.argsort(self.cluster, kind="stable")
        sizes = np.bincount(self.cluster) if len(self.cluster) else np.zeros(0, dtype=np.int64)
        groups = np.split(order, np.cumsum(sizes)[:-1]) if len(sizes) else []
        return [group.tolist() for group in groups if len(group) > 1]


def find_duplicates(texts: Sequence[str], options: DedupOptions) -> DuplicateClusters:
    """Group equal texts and cluster near duplicates among them.

    Only the first text of each exact group is MinHashed. With `exact=False` each text is its own exact
    group and every text is MinHashed, so equal texts meet only as near duplicates (estimated Jaccard 1);
    with both `exact` and `near` off every text is its own cluster.
    """
    texts = list(texts)  # positional indexing below, also for a pandas Series with its own index
    exact_group, first_index = group_exact(texts, options.exact)
    pairs = np.zeros((0, 2), dtype=np.int64)
    estimates = np.zeros(0)
    if options.near:
        pairs, estimates = find_near_pairs([texts[i] for i in first_index], options)
    roots = connect(len(first_index), pairs)
    cluster = number_by_first_appearance(roots[exact_group])
    near_pairs = [
        (int(first_index[i]), int(first_index[j]), float(e)) for (i, j), e in zip(pairs.tolist(), estimates)
    ]
    return DuplicateClusters(exact_group=exact_group, cluster=cluster, near_pairs=near_pairs)


def group_exact(texts: Sequence[str], exact: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Return each text's exact group (numbered by first appearance) and each group's first text index.

    With `exact=False` every text is its own group.
    """
    groups: dict[str | int, int] = {}
    first_index: list[int] = []
    exact_group = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TaawunError(
                f"text {i} is {type(text).__name__}, not a string; de-duplication needs every article's "
                "text. Fill or drop records with a missing text before de-duplicating."
            )
        key = text if exact else i
        group = groups.setdefault(key, len(groups))
        if group == len(first_index):
            first_index.append(i)
        exact_group[i] = group
    return exact_group, np.asarray(first_index, dtype=np.int64)


def find_near_pairs(texts: Sequence[str], options: DedupOptions) -> tuple[np.ndarray, np.ndarray]:
    """Return the pairs (i, j), i < j, of texts whose estimated Jaccard reaches the threshold, with it.

    Texts without shingles (empty or whitespace only) are never paired.
    """
    hashes, counts = shingle_hashes(texts, options.shingle_size)
    has_shingles = np.flatnonzero(counts > 0)
    signatures = minhash(hashes, counts[has_shingles], options.num_perm, options.seed)
    bands, rows = choose_bands(options.threshold, options.num_perm)
    candidates = candidate_pairs(signatures, bands, rows)
    pairs, estimates = verify_pairs(signatures, candidates, options.threshold)
    return has_shingles[pairs], estimates


def shingle_hashes(texts: Sequence[str], shingle_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return all texts' 32-bit word-shingle hashes, concatenated, and the number per text.

    A text shorter than `shingle_size` words is one shingle of all its words; an empty text has none.
    Each word is hashed once with xxh3_64 and a shingle's hash is mixed from its words' hashes in numpy,
    which identifies the same shingles as hashing the shingle string at a fraction of the cost.
    """
    word_hashes, word_counts = hash_words(texts)
    widths = np.minimum(word_counts, shingle_size)
    counts = np.where(word_counts > 0, word_counts - widths + 1, 0)
    text_of = np.repeat(np.arange(len(texts)), counts)
    word_starts = np.cumsum(word_counts) - word_counts
    shingle_starts = np.cumsum(counts) - counts
    positions = word_starts[text_of] + np.arange(len(text_of)) - shingle_starts[text_of]
    width_at = widths[text_of]
    mixed = np.empty(len(positions), dtype=np.uint64)
    for width in np.unique(width_at).tolist():
        rows = width_at == width
        mixed[rows] = _mix_runs(word_hashes, width)[positions[rows]]
    # 32 bits tell apart the few thousand shingles two texts hold and keep `_permute` to two products.
    return _finalize(mixed) >> np.uint64(32), counts


def _mix_runs(word_hashes: np.ndarray, width: int) -> np.ndarray:
    """Return a 64-bit mix of every run of `width` consecutive word hashes, in order of the run's start.

    Runs crossing from one text into the next are computed too: slicing the whole array once is cheaper
    than gathering each shingle's words, and the caller picks the runs that are shingles.
    """
    mixed = word_hashes[: max(len(word_hashes) - width + 1, 0)].copy()
    for offset in range(1, width):
        mixed *= _MIX_MULTIPLIER
        mixed += word_hashes[offset : offset + len(mixed)]
    return mixed


def hash_words(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return the xxh3_64 hash of every whitespace-separated word, concatenated, and the count per text."""
    per_text = []
    for text in texts:
        words = text.split()
        per_text.append(
            np.fromiter(map(xxhash.xxh3_64_intdigest, map(str.encode, words)), dtype=np.uint64, count=len(words))
        )
    counts = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
    hashes = np.concatenate(per_text) if per_text else np.zeros(0, dtype=np.uint64)
    return hashes, counts


def minhash(hashes: np.ndarray, counts: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """Return the MinHash signature (texts x num_perm, uint64) of texts with `counts` > 0 shingles each.

    Permutation k maps a shingle hash x to (a_k * x + b_k) mod (2**61 - 1) with a_k, b_k drawn from the
    whole field. (With a and b below 2**32, a * x + b stays far below the prime for small x, so a shingle
    with a small hash wins every permutation and unrelated texts that share it look identical.)
    """
    rng = np.random.default_rng(seed)
    multipliers = rng.integers(1, int(_MERSENNE_PRIME), size=(num_perm, 1), dtype=np.uint64)
    increments = rng.integers(0, int(_MERSENNE_PRIME), size=(num_perm, 1), dtype=np.uint64)
    starts = np.cumsum(counts) - counts
    signatures = np.empty((len(counts), num_perm), dtype=np.uint64)
    blocks = _blocks(starts, max(1, _BLOCK_ELEMENTS // num_perm))
    widest = max((int(starts[hi - 1] + counts[hi - 1] - starts[lo]) for lo, hi in blocks), default=0)
    # Reused for every block: fresh multi-MB arrays per block cost more in page faults than the arithmetic.
    buffers = np.empty((3, num_perm * widest), dtype=np.uint64)
    for lo, hi in blocks:
        begin = starts[lo]
        end = starts[hi - 1] + counts[hi - 1]
        permuted, high, low = (buffer[: num_perm * (end - begin)].reshape(num_perm, -1) for buffer in buffers)
        _permute(hashes[begin:end], multipliers, increments, permuted, (high, low))
        signatures[lo:hi] = np.minimum.reduceat(permuted, starts[lo:hi] - begin, axis=1).T
    return signatures


def _permute(
    x: np.ndarray,
    multipliers: np.ndarray,
    increments: np.ndarray,
    out: np.ndarray,
    scratch: tuple[np.ndarray, np.ndarray],
) -> None:
    """Write (a * x + b) mod (2**61 - 1) into out, one row per (a, b), for x < 2**32 and a, b < 2**61.

    a * x needs up to 93 bits, so a is split at bit 32 and each partial product, which fits 64 bits, is
    folded with 2**61 = 1 (mod 2**61 - 1). `scratch` is two arrays of out's shape, overwritten.
    """
    high, low = scratch
    np.multiply(multipliers >> np.uint64(32), x, out=high)  # < 2**61; stands for high * 2**32
    # high * 2**32 = (high >> 29) * 2**61 + (high mod 2**29) * 2**32, and 2**61 = 1 (mod 2**61 - 1)
    np.bitwise_and(high, _LOW_29_BITS, out=out)
    out <<= np.uint64(32)
    high >>= np.uint64(29)
    out += high
    np.multiply(multipliers & _LOW_32_BITS, x, out=low)  # < 2**64
    np.right_shift(low, np.uint64(61), out=high)
    out += high
    low &= _MERSENNE_PRIME
    out += low
    out += increments  # four terms below 2**61 + 2**32 each: the sum stays below 2**63
    _mod_mersenne(out, high)


def _blocks(starts: np.ndarray, block_size: int) -> list[tuple[int, int]]:
    """Return [lo, hi) ranges of whole texts covering about `block_size` shingles each."""
    if len(starts) == 0:
        return []
    cuts = np.unique(np.searchsorted(starts, np.arange(0, int(starts[-1]) + 1, block_size)))
    bounds = np.append(cuts, len(starts)).tolist()
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def _mod_mersenne(values: np.ndarray, scratch: np.ndarray) -> None:
    """Reduce values < 2**63 modulo 2**61 - 1 in place, with shifts instead of a slow integer division."""
    np.right_shift(values, np.uint64(61), out=scratch)
    values &= _MERSENNE_PRIME
    values += scratch  # now < 2**61 + 4: at most one subtraction of the prime is left
    np.subtract(values, _MERSENNE_PRIME, out=scratch)  # wraps to a huge value where values < prime
    np.minimum(values, scratch, out=values)


def _finalize(values: np.ndarray) -> np.ndarray:
    """Return MurmurHash3's 64-bit finalizer of values: spreads every input bit over the high bits."""
    values = values ^ (values >> np.uint64(33))
    values *= np.uint64(0xFF51AFD7ED558CCD)
    values ^= values >> np.uint64(33)
    values *= np.uint64(0xC4CEB9FE1A85EC53)
    values ^= values >> np.uint64(33)
    return values


def choose_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """Return the bands and rows (bands * rows <= num_perm) with the least false positive + negative area.

    This is datasketch's `_optimal_param` with equal weights, integrated with the trapezoid rule. The
    probability that a pair of Jaccard s becomes a candidate is 1 - (1 - s**rows)**bands.
    """
    choices = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    bands, rows = choices[:, :1], choices[:, 1:]
    below = np.linspace(0.0, threshold, _GRID_POINTS)
    above = np.linspace(threshold, 1.0, _GRID_POINTS)
    false_positive = _integrate(1 - (1 - below**rows) ** bands, below)
    false_negative = _integrate((1 - above**rows) ** bands, above)
    best = int(np.argmin(false_positive + false_negative))  # first minimum, as datasketch's loop keeps
    return int(choices[best, 0]), int(choices[best, 1])


def _integrate(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Return the trapezoid-rule integral of each row of values over grid."""
    return ((values[:, 1:] + values[:, :-1]) / 2 * np.diff(grid)).sum(axis=1)


def candidate_pairs(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Return the unique pairs (i, j), i < j, of signatures that share a bucket in at least one band."""
    found = [np.zeros((0, 2), dtype=np.int64)]
    for band in range(bands):
        columns = signatures[:, band * rows : (band + 1) * rows]
        keys = columns[:, 0].copy()
        for column in range(1, rows):
            keys = keys * _MIX_MULTIPLIER + columns[:, column]
        found.append(bucket_pairs(_finalize(keys)))
    pairs = np.concatenate(found)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """Return pairs (i, j), i < j, of equal keys: all pairs in small buckets, consecutive ones in big.

    Sorting brings each bucket's members together in index order; members d apart in that order are in
    the same bucket iff their keys are equal, so looping over d yields all pairs without a Python loop
    over buckets.
    """
    if len(keys) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    size_at = np.repeat(sizes, sizes)
    small = sizes[sizes <= _BIG_BUCKET]
    found = [np.zeros((0, 2), dtype=np.int64)]
    for distance in range(1, max(int(small.max(initial=0)), 2)):
        same = sorted_keys[distance:] == sorted_keys[:-distance]
        if distance > 1:
            same &= size_at[distance:] <= _BIG_BUCKET
        found.append(np.stack([order[:-distance][same], order[distance:][same]], axis=1))
    return np.concatenate(found)


def verify_pairs(signatures: np.ndarray, pairs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the pairs whose estimated Jaccard (fraction of equal MinHash values) is >= threshold, with it."""
    estimates = np.empty(len(pairs))
    for lo in range(0, len(pairs), _VERIFY_BLOCK):
        block = pairs[lo : lo + _VERIFY_BLOCK]
        estimates[lo : lo + len(block)] = (signatures[block[:, 0]] == signatures[block[:, 1]]).mean(axis=1)
    kept = estimates >= threshold
    return pairs[kept], estimates[kept]


def connect(n: int, pairs: np.ndarray) -> np.ndarray:
    """Return a root id per node 0..n-1 such that nodes joined by pairs (directly or not) share it."""
    parent = list(range(n))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps later look-ups short
            node = parent[node]
        return node

    for i, j in pairs.tolist():
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.fromiter((root(node) for node in range(n)), dtype=np.int64, count=n)


def number_by_first_appearance(labels: np.ndarray) -> np.ndarray:
    """Return labels renumbered 0..k-1 in the order in which each label first appears."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse.reshape(-1)]
