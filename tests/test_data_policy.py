"""Label policies and person-disjoint splits on hand-made records."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from maeum.data.policy import AgreementStats, resolve
from maeum.data.records import AIHUB7, Annotation, Record
from maeum.data.split import assign_splits


def rec(a: str | None, b: str | None, c: str | None, uploader: str | None = "happiness") -> Record:
    return Record("x.jpg", "p", tuple(Annotation(e) for e in (a, b, c)), uploader_emotion=uploader)


@pytest.mark.parametrize(
    ("record", "majority", "unanimous", "uploader", "tiebreak"),
    [
        (rec("anger", "anger", "anger"), "anger", "anger", "happiness", "anger"),
        (rec("anger", "anger", "hurt"), "anger", None, "happiness", "anger"),
        (rec("anger", "hurt", "sadness"), None, None, "happiness", "happiness"),  # tie -> uploader
        (rec("anger", "hurt", "sadness", uploader=None), None, None, None, "anger"),  # no uploader -> A
        (rec("anger", None, "hurt"), None, None, "happiness", "happiness"),  # unreadable vote counts against
        (rec("anger", "anger", None), "anger", None, "happiness", "anger"),
    ],
)
def test_policies(record: Record, majority, unanimous, uploader, tiebreak) -> None:
    assert resolve(record, "majority", AIHUB7) == majority
    assert resolve(record, "unanimous", AIHUB7) == unanimous
    assert resolve(record, "uploader", AIHUB7) == uploader
    assert resolve(record, "tiebreak", AIHUB7) == tiebreak


def test_tiebreak_order_is_configurable() -> None:
    r = rec("anger", "hurt", "sadness")
    assert resolve(r, "tiebreak", AIHUB7, ("C", "uploader")) == "sadness"
    assert resolve(r, "tiebreak", AIHUB7, ("B",)) == "hurt"


def test_vote_counts_follow_the_ferplus_protocol() -> None:
    labels = ("neutral", "happiness", "surprise")
    assert resolve(Record("a", "a", votes=(1, 8, 1, 0, 0)), "majority", labels) == "happiness"
    # The top vote is "unknown" (beyond the classes): dropped by majority, kept by soft.
    votes = (2, 1, 0, 6, 1)
    assert resolve(Record("a", "a", votes=votes), "majority", labels) is None
    assert resolve(Record("a", "a", votes=votes), "soft", labels) == "neutral"


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="majority"):
        resolve(rec("anger", "anger", "anger"), "vote", AIHUB7)


def test_agreement_statistics() -> None:
    stats = AgreementStats(AIHUB7, ["majority", "unanimous"])
    for r in [rec("happiness", "happiness", "happiness"), rec("happiness", "happiness", "anger"),
              rec("anger", "hurt", "sadness")]:  # fmt: skip
        stats.add(r)
    s = stats.summary()
    assert s["policies"]["majority"] == {"kept": 2, "dropped": 1}
    assert s["policies"]["unanimous"] == {"kept": 1, "dropped": 2}
    happy = s["agreement"]["per_class"]["happiness"]  # grouped by the uploader's label
    assert happy == {"images": 3, "unanimous": 0.3333, "majority": 0.6667, "all_different": 0.3333}
    # Fleiss' kappa by hand: P_i = 1, 1/3, 0 -> P = 4/9; p_j: happiness 5/9, anger 2/9, hurt, sadness 1/9.
    p_e = (25 + 4 + 1 + 1) / 81
    assert s["agreement"]["fleiss_kappa"] == pytest.approx((4 / 9 - p_e) / (1 - p_e), abs=1e-4)


def test_split_is_person_disjoint_stratified_and_seeded() -> None:
    rng = random.Random(1)
    counts = {f"p{i}": Counter(rng.choice(AIHUB7) for _ in range(rng.randint(1, 15))) for i in range(400)}
    a = assign_splits(counts, (0.8, 0.1, 0.1), seed=3)
    assert set(a) == set(counts)  # every person in exactly one split
    per_split = {s: Counter() for s in ("train", "val", "test")}
    for person, split in a.items():
        per_split[split].update(counts[person])
    total = sum((c for c in counts.values()), Counter())
    for label in AIHUB7:
        assert per_split["train"][label] / total[label] == pytest.approx(0.8, abs=0.03)
        assert per_split["val"][label] / total[label] == pytest.approx(0.1, abs=0.03)
    assert assign_splits(counts, (0.8, 0.1, 0.1), seed=3) == a
    assert assign_splits(counts, (0.8, 0.1, 0.1), seed=4) != a


def test_split_fractions_are_checked() -> None:
    with pytest.raises(ValueError, match="sum"):
        assign_splits({"p": Counter(a=1)}, (0.8, 0.3, 0.1))
