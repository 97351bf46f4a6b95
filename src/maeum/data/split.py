"""Person-disjoint, stratified train/val/test splits, and per-class caps.

Everything is decided from per-person label counts (memory per person, not per image)
and a seeded hash, so the same data and seed always give the same split.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence

SPLITS: tuple[str, ...] = ("train", "val", "test")


def seeded_key(seed: int, text: str) -> str:
    """A stable pseudo-random sort key for ``text``: the same on every machine and run."""
    return hashlib.sha1(f"{seed}\x00{text}".encode()).hexdigest()


def assign_splits(
    person_counts: Mapping[str, Mapping[str, int]], fractions: Sequence[float], seed: int = 0
) -> dict[str, str]:
    """Give every person one split so each split gets about ``fractions`` of every class.

    Greedy over persons, largest first (ties in seeded-random order): each goes to the split
    whose per-class targets it fills best. No person is ever in two splits.
    """
    if len(fractions) != len(SPLITS) or any(f < 0 for f in fractions) or not 0.999 < sum(fractions) < 1.001:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    totals: Counter = Counter()
    for counts in person_counts.values():
        totals.update(counts)
    targets = [{c: f * n for c, n in totals.items()} for f in fractions]
    filled: list[Counter] = [Counter() for _ in SPLITS]
    order = sorted(person_counts, key=lambda p: (-sum(person_counts[p].values()), seeded_key(seed, p)))
    assignment: dict[str, str] = {}
    for person in order:
        counts = person_counts[person]

        def deficit(i: int, counts: Mapping[str, int] = counts) -> float:
            # The split's unmet share of each class the person has, weighted by their images.
            return sum(n * (targets[i][c] - filled[i][c]) / max(targets[i][c], 1e-9) for c, n in counts.items())

        best = max(range(len(SPLITS)), key=lambda i: (fractions[i] > 0, deficit(i), fractions[i]))
        assignment[person] = SPLITS[best]
        filled[best].update(counts)
    return assignment
