"""The text classifier: training, confidences, files, and accuracy on real labelled data."""

from __future__ import annotations

import csv

import joblib
import numpy as np
import pytest

from civicpulse.text.classify import FORMAT, ModelFileError, TextClassifier
from tests.support import shared_data

TRAIN = [
    ("小区暖气不热，室温只有十四度", "heating"),
    ("家里暖气片冰凉，供热公司不管", "heating"),
    ("暖气管道漏水，楼道全是水汽", "heating"),
    ("开栓好几天了暖气还是凉的", "heating"),
    ("路灯不亮，晚上一片漆黑", "streetlight"),
    ("门前路灯坏了好几盏", "streetlight"),
    ("路灯杆倾斜，担心倒下", "streetlight"),
    ("路灯白天一直亮着浪费电", "streetlight"),
    ("Street light out at the corner", "streetlight"),
    ("Streetlight flickering all night on Main St", "streetlight"),
    ("No heat in the apartment since Monday", "heating"),
    ("Radiator cold, landlord provides no heat", "heating"),
    ("楼上装修电钻声音太大", "noise"),
    ("夜间施工噪声扰民，影响休息", "noise"),
    ("广场舞音响声音很大", "noise"),
    ("Loud music from the bar every night", "noise"),
]


@pytest.fixture(scope="module")
def trained() -> TextClassifier:
    texts, labels = zip(*TRAIN, strict=True)
    return TextClassifier().fit(texts, labels)


def test_predicts_labels_with_confidence_in_unit_range(trained):
    got = trained.predict(["我家暖气不热", "the street light is out again", "工地夜间施工太吵"])
    assert [label for label, _ in got] == ["heating", "streetlight", "noise"]
    assert all(0.0 <= conf <= 1.0 for _, conf in got)
    assert trained.classes == ["heating", "noise", "streetlight"]


def test_unknown_text_has_zero_confidence(trained):
    [(_, conf)] = trained.predict(["qwxz zzyv"])
    assert conf == 0.0
    assert trained.predict([""])[0][1] == 0.0


def test_top_k_is_ranked_and_sums_to_at_most_one(trained):
    [top] = trained.predict_top(["路灯不亮"], k=5)
    assert len(top) == 3  # no more than the classes there are
    confs = [c for _, c in top]
    assert confs == sorted(confs, reverse=True)
    assert top[0][0] == "streetlight"
    assert sum(confs) == pytest.approx(1.0)


def test_fast_scoring_matches_sklearn(trained):
    texts = ["暖气不热", "street light out", "噪声", "qwxz"]
    docs = trained.analyse_all(texts)
    ours = trained.probabilities_analysed(docs)
    theirs = trained.model.predict_proba(trained.vectorizer.transform(docs))
    known = np.array([True, True, True, False])
    np.testing.assert_allclose(ours[known], theirs[known], atol=1e-6)
    assert (ours[~known] == 0).all()
    for i, doc in enumerate(docs):  # one text at a time takes a path of its own
        np.testing.assert_allclose(trained.probabilities_analysed([doc])[0], ours[i], atol=1e-9)


def test_two_classes_work_too():
    clf = TextClassifier().fit(["暖气不热", "暖气冰凉", "路灯不亮", "路灯坏了"], list("hhss"))
    docs = clf.analyse_all(["暖气", "路灯"])
    np.testing.assert_allclose(
        clf.probabilities_analysed(docs),
        clf.model.predict_proba(clf.vectorizer.transform(docs)),
        atol=1e-6,
    )
    assert [label for label, _ in clf.predict(["暖气", "路灯"])] == ["h", "s"]


def test_sample_weight_decides_between_conflicting_labels():
    texts = ["咕噜噗嗤来了"] * 4 + ["暖气不热", "路灯不亮"]
    labels = ["noise", "noise", "noise", "pets", "heating", "pets"]
    plain = TextClassifier().fit(texts, labels)
    assert plain.predict(["咕噜噗嗤"])[0][0] == "noise"
    weights = [1, 1, 1, 10, 1, 1]
    weighted = TextClassifier().fit(texts, labels, sample_weight=weights)
    assert weighted.predict(["咕噜噗嗤"])[0][0] == "pets"


