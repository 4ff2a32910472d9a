"""Inter-annotator agreement: Cohen's kappa for a pair of annotators, Krippendorff's alpha (nominal) for all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from itertools import combinations


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two equally long label sequences; None when it is undefined (no items, or one label only)."""
    if len(first) != len(second):
        raise ValueError("cohen_kappa needs two sequences of the same length")
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    count_first, count_second = Counter(first), Counter(second)
    expected = sum(count_first[label] * count_second[label] for label in count_first) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Krippendorff's alpha for nominal data; `units` holds each item's labels (one per annotator who labelled it).

    Items with fewer than two labels carry no pairing information and are left out, as in Krippendorff (2011).
    None when undefined (fewer than two pairable values, or a single label throughout).
    """
    coincidence: Counter[tuple[Hashable, Hashable]] = Counter()
    for labels in units:
        m = len(labels)
        if m < 2:
            continue
        counts = Counter(labels)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_k - 1) if c == k else n_c * n_k
                coincidence[c, k] += pairs / (m - 1)
    totals: Counter[Hashable] = Counter()
    for (c, _k), value in coincidence.items():
        totals[c] += value
    n = sum(totals.values())
    if n < 2:
        return None
    observed = sum(value for (c, k), value in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k) / (n - 1)
    if expected == 0:
        return None
    return 1 - observed / expected


def agreement_for_task(labels: Mapping[str, Mapping[str, str]]) -> dict:
    """Agreement on one task; `labels` maps annotator -> {item id -> label}.

    Returns pairwise Cohen's kappa (on the items both annotators labelled) and Krippendorff's alpha over all items.
    """
    annotators = sorted(labels)
    pairs = []
    for a, b in combinations(annotators, 2):
        shared = sorted(set(labels[a]) & set(labels[b]))
        first = [labels[a][item] for item in shared]
        second = [labels[b][item] for item in shared]
        agree = sum(x == y for x, y in zip(first, second, strict=True))
        pairs.append({"annotators": [a, b], "items": len(shared), "agreement": agree / len(shared) if shared else None,
                      "kappa": cohen_kappa(first, second)})
    items = sorted({item for per_annotator in labels.values() for item in per_annotator})
    units = [[labels[a][item] for a in annotators if item in labels[a]] for item in items]
    return {"annotators": annotators, "items": sum(len(unit) >= 2 for unit in units), "pairs": pairs,
            "krippendorff_alpha": krippendorff_alpha(units)}
