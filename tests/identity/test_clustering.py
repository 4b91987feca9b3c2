"""Constrained clustering: chains, rulings that block or force a join, determinism, speed."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from civicpulse.identity.clustering import cluster_records


def scored(*rows: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["record_l", "record_r", "match_probability"])


def groups(result: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(g["record_id"]) for _c, g in result.groupby("cluster_id")}


def test_a_chain_of_strong_pairs_is_one_cluster_and_weak_pairs_do_not_join():
    result = cluster_records(
        ["a", "b", "c", "d", "e"],
        scored(("a", "b", 0.99), ("b", "c", 0.97), ("c", "d", 0.6), ("e", "d", 0.2)),
        threshold=0.95,
    )
    assert groups(result) == {frozenset("abc"), frozenset("d"), frozenset("e")}
    # every record once; a cluster is named by its smallest record id
    assert sorted(result["record_id"]) == ["a", "b", "c", "d", "e"]
    assert set(result.loc[result["record_id"].isin(["a", "b", "c"]), "cluster_id"]) == {"a"}
    assert result.set_index("record_id").loc["d", "cluster_id"] == "d"


def test_a_pair_exactly_at_the_threshold_joins():
    assert groups(cluster_records(["x", "y"], scored(("x", "y", 0.95)), threshold=0.95)) == {
        frozenset("xy")
    }


def test_a_different_ruling_blocks_the_chain_at_its_weakest_link():
    # a-b strongest, then c-d, then b-c: joining b-c would put a and d together
    pairs = scored(("a", "b", 0.999), ("c", "d", 0.998), ("b", "c", 0.96))
    assert groups(cluster_records(list("abcd"), pairs, threshold=0.95)) == {frozenset("abcd")}
    blocked = cluster_records(list("abcd"), pairs, threshold=0.95, different=[("d", "a")])
    assert groups(blocked) == {frozenset("ab"), frozenset("cd")}


def test_the_stronger_pair_wins_when_a_record_could_go_either_way():
    # b is ruled different from c; a-b (0.99) is stronger than a-c (0.97), so a goes with b
    pairs = scored(("a", "c", 0.97), ("a", "b", 0.99))
    result = cluster_records(list("abc"), pairs, threshold=0.95, different=[("b", "c")])
    assert groups(result) == {frozenset("ab"), frozenset("c")}


def test_a_same_ruling_joins_across_a_low_pair_and_outranks_the_model():
    pairs = scored(("a", "b", 0.1), ("b", "c", 0.99))
    result = cluster_records(list("abcd"), pairs, threshold=0.95, same=[("a", "b")])
    assert groups(result) == {frozenset("abc"), frozenset("d")}
    # must-links go first: with c ruled apart from a, the model's strong b-c loses to a=b
    result = cluster_records(
        list("abc"), pairs, threshold=0.95, same=[("b", "a")], different=[("a", "c")]
    )
    assert groups(result) == {frozenset("ab"), frozenset("c")}


def test_a_same_ruling_that_contradicts_a_different_ruling_is_skipped():
    result = cluster_records(
        list("abc"),
        scored(),
        threshold=0.95,
        same=[("a", "b"), ("b", "c")],
        different=[("a", "c")],
    )
    assert groups(result) == {frozenset("ab"), frozenset("c")}


def test_the_result_does_not_depend_on_the_order_of_the_input():
    rng = np.random.default_rng(3)
    ids = [f"r{i:03d}" for i in range(200)]
    left = rng.integers(0, 200, 600)
    right = rng.integers(0, 200, 600)
    keep = left != right
    pairs = pd.DataFrame(
        {
            "record_l": [ids[i] for i in left[keep]],
            "record_r": [ids[i] for i in right[keep]],
            # coarse probabilities make many ties, which the record ids must break
            "match_probability": rng.choice([0.5, 0.96, 0.99], keep.sum()),
        }
    )
    different = [(ids[i], ids[i + 1]) for i in range(0, 200, 7)]
    first = cluster_records(ids, pairs, threshold=0.95, different=different)
    shuffled = pairs.sample(frac=1, random_state=11)
    swapped = shuffled.rename(columns={"record_l": "record_r", "record_r": "record_l"})
    second = cluster_records(
        list(reversed(ids)), swapped, threshold=0.95, different=[(b, a) for a, b in different]
    )
    assert (
        first.sort_values("record_id")
        .reset_index(drop=True)
        .equals(second.sort_values("record_id").reset_index(drop=True))
    )
    labels = first.set_index("record_id")["cluster_id"]
    for a, b in different:
        assert labels[a] != labels[b]


def test_unknown_records_and_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="'zz'"):
        cluster_records(["a", "b"], scored(("a", "zz", 0.99)), threshold=0.9)
    with pytest.raises(ValueError, match="'q'"):
        cluster_records(["a", "b"], scored(), threshold=0.9, different=[("a", "q")])
    with pytest.raises(ValueError, match="unique"):
        cluster_records(["a", "a"], scored(), threshold=0.9)


def test_no_records_gives_no_clusters():
    assert cluster_records([], scored(), threshold=0.9).empty


def test_a_million_records_and_two_million_pairs_cluster_in_seconds():
    rng = np.random.default_rng(5)
    n = 1_000_000
    ids = np.char.add("r", np.arange(n).astype(str)).astype(object)
    left = rng.integers(0, n, 2_000_000)
    right = np.minimum(left + rng.integers(1, 4, 2_000_000), n - 1)
    pairs = pd.DataFrame(
        {
            "record_l": ids[left],
            "record_r": ids[right],
            "match_probability": rng.random(2_000_000),
        }
    )
    different = [(ids[i], ids[i + 1]) for i in range(0, n - 1, 1000)]
    started = time.perf_counter()
    result = cluster_records(ids, pairs, threshold=0.6, different=different)
    seconds = time.perf_counter() - started
    assert len(result) == n
    labels = dict(zip(result["record_id"], result["cluster_id"], strict=True))
    assert all(labels[a] != labels[b] for a, b in different)
    assert seconds < 30, f"took {seconds:.1f}s"
