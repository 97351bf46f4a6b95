"""Label policies: from several annotators' votes to one training label, or none.

AI Hub gives three annotators (A, B, C) and the uploader's own label per image:
- ``majority`` (default): the label at least two annotators gave; all different -> none.
- ``unanimous``: only images all three annotators agree on.
- ``uploader``: the label the photographed person gave.
- ``tiebreak``: the majority; when all differ, the first label found in ``tiebreak_order``
  (``uploader``, then annotators ``A``, ``B``, ``C`` by default).
Vote-count sources (FER+) use ``majority`` (the FER+ protocol: the top vote, dropped when
it is not one of the classes) or ``soft`` (every image with a vote for a class; the top
class among them, the votes kept as soft targets).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from maeum.data.records import Record

POLICIES: tuple[str, ...] = ("majority", "unanimous", "uploader", "tiebreak", "soft")
DEFAULT_TIEBREAK: tuple[str, ...] = ("uploader", "A", "B", "C")


def resolve(
    record: Record, policy: str, labels: Sequence[str], tiebreak_order: Sequence[str] = DEFAULT_TIEBREAK
) -> str | None:
    """The training label of ``record`` under ``policy``, or None when the policy leaves it out."""
    if policy not in POLICIES:
        raise ValueError(f"unknown label policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if record.votes is not None:
        return _from_counts(record.votes, labels, soft=policy == "soft")
    if record.label is not None:
        return record.label if record.label in labels else None
    votes = [a.emotion for a in record.annotations]
    if policy == "uploader":
        return _known(record.uploader_emotion, labels)
    if policy == "unanimous":
        first = votes[0] if votes else None
        return _known(first, labels) if votes and all(v == first for v in votes) else None
    label = _majority(votes)
    if label is None and policy == "tiebreak":
        by_source = {"uploader": record.uploader_emotion}
        by_source.update({letter: a.emotion for letter, a in zip("ABCDEFGH", record.annotations, strict=False)})
        label = next((by_source[s] for s in tiebreak_order if by_source.get(s) in labels), None)
    return _known(label, labels)


def _majority(votes: Sequence[str | None]) -> str | None:
    """The label more than half of the annotators gave (2 of 3); unreadable votes count against."""
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None
    label, n = counts.most_common(1)[0]
    return label if n * 2 > len(votes) else None


def _from_counts(votes: Sequence[int], labels: Sequence[str], soft: bool) -> str | None:
    if soft:
        within = votes[: len(labels)]
        return labels[max(range(len(within)), key=lambda i: (within[i], -i))] if any(within) else None
    top = max(range(len(votes)), key=lambda i: (votes[i], -i))
    return labels[top] if top < len(labels) and votes[top] > 0 else None


def _known(label: str | None, labels: Sequence[str]) -> str | None:
    return label if label in labels else None


def votes_per_class(record: Record, labels: Sequence[str]) -> list[int]:
    """Votes per class in ``labels`` order: FER+ counts, or how many annotators chose each class."""
    if record.votes is not None:
        return [int(v) for v in record.votes[: len(labels)]]
    counts = Counter(a.emotion for a in record.annotations)
    return [counts.get(label, 0) for label in labels]


@dataclass
class AgreementStats:
    """Counts, per policy and per class, gathered one record at a time (memory per class, not per image)."""

    labels: Sequence[str]
    policies: Sequence[str]
    kept: Counter = field(default_factory=Counter)
    records: int = 0
    per_class: dict[str, Counter] = field(default_factory=dict)
    uploader_matches: int = 0
    with_majority: int = 0
    # Fleiss' kappa needs, over images rated by all annotators, the sum of per-image agreement
    # and the total of each category's ratings.
    _kappa_images: int = 0
    _kappa_p: float = 0.0
    _kappa_totals: Counter = field(default_factory=Counter)

    def add(self, record: Record) -> None:
        self.records += 1
        for policy in self.policies:
            if resolve(record, policy, self.labels) is not None:
                self.kept[policy] += 1
        votes = [a.emotion for a in record.annotations]
        if not votes:
            return
        majority = _majority(votes)
        key = record.uploader_emotion or majority or "unknown"
        c = self.per_class.setdefault(key, Counter())
        c["images"] += 1
        c["unanimous"] += len(set(votes)) == 1 and votes[0] is not None
        c["majority"] += majority is not None
        c["all_different"] += majority is None
        if majority is not None:
            self.with_majority += 1
            self.uploader_matches += majority == record.uploader_emotion
        if None not in votes and len(votes) > 1:
            n = len(votes)
            counts = Counter(votes)
            self._kappa_images += 1
            self._kappa_p += (sum(k * k for k in counts.values()) - n) / (n * (n - 1))
            self._kappa_totals.update(counts)

    def fleiss_kappa(self) -> float | None:
        if not self._kappa_images:
            return None
        p_bar = self._kappa_p / self._kappa_images
        total = sum(self._kappa_totals.values())
        p_e = sum((v / total) ** 2 for v in self._kappa_totals.values())
        return (p_bar - p_e) / (1 - p_e) if p_e < 1 else 1.0

    def summary(self) -> dict:
        per_class = {}
        for label in [*self.labels, *sorted(set(self.per_class) - set(self.labels))]:
            c = self.per_class.get(label)
            if c:
                n = c["images"]
                per_class[label] = {
                    "images": n,
                    "unanimous": round(c["unanimous"] / n, 4),
                    "majority": round(c["majority"] / n, 4),
                    "all_different": round(c["all_different"] / n, 4),
                }
        kappa = self.fleiss_kappa()
        return {
            "policies": {p: {"kept": self.kept[p], "dropped": self.records - self.kept[p]} for p in self.policies},
            "agreement": {
                "per_class": per_class,
                "fleiss_kappa": None if kappa is None else round(kappa, 4),
                "uploader_matches_majority": round(self.uploader_matches / self.with_majority, 4)
                if self.with_majority
                else None,
            },
        }
