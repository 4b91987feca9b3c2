"""Language guess and word tokens for Chinese (jieba, precise mode) and English.

Plain Python, no Django. jieba builds its prefix dictionary on first use (about 1.4 s, cached
in the temp dir), so the tokenizer is initialised lazily, once per process, and shared: a
city's own place and department names registered with :func:`add_words` are kept whole by
every caller in the process.

Normalisation before tokenizing: NFKC (full-width letters, digits and punctuation become their
ASCII forms), lower case, URLs become the token ``<url>``, numbers the token ``<num>``.
Punctuation, white space and stop words are dropped; negations (不, 没, not, no) are kept
because they carry meaning for routing ("路灯不亮").
"""

from __future__ import annotations

import html
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence

URL = "<url>"
NUM = "<num>"

# CJK Unified Ideographs, extension A and the compatibility block.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z\uff21-\uff3a\uff41-\uff5a]")  # with the full-width forms
_URL = re.compile(r"(?:https?://|www\.)[^\s\u3000-\u303f\u4e00-\u9fff\uff01-\uff5e]+", re.I)
_NUMBER = re.compile(r"^[+-]?\d+(?:[.,:/]\d+)*%?$")
_EN_WORD = re.compile(
    r"[a-z][a-z0-9]*(?:'[a-z]+)?|\d+(?:[.,:/]\d+)*[a-z]*|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+"
)
# A token worth keeping holds a letter, a digit or a CJK character.
_WORDLIKE = re.compile(r"[0-9a-z\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# A CJK share of letters at or above this makes a text Chinese. A Chinese character carries
# about as much as a short English word, so a mostly Chinese text with an English brand name
# in it is still Chinese.
ZH_SHARE = 0.2

# Function words only: "out", "off", "no", "not", "down" stay ("street light out").
EN_STOP_WORDS = frozenset(
    """a about after all also am an and any are as at be been before being both but by can
    could did do does doing during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself
    of on once only or other our ours ourselves own same she should so some such than that the
    their theirs them themselves then there these they this those through to too until very
    was we were what when where which while who whom why will with would you your yours
    yourself yourselves""".split()
)

ZH_STOP_WORDS = frozenset(
    """的 了 是 在 和 与 及 或 也 就 都 而 着 吧 吗 呢 啊 呀 哦 嗯 之 其 这 那 这个 那个 这些
    那些 我 你 他 她 它 我们 你们 他们 她们 您 自己 一个 一些 有些 把 被 让 给 对 向 从 于 以
    为 为了 因为 所以 但是 但 如果 已经 还 又 再 很 非常 比较 就是 并 并且 而且 以及 等 等等
    啦 么 什么 怎么 如何 哪里 请问 谢谢 您好 你好 尊敬 领导""".split()
)

_lock = threading.Lock()
_jieba = None  # the process's jieba tokenizer, once initialised
_pending: set[str] = set()  # words registered before jieba was loaded


def _tokenizer():
    """jieba's default tokenizer, initialised on first use (once per process)."""
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.dt.initialize()
                for word in sorted(_pending):
                    jieba.dt.add_word(word)
                _pending.clear()
                _jieba = jieba.dt
    return _jieba


def add_words(words: Iterable[str]) -> int:
    """Register a city's own words (area, road and department names) so jieba keeps them
    whole. Words given before jieba is loaded are applied when it loads; returns how many
    words were new to this process."""
    cleaned = {normalize(w).strip() for w in words}
    cleaned = {w for w in cleaned if w and not w.isspace()}
    with _lock:
        if _jieba is None:
            before = len(_pending)
            _pending.update(cleaned)
            return len(_pending) - before
    new = 0
    for word in sorted(cleaned):
        if _jieba.FREQ.get(word, 0) <= 0:
            new += 1
        _jieba.add_word(word)
    return new


def normalize(text: str) -> str:
    """NFKC (full-width forms to ASCII), lower case, HTML entities (``&amp;``) decoded."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if "&" in text:
        text = html.unescape(text)
    return text.lower()


# Characters that make most Chinese posts fail NFKC's quick check (full-width punctuation and
# the ellipsis), with their NFKC forms.
_FULL_WIDTH = tuple((ch, unicodedata.normalize("NFKC", ch)) for ch in "，！？：；（）～＃＠…\u3000")


def normalize_quick(text: str) -> str:
    """The same string as :func:`normalize`, about three times faster on Chinese posts: they
    fail NFKC's quick check for a few full-width punctuation marks, and so take its slow path.
    Those are replaced by their NFKC forms first (the NFKC of the whole is unchanged), and
    NFKC runs only if the text still needs it."""
    if not text.isascii() and not unicodedata.is_normalized("NFKC", text):
        for wide, narrow in _FULL_WIDTH:
            if wide in text:
                text = text.replace(wide, narrow)
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
    if "&" in text:
        text = html.unescape(text)
    return text.lower()


def normalize_joined(texts: Sequence[str]) -> str:
    """:func:`normalize` of every text, joined by NUL (a NUL inside a text becomes a space):
    the batch form for code that scores many posts with numpy.

    NFKC's slow path runs on any string that fails its quick check, and nearly every Chinese
    post does, for its full-width punctuation. Folding the full-width ASCII forms and the
    ideographic space first (their NFKC forms, so the result is the same) leaves a few posts
    in a hundred to normalise one by one (those with an ellipsis, a circled number, ...)."""
    joined = "\x00".join(texts)
    if "\x00" in joined and joined.count("\x00") != len(texts) - 1:
        joined = "\x00".join(t.replace("\x00", " ") for t in texts)
    if not joined.isascii():
        import numpy as np

        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).copy()
        wide = (codes >= 0xFF01) & (codes <= 0xFF5E)
        codes[wide] -= 0xFEE0
        codes[codes == 0x3000] = 0x20
        joined = codes.tobytes().decode("utf-32-le")
        if not unicodedata.is_normalized("NFKC", joined):
            joined = "\x00".join(
                part
                if unicodedata.is_normalized("NFKC", part)
                else unicodedata.normalize("NFKC", part)
                for part in joined.split("\x00")
            )
    if "&" in joined:
        joined = html.unescape(joined)
    return joined.lower()


def guess_language(text: str) -> str:
    """``"zh"`` when CJK characters make up at least ``ZH_SHARE`` of the letters, else
    ``"en"`` (also for a text with no letters at all)."""
    if text.isascii():
        return "en"
    cjk = len(_CJK.findall(text))
    if not cjk:
        return "en"
    latin = len(_LATIN.findall(text))
    return "zh" if cjk / (cjk + latin) >= ZH_SHARE else "en"


def _zh_tokens(text: str, hmm: bool) -> list[str]:
    out: list[str] = []
    append = out.append
    for token in _tokenizer().lcut(text, HMM=hmm):
        if token in ZH_STOP_WORDS or token in EN_STOP_WORDS or not _WORDLIKE.search(token):
            continue
        if token[0].isdigit() and _NUMBER.match(token):
            append(NUM)
        elif token.isascii() and len(token) == 1:
            continue  # a stray letter
        else:
            append(token)
    return out


def _en_tokens(text: str) -> list[str]:
    out: list[str] = []
    append = out.append
    for token in _EN_WORD.findall(text):
        if token[0].isdigit():
            append(NUM)
        elif len(token) > 1 and token not in EN_STOP_WORDS:
            append(token[:-2] if token.endswith("'s") else token)
    return out


def tokens(
    text: str, lang: str | None = None, *, hmm: bool = True, normalized: bool = False
) -> list[str]:
    """The words of ``text``: jieba's precise mode for Chinese (``hmm`` lets jieba guess words
    missing from its dictionary), words of letters for English; normalised as the module says
    (pass ``normalized=True`` for a text already through :func:`normalize`). ``lang`` is
    guessed when not given."""
    if not text:
        return []
    lang = lang or guess_language(text)
    if not normalized:
        text = normalize(text)
    urls = 0
    if "http" in text or "www." in text:
        text, urls = _URL.subn(" ", text)
    if lang == "zh":
        words = _zh_tokens(text, hmm)
    else:
        words = _en_tokens(text)
    return [*words, *([URL] * urls)] if urls else words
