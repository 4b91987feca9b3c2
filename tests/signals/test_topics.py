"""Hot issues: clustering real messages and posts, labels, identity across windows, heat."""

from __future__ import annotations

import csv
import gzip
import random
from collections import Counter

import pytest

from civicpulse.signals.topics import (
    Cluster,
    Figures,
    cluster,
    heat,
    label,
    match,
    rank,
    same_issue,
    signature,
)
from civicpulse.text.tokenize import tokens
from tests.support import shared_data

TIPDM = "zh/tipdm2020_gov_messages_hot_topics_4326.csv.gz"
WEIBO = "zh/covid19_weibo_unlabeled_daily_2020.csv.gz"
# Two complaints that many citizens sent in their own words: a concrete plant by the 丽发新城
# estate, and the 伊景园滨河苑 developer selling flats only with a parking space.
GROUPS = ("丽发新城", "滨河苑")


def _tipdm_rows() -> list[dict]:
    with gzip.open(shared_data(TIPDM), "rt", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _message_tokens(row: dict) -> list[str]:
    """The subject twice and the details: the subject names the place and the problem."""
    subject = tokens(row["留言主题"], "zh")
    return subject * 2 + tokens(row["留言详情"], "zh")


@pytest.fixture(scope="module")
def board():
    """Every message whose subject names one of GROUPS, among 500 other messages that do not
    mention them: (docs, subjects, group of each message or None)."""
    rows = _tipdm_rows()
    grouped = [r for r in rows if any(g in r["留言主题"] for g in GROUPS)]
    others = [r for r in rows if not any(g in r["留言主题"] + r["留言详情"] for g in GROUPS)]
    picked = grouped + random.Random(7).sample(others, 500)
    random.Random(8).shuffle(picked)
    group_of = [next((g for g in GROUPS if g in r["留言主题"]), None) for r in picked]
    return [_message_tokens(r) for r in picked], [r["留言主题"] for r in picked], group_of


@pytest.fixture(scope="module")
def weibo():
    """The file's first 3,500 posts (19-21 January 2020): (docs, texts)."""
    texts = []
    with gzip.open(shared_data(WEIBO), "rt", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            if len(texts) == 3_500:
                break
    return [tokens(t, "zh") for t in texts], texts


def _holder(clusters: list[Cluster], members: set[int]) -> tuple[int, int]:
    """The cluster holding most of ``members``: (its index, how many it holds)."""
    held = [len(members & set(c.members)) for c in clusters]
    best = max(range(len(clusters)), key=held.__getitem__)
    return best, held[best]


# ------------------------------------------------------------------------------ real data


@pytest.mark.shared_data
def test_known_complaints_cluster_together(board):
    docs, _subjects, group_of = board
    clusters = cluster(docs)
    holders = []
    for g in GROUPS:
        members = {i for i, x in enumerate(group_of) if x == g}
        best, held = _holder(clusters, members)
        # most of them (a few name the estate for other problems: its roads, its water)
        assert held >= 0.5 * len(members), (g, held, len(members), clusters[best].label)
        # and the issue is that complaint, not a catch-all
        issue = clusters[best]
        assert sum(group_of[i] == g for i in issue.members) >= 0.8 * issue.size, issue.label
        holders.append(best)
    assert holders[0] != holders[1]


@pytest.mark.shared_data
def test_unrelated_messages_form_no_giant_cluster():
    rows = random.Random(11).sample(_tipdm_rows(), 800)
    clusters = cluster([_message_tokens(r) for r in rows])
    assert clusters, "800 real messages hold some repeated complaint"
    assert max(c.size for c in clusters) <= 0.05 * len(rows)
    assert sum(c.size for c in clusters) <= 0.5 * len(rows)
    assert all(c.cohesion >= 0.4 for c in clusters)


@pytest.mark.shared_data
def test_reposts_collapse_into_one_issue(weibo):
    docs, texts = weibo
    clusters = cluster(docs)
    issue_of = {i: k for k, c in enumerate(clusters) for i in c.members}
    copies: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        copies.setdefault(t, []).append(i)
    reposted = [ids for ids in copies.values() if len(ids) >= 3 and docs[ids[0]]]
    assert len(reposted) >= 10
    for ids in reposted:
        assert len({issue_of.get(i) for i in ids}) == 1, texts[ids[0]][:60]
        assert issue_of.get(ids[0]) is not None, texts[ids[0]][:60]


@pytest.mark.shared_data
def test_peeled_window_agrees_with_the_exact_one(weibo):
    docs, _texts = weibo
    exact = cluster(docs)  # 3,500 posts: compared pair by pair
    peeled = cluster(docs, peel_sample=600)  # sampled, and the rest joins by centroid
    assert len(exact) >= 5 and len(peeled) >= 5
    # the same hot issues: most of each top issue of one run sits in one issue of the other
    # (posts carrying two trending hashtags at once may fall to either of their issues)
    for one, other in ((exact, peeled), (peeled, exact)):
        for c in one[:5]:
            best, held = _holder(other, set(c.members))
            assert held >= 0.5 * c.size, (c.label, other[best].label, held, c.size)
    covered = [sum(c.size for c in run) for run in (exact, peeled)]
    assert abs(covered[0] - covered[1]) <= 0.1 * covered[0]


@pytest.mark.shared_data
def test_label_terms_are_distinctive(board):
    docs, _subjects, _group_of = board
    for c in [c for c in cluster(docs) if c.size >= 5]:
        inside = set(c.members)
        for term, _weight in c.terms[:3]:
            holding = {i for i, d in enumerate(docs) if term in d}
            share_in = len(holding & inside) / len(inside)
            share_out = len(holding - inside) / (len(docs) - len(inside))
            assert share_in >= 0.3, (c.label, term, share_in)
            assert share_in >= 3 * share_out, (c.label, term, share_in, share_out)
        assert c.label and all(t in dict(c.terms) for t in c.label.split(" · "))
        assert c.center in inside


@pytest.mark.shared_data
def test_match_keeps_identity_across_two_windows(board):
    docs, _subjects, group_of = board
    first = cluster(docs[0::2])
    second = cluster(docs[1::2])
    found = match(second, {k: c.terms for k, c in enumerate(first)})
    kept = [v for v in found.values() if v is not None]
    assert len(kept) == len(set(kept)), "one to one"
    for g in GROUPS:
        a, _ = _holder(first, {i for i, x in enumerate(group_of[0::2]) if x == g})
        b, _ = _holder(second, {i for i, x in enumerate(group_of[1::2]) if x == g})
        assert found[b] == a, g
    # a window against itself: every issue is its own continuation
    assert match(first, {k: c.terms for k, c in enumerate(first)}) == {
        k: k for k in range(len(first))
    }


# ------------------------------------------------------------------------------ identity


def test_match_gives_an_issue_to_one_cluster_only():
    existing = {7: [("搅拌站", 3.0), ("丽发", 2.0), ("噪音", 1.0)]}
    near = [("搅拌站", 3.0), ("丽发", 2.0), ("扰民", 1.0)]
    nearer = [("搅拌站", 3.0), ("丽发", 2.0), ("噪音", 1.0)]
    assert match([near, nearer], existing) == {0: None, 1: 7}
    assert match([near], existing, min_overlap=0.9) == {0: None}
    assert match([], existing) == {}
    with pytest.raises(ValueError, match="min_overlap"):
        match([near], existing, min_overlap=0)


def test_signature_and_overlap():
    a = [("车位", 2.0), ("捆绑", 1.5), ("滨河", 1.0)]
    assert signature(a) == signature(list(reversed(a))) == "捆绑|滨河|车位"
    assert same_issue(a, a) == pytest.approx(1.0)
    assert same_issue(a, [("口罩", 1.0)]) == 0.0
    b = [("车位", 1.0), ("捆绑", 1.0), ("销售", 1.0)]
    assert same_issue(a, b) == pytest.approx(same_issue(b, a))
    assert 0.0 < same_issue(a, b) < 1.0
    assert same_issue([], a) == 0.0


def test_label_skips_short_and_contained_terms():
    terms = [("伊景园滨河苑", 3.0), ("滨河苑", 2.5), ("车", 2.0), ("车位", 1.5), ("捆绑", 1.0)]
    assert label(terms, 3) == "伊景园滨河苑 · 车位 · 捆绑"


# ------------------------------------------------------------------------------ heat


def test_heat_rises_with_growth_reach_size_and_negative_share():
    base = Figures(size=40, previous=20, reach=300, negative=0.2)
    previous = [heat(Figures(40, p, 300, 0.2)) for p in (40, 20, 10, 0)]
    assert previous == sorted(previous) and len(set(previous)) == 4
    reach = [heat(Figures(40, 20, r, 0.2)) for r in (0, 10, 300, 10_000)]
    assert reach == sorted(reach) and len(set(reach)) == 4
    size = [heat(Figures(s, 20, 300, 0.2)) for s in (0, 5, 40, 400)]
    assert size == sorted(size) and len(set(size)) == 4
    assert heat(Figures(40, 20, 300, 0.9)) > heat(base) > heat(Figures(40, 20, 300, 0.0))


def test_rank_orders_hottest_first():
    figures = [Figures(10, 10), Figures(10, 0), Figures(200, 100, 5_000, 0.5)]
    ranked = rank(figures)
    assert [i for i, _h in ranked] == [2, 1, 0]
    assert ranked[0][1] == pytest.approx(heat(figures[2]))
    assert rank([]) == []


@pytest.mark.parametrize(
    "figures, field",
    [
        (Figures(size=-1), "size"),
        (Figures(size=3, previous=-2), "previous"),
        (Figures(size=3, reach=float("nan")), "reach"),
        (Figures(size=3, negative=1.5), "negative"),
    ],
)
def test_heat_names_the_bad_figure(figures, field):
    with pytest.raises(ValueError, match=field):
        heat(figures)


# ------------------------------------------------------------------------------ edges


def test_empty_window():
    assert cluster([]) == []
    assert cluster([[], []]) == []


def test_identical_documents_are_one_issue():
    doc = tokens("丽发新城小区附近搅拌站噪音扰民", "zh")
    clusters = cluster([list(doc) for _ in range(5)])
    assert len(clusters) == 1
    (only,) = clusters
    assert only.members == [0, 1, 2, 3, 4]
    assert only.cohesion == pytest.approx(1.0)
    assert only.label and only.terms


def test_a_single_document():
    doc = tokens("丽发新城小区附近搅拌站噪音扰民", "zh")
    assert cluster([doc]) == []
    (only,) = cluster([doc], min_size=1)
    assert only.members == [0] and only.center == 0


def test_min_size_one_keeps_every_post():
    docs = [["路灯", "不亮"], ["暖气", "不热"], ["路灯", "不亮"], []]
    clusters = cluster(docs, min_size=1)
    assert sorted(m for c in clusters for m in c.members) == [0, 1, 2]
    assert Counter(c.size for c in clusters) == {2: 1, 1: 1}


@pytest.mark.parametrize(
    "docs, kwargs, error, words",
    [
        (["路灯不亮"], {}, TypeError, "docs\\[0\\] is a str"),
        ([["路灯", 3]], {}, TypeError, "tokens must be str"),
        ([["路灯"]], {"threshold": 1.5}, ValueError, "threshold"),
        ([["路灯"]], {"min_size": 0}, ValueError, "min_size"),
        ([["路灯"]], {"max_docs": 1}, ValueError, "max_docs"),
        ([["路灯"]], {"n_terms": 0}, ValueError, "n_terms"),
    ],
)
def test_bad_input_is_named(docs, kwargs, error, words):
    with pytest.raises(error, match=words):
        cluster(docs, **kwargs)