def test_refuses_too_little_to_learn():
    with pytest.raises(ValueError, match="two different labels"):
        TextClassifier().fit(["a b", "c d"], ["x", "x"])
    with pytest.raises(RuntimeError, match="not trained"):
        TextClassifier().predict(["a"])


def test_save_and_load_round_trip(trained, tmp_path):
    path = trained.save(tmp_path / "models" / "m.joblib")
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    loaded = TextClassifier.load(path)
    texts = ["暖气不热", "street light", "广场舞"]
    assert loaded.predict(texts) == trained.predict(texts)
    assert loaded.hmm == trained.hmm and loaded.meta == trained.meta


def test_load_refuses_other_formats(trained, tmp_path):
    path = trained.save(tmp_path / "m.joblib")
    bundle = joblib.load(path)
    bundle["format"] = FORMAT + 1
    joblib.dump(bundle, path)
    with pytest.raises(ModelFileError, match="format"):
        TextClassifier.load(path)
    joblib.dump({"something": "else"}, path)
    with pytest.raises(ModelFileError, match="not a"):
        TextClassifier.load(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="cannot read"):
        TextClassifier.load(path)


def _read(path, columns):
    with path.open(encoding="utf-8", newline="") as fh:
        return [[row[c] or "" for c in columns] for row in csv.DictReader(fh)]


def _cross_validated(texts, labels, folds=3):
    """Mean top-1 accuracy over stratified folds, and the majority baseline on the same
    folds."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, dtype=object)
    accuracy, baseline = [], []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels):
        clf = TextClassifier().fit([texts[i] for i in train], labels[train])
        predicted = np.array([p for p, _ in clf.predict([texts[i] for i in test])], dtype=object)
        accuracy.append(np.mean(predicted == labels[test]))
        values, counts = np.unique(labels[train], return_counts=True)
        baseline.append(np.mean(labels[test] == values[counts.argmax()]))
    return float(np.mean(accuracy)), float(np.mean(baseline))


@pytest.mark.shared_data
def test_real_chinese_headlines_well_above_baseline():
    """THUCNews headlines (real, labelled, 10 topics). The TipDM 2020 government messages the
    issue names carry no 一级分类 column in ../shared/data, so they cannot score a classifier;
    these are the labelled Chinese texts we have. 300 per topic, 3-fold CV: about 0.74
    against a baseline of 0.10 when this was written."""
    rows = _read(shared_data("zh/thucnews_headlines_dev.csv"), ["title", "label"])
    per_label: dict[str, list[str]] = {}
    for title, label in rows:
        if len(per_label.setdefault(label, [])) < 300:
            per_label[label].append(title)
    texts = [t for titles in per_label.values() for t in titles]
    labels = [label for label, titles in per_label.items() for _ in titles]
    accuracy, baseline = _cross_validated(texts, labels)
    assert baseline == pytest.approx(0.1, abs=0.01)
    assert accuracy > baseline + 0.5


@pytest.mark.shared_data
def test_real_311_agency_from_the_request_type():
    """NYC 311 requests (two files, a dozen agencies): the agency from the complaint
    type and descriptor the caller chose (these nearly name the agency: the easy setting)."""
    texts, labels = [], []
    for name in ("nyc_311_2011_tuplex_subset.csv", "nyc_311_qsv_100.csv"):
        for agency, kind, descriptor in _read(
            shared_data(f"311/{name}"), ["Agency", "Complaint Type", "Descriptor"]
        ):
            texts.append(f"{kind} {descriptor}")
            labels.append(agency)
    counts = {label: labels.count(label) for label in set(labels)}
    keep = [i for i, label in enumerate(labels) if counts[label] >= 3]
    accuracy, baseline = _cross_validated([texts[i] for i in keep], [labels[i] for i in keep])
    assert accuracy > 0.95 and accuracy > baseline + 0.5


def test_a_text_with_no_known_feature_gets_the_commonest_class(trained):
    # the training set has 6 heating, 6 street light, 4 noise texts
    [(label, conf)] = trained.predict(["qwxz"])
    assert conf == 0.0 and label in ("heating", "streetlight")
    [top] = trained.predict_top(["qwxz"], k=3)
    assert top[-1] == ("noise", 0.0)
