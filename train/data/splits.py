"""Train/validation/test splits in which no duplicate cluster crosses splits, stratified on one task."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

SPLITS = ("train", "validation", "test")


@dataclass
class SplitResult:
    """The split of each article (None: excluded); `excluded` maps each one to the held-out article it duplicates."""

    assignment: list[str | None]
    excluded: dict[int, int] = field(default_factory=dict)


def assign_splits(
    clusters: Sequence[int],
    strata: Sequence[str | None],
    forced_test: Sequence[bool],
    fractions: dict[str, float],
    seed: int,
    fold: tuple[int, int] | None = None,
) -> SplitResult:
    """Assign whole duplicate clusters to splits.

    Articles with `forced_test` (held-out outlets, dates after a cut-off, a held-out file) go to test. A cluster
    holding such an article cannot also feed train: its other members are excluded, with the reason. The free
    clusters are split by `fractions` within each stratum (the cluster's majority label), largest clusters first.
    With `fold` = (k, K), the free clusters are first dealt into K folds the same way (the same for every k, so the
    K test splits partition the articles); fold k is the test split and the rest is split by `fractions`.
    """
    members: dict[int, list[int]] = defaultdict(list)
    for index, cluster in enumerate(clusters):
        members[cluster].append(index)
    result = SplitResult([None] * len(clusters))
    free = []
    for cluster, indices in members.items():
        forced = [i for i in indices if forced_test[i]]
        if not forced:
            free.append(cluster)
            continue
        for i in indices:
            if forced_test[i]:
                result.assignment[i] = "test"
            else:
                result.excluded[i] = forced[0]
    wanted = {name: share for name, share in fractions.items() if share > 0}
    total = sum(wanted.values())
    wanted = {name: share / total for name, share in wanted.items()}
    rng = np.random.default_rng(seed)
    strata_clusters = list(_by_stratum(free, members, strata).values())
    if fold is not None:
        index, count = fold
        folds = [None] * len(clusters)
        for stratum in strata_clusters:
            _fill(stratum, members, {f"fold{k}": 1 / count for k in range(count)}, rng, folds)
        wanted = {name: share / (1 - wanted.get("test", 0.0)) for name, share in wanted.items() if name != "test"}
        held = {cluster for cluster in free if folds[members[cluster][0]] == f"fold{index}"}
        for cluster in held:
            for i in members[cluster]:
                result.assignment[i] = "test"
        strata_clusters = [[c for c in stratum if c not in held] for stratum in strata_clusters]
    for stratum in strata_clusters:
        _fill(stratum, members, wanted, rng, result.assignment)
    return result


def _by_stratum(free: list[int], members: dict[int, list[int]], strata: Sequence[str | None]) -> dict:
    """Free clusters grouped by their majority stratum label (sorted keys, so the seed alone decides)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for cluster in free:
        labels = Counter(str(strata[i]) for i in members[cluster])
        groups[min(labels, key=lambda label: (-labels[label], label))].append(cluster)
    return {key: groups[key] for key in sorted(groups)}


def _fill(clusters: list[int], members: dict, wanted: dict[str, float], rng, assignment: list) -> None:
    """Deal clusters, biggest first (random order among equals), to the split furthest below its target."""
    order = rng.permutation(len(clusters))
    ordered = sorted((clusters[i] for i in order), key=lambda c: -len(members[c]))
    size = sum(len(members[c]) for c in clusters)
    counts = dict.fromkeys(wanted, 0)
    for cluster in ordered:
        name = max(wanted, key=lambda split: wanted[split] * size - counts[split])
        counts[name] += len(members[cluster])
        for i in members[cluster]:
            assignment[i] = name
