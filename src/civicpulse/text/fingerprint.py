"""Exact and near-duplicate texts: a content hash, a 64-bit SimHash, and an index that finds a
stored fingerprint within a few bits of a new one.

Plain Python, no Django. Reposts of one post differ in what the reposter adds around it: the
repost chain (``//@someone:``), ``转发微博``, a link, a hashtag, changed punctuation or white
space. The *canonical* form of a text leaves all of that out: NFKC, lower case; links,
@handles, #hashtags# and the repost boilerplate removed; then only letters, digits and CJK
characters kept (a single space between Latin words). Two texts with the same canonical form
have the same :func:`content_hash`; a text whose canonical form would be empty (a post that is
only a hashtag or a link) keeps its hashtags, then its punctuation, so it is not made equal to
every other such post.

The SimHash sums, bit by bit, the 64-bit hashes of the canonical form's distinct character
shingles (``SHINGLE`` characters; the whole text when shorter; each counted once, so a post of
哈哈哈哈哈 is not mostly 哈哈哈) and keeps the sign of each sum: texts that share most shingles
differ in few bits. It is returned as a signed int64 so that it fits
a Parquet int64 column. A whole batch is fingerprinted with numpy, without a Python loop per
text.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Sequence

import numpy as np

from civicpulse.text.tokenize import normalize_joined

SHINGLE = 3  # characters per shingle; measured in docs/sentiment.md (near-duplicates)
MASK = (1 << 64) - 1

_URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_MENTION = re.compile(r"@[\w\-]{1,30}(?:\s*:)?")  # "//" around a repost chain is punctuation
_HASHTAG = re.compile(r"#[^#\x00\n]{1,60}#|#\w+")  # Weibo's #topic# and Twitter's #word
# Each branch starts with a literal, so the regex engine scans for those first characters.
_BOILERPLATE = re.compile(
    r"转发微博|轉發微博|网页链接|展开全文|收起全文|回复(?=@)|r(?<![a-z]r)t(?=\s*@)"
)
_CJK_FROM = 0x2E80  # code points from here on (CJK radicals up) are written without spaces


# ------------------------------------------------------------------------------ canonical form


def _junk_table() -> np.ndarray:
    """For each code point of the basic plane: is it punctuation, white space or a symbol?
    ASCII other than letters and digits, the Latin-1 signs, the punctuation and symbol
    blocks, private use and specials (a lookup, so the batch costs one indexing)."""
    junk = np.zeros(0x10000, dtype=bool)
    junk[:0x80] = True
    junk[0x30:0x3A] = junk[0x61:0x7B] = False  # digits, lower-case letters
    junk[0] = False  # the separator between texts
    junk[0x80:0xC0] = junk[0xD7] = junk[0xF7] = True
    junk[0x2000:0x2C00] = True  # punctuation, symbols, arrows, shapes, dingbats
    junk[0x2E00:0x2E80] = True  # supplemental punctuation
    junk[0x3000:0x3040] = True  # CJK punctuation ...
    junk[0x3005] = junk[0x3007] = False  # ... but 々 and 〇 are written as characters
    junk[0xE000:0xF900] = True  # private use
    junk[0xFE00:0xFE70] = True  # variation selectors, vertical, small and CJK forms
    junk[0xFF00:0xFF10] = junk[0xFF1A:0xFF21] = junk[0xFF3B:0xFF41] = True
    junk[0xFF5B:0xFF66] = junk[0xFFF0:] = True
    return junk


_JUNK = _junk_table()


def _not_wordlike(codes: np.ndarray) -> np.ndarray:
    outside = codes > 0xFFFF
    junk = _JUNK[np.where(outside, 0, codes)]
    if outside.any():  # emoji and other pictographs
        junk |= outside & (codes >= 0x1F000) & (codes <= 0x1FAFF)
    return junk


def _wordlike(joined: str) -> str:
    """Only letters, digits and CJK characters, with one space between two Latin words (and
    none next to a CJK character); NUL separators are kept."""
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
    kept_at = np.flatnonzero(~_not_wordlike(codes))
    kept = codes[kept_at]
    latin = (kept < _CJK_FROM) & (kept != 0)
    space = (np.diff(kept_at) > 1) & latin[:-1] & latin[1:]
    if not space.any():
        return kept.tobytes().decode("utf-32-le")
    at = np.arange(len(kept))
    at[1:] += np.cumsum(space)
    out = np.full(len(kept) + int(space.sum()), 0x20, dtype=np.uint32)
    out[at] = kept
    return out.tobytes().decode("utf-32-le")


def _canonical_many(texts: Sequence[str]) -> list[str]:
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str")
    if not texts:
        return []  # "".split() would give one empty form for no text
    joined = normalize_joined(texts)
    joined = _BOILERPLATE.sub(" ", joined)
    if "http" in joined or "www." in joined:
        joined = _URL.sub(" ", joined)
    if "@" in joined:
        joined = _MENTION.sub(" ", joined)
    untagged = _HASHTAG.sub(" ", joined) if "#" in joined else joined
    forms = _wordlike(untagged).split("\x00")
    tagged = None
    for i, form in enumerate(forms):
        if not form:  # nothing but tags, links or punctuation: keep what there is
            if tagged is None:
                tagged = _wordlike(joined).split("\x00") if untagged is not joined else forms
            forms[i] = tagged[i] or "".join(normalize_joined([texts[i]]).split())
    return forms


def canonical(text: str) -> str:
    """The text as compared for duplicates (see the module's docstring)."""
    return _canonical_many([text])[0]


def content_hash(text: str) -> str:
    """A hex digest of the canonical form: equal for texts that differ only in case, width,
    punctuation, white space, links, @handles, hashtags or repost boilerplate."""
    return content_hashes([text])[0]


def content_hashes(texts: Sequence[str]) -> list[str]:
    """:func:`content_hash` of every text, canonicalised as one batch (four times faster than
    one call per text)."""
    return [
        hashlib.blake2b(form.encode("utf-8"), digest_size=16).hexdigest()
        for form in _canonical_many(texts)
    ]


# ------------------------------------------------------------------------------ SimHash


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit flips about half the output bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# _BITS[b, j] is bit j of the byte value b: a histogram of byte values times this table
# counts, for each of the byte's 8 bits, how many hashes have it set.
_BITS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(
    np.float32
)
_CHUNK = 4096  # texts per pass: bounds the histograms (texts x 256 counts)
_OWNER_BITS = 12  # 2**12 == _CHUNK: a text's number in its chunk above 52 bits of its hash


def simhashes(texts: Sequence[str], shingle: int = SHINGLE) -> np.ndarray:
    """SimHash of every text (int64 array), vectorised over the batch (``shingle``: characters
    per shingle, kept as an argument for measuring other sizes)."""
    if isinstance(shingle, bool) or not isinstance(shingle, int) or shingle < 1:
        raise ValueError(f"shingle must be a positive int, not {shingle!r}")
    parts = [_simhashes(texts[i : i + _CHUNK], shingle) for i in range(0, len(texts), _CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _simhashes(texts: Sequence[str], k: int) -> np.ndarray:
    n = len(texts)
    forms = _canonical_many(texts)
    codes = np.frombuffer("\x00".join(forms).encode("utf-32-le"), dtype=np.uint32)
    codes = codes.astype(np.uint64)
    is_sep = codes == 0
    owner = np.cumsum(is_sep)
    size = len(codes)
    # every window of k characters inside one text, as one number
    h = codes[: max(size - k + 1, 0)].copy()
    ok = ~is_sep[: len(h)]
    for j in range(1, k):
        h = h * np.uint64(0x100000001B3) + codes[j : len(h) + j]
        ok &= ~is_sep[j : len(h) + j]
    h, owner = h[ok], owner[: len(ok)][ok]
    # a text shorter than k characters is one shingle of its own
    short = [i for i, form in enumerate(forms) if 0 < len(form) < k]
    if short:
        h = np.concatenate([h, np.array([_short_key(forms[i]) for i in short], np.uint64)])
        owner = np.concatenate([owner, np.array(short, dtype=owner.dtype)])
    # each distinct shingle once (a post of 啊啊啊啊 is not mostly 啊啊啊): the text's number
    # above 52 bits of the shingle's hash, sorted and deduplicated in one go
    key = (owner.astype(np.uint64) << np.uint64(64 - _OWNER_BITS)) | (
        _mix(h) >> np.uint64(_OWNER_BITS)
    )
    key.sort()  # (np.unique hashes instead of sorting: several times slower here)
    key = key[np.concatenate((key[:1] == key[:1], key[1:] != key[:-1]))]
    owner = (key >> np.uint64(64 - _OWNER_BITS)).astype(np.int64)
    h = _mix(key & np.uint64((1 << (64 - _OWNER_BITS)) - 1))
    total = np.bincount(owner, minlength=n)
    ones = np.zeros((n, 64), dtype=np.float32)  # counts, exact in float32 up to 2**24
    if len(h) < 64 * n:  # few shingles (a single post): unpack every bit
        bits = np.unpackbits(h.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        present = np.flatnonzero(total)
        ones[present] = np.add.reduceat(bits, np.searchsorted(owner, present), dtype=np.int32)
    else:  # many: histograms of each byte's values, times the table of their bits
        as_bytes = h.view(np.uint8).reshape(-1, 8)  # little-endian: byte p holds bits 8p..
        for p in range(8):
            hist = np.bincount(owner * 256 + as_bytes[:, p], minlength=n * 256)
            ones[:, 8 * p : 8 * p + 8] = hist.reshape(n, 256).astype(np.float32) @ _BITS
    bits = (2 * ones > total[:, None]).astype(np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="little")  # (n, 8) bytes, little-endian
    return packed.view("<i8").ravel().astype(np.int64)


def _short_key(form: str) -> int:
    key = 0
    for ch in form:
        key = (key * 0x100000001B3 + ord(ch)) & MASK
    return key


def simhash(text: str) -> int:
    """SimHash of one text, a signed 64-bit int (0 for a text with nothing in it)."""
    return int(simhashes([text])[0])


def hamming(a: int, b: int) -> int:
    """How many of the 64 bits differ (signed or unsigned forms alike)."""
    return ((int(a) ^ int(b)) & MASK).bit_count()


# ------------------------------------------------------------------------------ the index


class NearDuplicateIndex:
    """Fingerprints by key; :meth:`find` returns the key of a stored fingerprint within
    ``max_distance`` bits of the one asked about.

    Banding makes that fast with millions of entries: the 64 bits are cut into
    ``max_distance + 1`` bands, and two fingerprints within ``max_distance`` bits agree on at
    least one whole band (pigeonhole), so only entries sharing a band with the query are
    compared. With the default 3, four bands of 16 bits.
    """

    def __init__(self, max_distance: int = 3):
        if isinstance(max_distance, bool) or not isinstance(max_distance, int):
            raise TypeError(f"max_distance must be an int, not {type(max_distance).__name__}")
        if not 0 <= max_distance <= 7:
            raise ValueError(f"max_distance must be between 0 and 7 bits, not {max_distance}")
        self.max_distance = max_distance
        bands = max_distance + 1
        widths = [64 // bands + (i < 64 % bands) for i in range(bands)]
        starts = [sum(widths[:i]) for i in range(bands)]
        self._bands = [(s, (1 << w) - 1) for s, w in zip(starts, widths, strict=True)]
        self._buckets: list[dict[int, list[int]]] = [{} for _ in range(bands)]
        self._prints = array("Q")
        self._keys: list[str] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, fingerprint: int) -> None:
        """Store ``fingerprint`` under ``key`` (a key may be stored more than once)."""
        value = _unsigned(fingerprint)
        index = len(self._keys)
        self._prints.append(value)
        self._keys.append(key)
        for (shift, mask), buckets in zip(self._bands, self._buckets, strict=True):
            band = (value >> shift) & mask
            bucket = buckets.get(band)
            if bucket is None:
                buckets[band] = [index]
            else:
                bucket.append(index)

    def find(self, fingerprint: int) -> str | None:
        """The key of the nearest stored fingerprint within ``max_distance`` bits (the first
        stored among equally near ones), or None."""
        value = _unsigned(fingerprint)
        best, best_distance = -1, self.max_distance + 1
        prints = self._prints
        for (shift, mask), buckets in zip(self._bands, self._buckets, strict=True):
            for index in buckets.get((value >> shift) & mask, ()):
                distance = (prints[index] ^ value).bit_count()
                if distance < best_distance or (distance == best_distance and index < best):
                    best, best_distance = index, distance
        return self._keys[best] if best >= 0 else None


def _unsigned(fingerprint: int) -> int:
    if isinstance(fingerprint, bool) or not isinstance(fingerprint, int | np.integer):
        raise TypeError(f"a fingerprint is an int, not {type(fingerprint).__name__}")
    value = int(fingerprint)
    if not -(1 << 63) <= value <= MASK:
        raise ValueError(f"fingerprint {value} does not fit in 64 bits")
    return value & MASK
