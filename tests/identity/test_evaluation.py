"""Precision, recall and F1 of the linker on the labelled benchmark files, and the metrics
themselves checked by hand and against a brute-force pair count."""

from __future__ import annotations

import itertools
import random

import pandas as pd
import pytest

from civicpulse.identity import evaluation, linking
from tests.support import shared_data


def frame_of(assignment: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"record_id": list(assignment), "cluster_id": list(assignment.values())})


def brute_force(predicted: pd.DataFrame, truth: pd.DataFrame) -> dict:
    def pairs(frame):
        return {
            tuple(sorted(p))
            for _, group in frame.groupby("cluster_id")
            for p in itertools.combinations(group["record_id"], 2)
        }

    p, t = pairs(predicted), pairs(truth)
    return {"true_pairs": len(t), "predicted_pairs": len(p), "correct_pairs": len(p & t)}


def test_scores_on_a_hand_made_example():
    predicted = frame_of({"a": "1", "b": "1", "c": "1", "d": "2"})
    truth = frame_of({"a": "x", "b": "x", "c": "y", "d": "y"})
    counts = evaluation.pair_counts(predicted, truth)
    # predicted ab ac bc; true ab cd; correct ab
    assert counts == {"true_pairs": 2, "predicted_pairs": 3, "correct_pairs": 1}
    s = evaluation.scores(counts)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 2)
    assert s["f1"] == pytest.approx(0.4)


def test_scores_of_nothing_found_are_zero_not_an_error():
    singletons = frame_of({"a": "1", "b": "2"})
    truth = frame_of({"a": "x", "b": "x"})
    assert evaluation.scores(evaluation.pair_counts(singletons, truth)) == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
    }


def test_pair_counts_agree_with_listing_every_pair():
    rng = random.Random(4)
    for _ in range(20):
        ids = [f"r{i}" for i in range(rng.randrange(2, 80))]
        predicted = frame_of({r: str(rng.randrange(0, 15)) for r in ids})
        truth = frame_of({r: str(rng.randrange(0, 10)) for r in ids})
        assert evaluation.pair_counts(predicted, truth) == brute_force(predicted, truth)


def test_pair_counts_refuse_different_records():
    with pytest.raises(ValueError, match="same records"):
        evaluation.pair_counts(frame_of({"a": "1"}), frame_of({"a": "1", "b": "1"}))


def test_connected_components_join_chains():
    clusters = evaluation.clusters_from_pairs("abcde", [("a", "b"), ("c", "b"), ("d", "e")])
    got = dict(zip(clusters["record_id"], clusters["cluster_id"], strict=True))
    assert got == {"a": "a", "b": "a", "c": "a", "d": "d", "e": "d"}


@pytest.fixture(scope="module")
def results():
    shared_data("er/dedupe_chicago_early_childhood_messy.csv")
    shared_data("er/splink_fake_1000_labels.csv")
    return {name: evaluation.evaluate(name) for name in evaluation.DATASETS}


@pytest.mark.shared_data
def test_fake_1000_labels_agree_with_its_cluster_column():
    people = pd.read_csv(shared_data("er/splink_fake_1000.csv"), dtype=str)
    _, truth = evaluation.fake_1000_frame()
    given = frame_of(dict(zip(people["unique_id"], people["cluster"], strict=True)))
    assert evaluation.pair_counts(truth, given)["correct_pairs"] == 2031
    assert brute_force(truth, given) == {
        "true_pairs": 2031,
        "predicted_pairs": 2031,
        "correct_pairs": 2031,
    }


@pytest.mark.shared_data
def test_chicago_truth_covers_every_row():
    frame, truth = evaluation.chicago_frame()
    assert len(frame) == len(truth) == 3337
    assert truth["cluster_id"].nunique() == 1162
    assert set(frame["record_id"]) == set(truth["record_id"])


@pytest.mark.shared_data
def test_chicago_early_childhood_floors(results):
    r = results["chicago_early_childhood"]
    assert r["threshold"] == linking.DEFAULT_THRESHOLDS["link"]
    # measured: precision 0.866, recall 0.908, F1 0.887 with 7,533 pairs scored
    assert r["precision"] >= 0.83
    assert r["recall"] >= 0.87
    assert r["f1"] >= 0.85
    assert r["comparisons"] < 20_000  # of 5.6 million possible pairs


@pytest.mark.shared_data
def test_splink_fake_1000_floors(results):
    r = results["splink_fake_1000"]
    # measured: precision 1.000, recall 0.775, F1 0.873
    assert r["precision"] >= 0.97
    assert r["recall"] >= 0.73
    assert r["f1"] >= 0.84


@pytest.mark.shared_data
def test_the_sweep_trades_recall_for_precision(results):
    for r in results.values():
        thresholds = [s["threshold"] for s in r["sweep"]]
        assert thresholds == sorted(thresholds) and r["threshold"] in thresholds
        recalls = [s["recall"] for s in r["sweep"]]
        # a higher threshold keeps a subset of the links, so it can only lose true pairs
        assert recalls == sorted(recalls, reverse=True)
        assert r["sweep"][0]["recall"] > r["sweep"][-1]["recall"]
        at = next(s for s in r["sweep"] if s["threshold"] == r["threshold"])
        # re-clustering the scored pairs gives what Splink's clustering gave
        assert (at["precision"], at["recall"]) == (r["precision"], r["recall"])


@pytest.mark.shared_data
def test_write_report_rewrites_only_its_section(tmp_path, results):
    doc = tmp_path / "identity.md"
    doc.write_text(
        f"# Identity\n\nbefore\n\n{evaluation.BEGIN}\nold figures\n{evaluation.END}\n\nafter\n",
        encoding="utf-8",
    )
    evaluation.write_report(doc, results=list(results.values()))
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Identity\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old figures" not in text
    chicago = results["chicago_early_childhood"]
    assert f"| {chicago['f1']:.3f} |" in text
    assert text.count(evaluation.BEGIN) == 1
    # written twice, the same document
    evaluation.write_report(doc, results=list(results.values()))
    assert doc.read_text(encoding="utf-8") == text


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        evaluation.evaluate("census")
