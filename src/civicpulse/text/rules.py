"""The keyword rule language opinion analysts write for a concern.

One rule is applied in two places: to the live stream of posts (:meth:`Rule.matches`, or many
rules at once with :class:`RuleSet`) and to search over history, where DuckDB scans Parquet with
the superset filter of :meth:`Rule.to_duckdb` and ``matches`` confirms each candidate. Plain
Python, no Django.

Grammar
-------
Terms
    ``供暖`` ``heating``      a bare word
    ``"停水 通知"``          an exact phrase; Chinese quotes “停水” and corner quotes 「停水」 too
    ``heat*``               a word prefix: the ``*`` may only end a bare word
    ``source:weibo``        field filters: ``source:``, ``lang:zh``, ``area:松河区`` or
                            ``area:239901``; a value with spaces is quoted: ``area:"松河 区"``
Operators, strongest first
    ``NOT x``  ``-x``                 x does not occur (``-`` right before the term, no space)
    ``a NEAR/n b``                   a and b, in either order, with at most n words between them
    ``a AND b``  ``a && b``  ``a b``   both (two terms side by side are joined by AND)
    ``a OR b``  ``a || b``            either
    ``( ... )``                      grouping
Keywords are upper case: ``and``, ``or``, ``not`` and ``near`` in lower case are ordinary words.

So, with NOT > NEAR > AND > OR::

    停水 OR 断水 小区             停水 OR (断水 AND 小区)
    停水 断水 OR 小区             (停水 AND 断水) OR 小区
    NOT 演习 停水                 (NOT 演习) AND 停水
    停水 NEAR/5 小区 投诉          (停水 NEAR/5 小区) AND 投诉
    source:weibo AND (停水 OR 断水) NOT 演习
                                 source:weibo AND (停水 OR 断水) AND (NOT 演习)

``NEAR`` links two words or phrases, or a bracketed OR of them (``(停水 OR 断水) NEAR/5 小区``);
it is not chained and takes no field or NOT. To exclude a proximity, write ``NOT (a NEAR/3 b)``.

Matching
--------
Post text and terms are compared after the same normalisation as the tokenizer's (NFKC, so
full-width letters equal half-width ones, HTML entities decoded, lower case). A term holding
Chinese matches as a substring, because Chinese has no spaces: ``停水`` matches ``小区停水了``.
A term's ASCII letters and digits at its edges must meet a word boundary: ``heat`` does not match
``wheat`` or ``heating``, but ``heat*`` matches ``heating``; ``*`` on a Chinese term changes
nothing. A phrase's words follow each other separated by white space (any amount; none is needed
next to a Chinese character).

``NEAR/n`` counts words in the post's tokens (jieba words for Chinese, words for English) as
:mod:`civicpulse.text.tokenize` makes them, so punctuation and stop words (的, 了, the, of) are not
counted. Terms are found in the text and placed on the tokens they overlap, so a term may sit
inside one jieba word (``小区`` in ``居民小区``) or span several (``明天`` in ``说明|天才``).
``NEAR/0`` means next to each other; overlapping terms are near. A post that comes without its
tokens is segmented only when a NEAR needs it, and only the clauses between its terms (jieba
never joins words across white space or punctuation, so this gives the whole post's tokens).

History search: :meth:`Rule.to_duckdb` gives a WHERE clause every match meets (a superset, with
bound parameters); :meth:`Rule.matches` then confirms each row DuckDB returns.

Fields compare whole values, case-insensitively: ``source:`` the post's source, ``lang:`` its
language (``lang:zh`` also matches ``zh-cn``; guessed from the text when the post has none),
``area:`` any one of the area codes and names the post is tagged with.

Limits against hostile input: :data:`MAX_QUERY_LENGTH` characters, :data:`MAX_DEPTH` levels of
parentheses, :data:`MAX_TERMS` terms and fields, ``NEAR/``:data:`MAX_NEAR_DISTANCE`. Every
refusal is a :class:`RuleSyntaxError` naming the position, never a crash.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import re
import unicodedata
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any

from civicpulse.text import tokenize

MAX_QUERY_LENGTH = 2_000
MAX_DEPTH = 32
MAX_TERMS = 100
MAX_NEAR_DISTANCE = 100
FIELDS = ("source", "area", "lang")

# Pasted text carries these invisible characters between words: treat them as spaces.
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
_ALLOWED_CONTROLS = frozenset("\t\n\r\x0b\x0c")
# Opening quote -> the closing quotes that end it (IMEs often mix straight and curly quotes).
_QUOTES = {'"': '"”', "“": '”"', "「": "」", "『": "』"}
_CLOSING_ONLY = frozenset("”」』")

# Letters and digits that make a word boundary matter: ASCII, Latin, Greek, Cyrillic. A CJK
# character next to an English word is a boundary ("暖气heat").
_WORD_CHARS = "0-9a-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff"
_IS_WORD_CHAR = re.compile(f"[{_WORD_CHARS}]")
_NEAR = re.compile(r"NEAR/(\d{1,9})")


class RuleSyntaxError(ValueError):
    """A rule that cannot be read: ``position`` is the 0-based character offset in the query,
    ``token`` the text found there, ``message`` the sentence an analyst reads; ``str()`` adds
    the query with a caret under the position."""

    def __init__(self, message: str, query: str, position: int, token: str = ""):
        super().__init__(message)
        self.message = message
        self.query = query
        self.position = position
        self.token = token

    def __str__(self) -> str:
        return f"{self.message}\n{_pointer(self.query, self.position)}"

    def __reduce__(self):  # rules are checked in worker processes too
        return type(self), (self.message, self.query, self.position, self.token)


def _display(text: str) -> str:
    return "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in text)


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pointer(query: str, position: int, around: int = 30) -> str:
    """The part of the query around ``position`` with a caret under it (a long query is cut,
    control characters are shown as \ufffd, wide CJK characters count two columns)."""
    start, end = max(0, position - around), min(len(query), position + around)
    before = ("…" if start else "") + _display(query[start:position])
    after = _display(query[position:end]) + ("…" if end < len(query) else "")
    return f"  {before}{after}\n  {' ' * _columns(before)}^"


# ---------------------------------------------------------------------------- normalisation

# One normalisation for rules, posts and the stream: rules match what tokenize produced.
normalize = tokenize.normalize_quick


# ---------------------------------------------------------------------------- the post


class _Post:
    """One post as the rules see it: normalised text, fields, and the token positions NEAR
    needs, found only when asked and only for the clauses asked about."""

    __slots__ = ("mapping", "text", "_lang", "_areas", "_given", "_clauses")

    def __init__(self, mapping: Mapping[str, Any]):
        self.mapping = mapping
        self.text = normalize(mapping.get("text") or "")
        self._lang: str | None = None
        self._areas: frozenset[str] | None = None
        self._given: tuple[list[int], list[int]] | None = None
        self._clauses: tuple[list[int], list[int]] | None = None

    @property
    def source(self) -> str:
        return str(self.mapping.get("source") or "").lower()

    @property
    def lang(self) -> str:
        if self._lang is None:
            given = (self.mapping.get("lang") or "").lower()
            self._lang = given or tokenize.guess_language(self.text)
        return self._lang

    @property
    def areas(self) -> frozenset[str]:
        if self._areas is None:
            areas = self.mapping.get("areas") or ()
            if isinstance(areas, str):  # the lake's "|code|name|...|" column
                areas = areas.split("|")
            self._areas = frozenset(str(a).lower() for a in areas if a)
        return self._areas

    def token_spans(self, start: int, end: int) -> tuple[list[int], list[int]]:
        """Start and end offsets in :attr:`text` of the tokens, in order, covering at least
        the text from ``start`` to ``end``. The caller's ``tokens`` are placed on the whole
        text; otherwise only the clauses overlapping that stretch are segmented (each once,
        cached), which gives the same tokens as segmenting the whole post."""
        given = self.mapping.get("tokens")
        if given:
            if self._given is None:
                self._given = _align(self.text, [normalize(t) for t in given])
            return self._given
        if self._clauses is None:
            self._clauses = _clauses(self.text)
        clause_starts, clause_ends = self._clauses
        lang = "zh" if self.lang.startswith("zh") else "en"
        starts: list[int] = []
        ends: list[int] = []
        first = bisect.bisect_right(clause_ends, start)
        last = bisect.bisect_left(clause_starts, end)
        for at, until in zip(clause_starts[first:last], clause_ends[first:last], strict=True):
            clause_token_starts, clause_token_ends = _segment(self.text[at:until], lang)
            starts.extend(at + offset for offset in clause_token_starts)
            ends.extend(at + offset for offset in clause_token_ends)
        return starts, ends


_URL_LIKE = re.compile(r"(?:https?://|www\.)\S+")
_DIGITS = re.compile(r"\d+")
# Where no word of jieba or of the English tokenizer crosses: white space, CJK punctuation
# (。、【】《》...), and ! ? ; , (a comma not before a digit: "1,000" is one English number).
# Links may hold ASCII punctuation, so in a post with a link only the first kind cuts.
_CLAUSE_CUT = re.compile(r"[\s\u3000-\u303f!?;]+|,(?!\d)")
_CLAUSE_CUT_NEAR_LINKS = re.compile(r"[\s\u3000-\u303f]+")


def _clauses(text: str) -> tuple[list[int], list[int]]:
    """Start and end offsets of the stretches of text between cuts."""
    cut = _CLAUSE_CUT_NEAR_LINKS if "http" in text or "www." in text else _CLAUSE_CUT
    starts, ends, at = [], [], 0
    for gap in cut.finditer(text):
        if gap.start() > at:
            starts.append(at)
            ends.append(gap.start())
        at = gap.end()
    if at < len(text):
        starts.append(at)
        ends.append(len(text))
    return starts, ends


def _align(text: str, words: Iterable[str]) -> tuple[list[int], list[int]]:
    """Place each token on the text, in order. Tokens hold no offsets, and the tokenizer drops
    stop words and punctuation, so each is searched from where the previous one ended; number
    tokens are placed on the next run of digits; links (which the tokenizer moves to the end)
    and tokens not found take no room."""
    if "http" in text or "www." in text:
        text = _URL_LIKE.sub(lambda m: " " * len(m.group()), text)
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for word in words:
        if word == tokenize.URL:
            continue
        if word == tokenize.NUM:
            found = _DIGITS.search(text, pos)
            start, end = found.span() if found else (pos, pos)
        else:
            start = text.find(word, pos)
            end = start + len(word) if start >= 0 else pos
            start = start if start >= 0 else pos
        starts.append(start)
        ends.append(end)
        pos = end
    return starts, ends


@functools.lru_cache(maxsize=8192)
def _segment(clause: str, lang: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    # Cached by text: several rules (or Rule.matches calls) on one post segment it once.
    starts, ends = _align(clause, tokenize.tokens(clause, lang, normalized=True))
    return tuple(starts), tuple(ends)


# ---------------------------------------------------------------------------- SQL pieces
# A condition is ("TRUE"|"FALSE"|sql, params); leaves are wrapped in coalesce() so that NULL
# columns give TRUE or FALSE and NOT keeps its meaning.

_TRUE: tuple[str, tuple] = ("TRUE", ())
_FALSE: tuple[str, tuple] = ("FALSE", ())


def _sql_join(word: str, parts: Iterable[tuple[str, tuple]]) -> tuple[str, tuple]:
    absorbing, neutral = (_FALSE, _TRUE) if word == "AND" else (_TRUE, _FALSE)
    kept: list[tuple[str, tuple]] = []
    for part in parts:
        if part == absorbing:
            return absorbing
        if part != neutral and part not in kept:
            kept.append(part)
    if not kept:
        return neutral
    if len(kept) == 1:
        return kept[0]
    return (
        "(" + f" {word} ".join(sql for sql, _ in kept) + ")",
        tuple(p for _, params in kept for p in params),
    )


def _sql_not(condition: tuple[str, tuple]) -> tuple[str, tuple]:
    if condition == _TRUE:
        return _FALSE
    if condition == _FALSE:
        return _TRUE
    return (f"(NOT {condition[0]})", condition[1])


def _quote_column(name: str) -> str:
    if not name or not isinstance(name, str):
        raise ValueError(f"a column name must be non-empty text, not {name!r}")
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# Blocks whose characters NFKC leaves alone and that have no case: skipped when building the
# reverse map (a test checks the shortcut against a scan of every code point).
_STABLE_BLOCKS = (
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xAC00, 0xD7A3),  # Hangul syllables (already composed)
    (0xD800, 0xF8FF),  # surrogates, private use
    (0x20000, 0x2F7FF),  # CJK extensions B-F
    (0x2FA20, 0xDFFFF),  # CJK extensions G-H and unassigned planes
    (0xF0000, 0x10FFFF),  # private use planes
)


def _scan(code_points: Iterable[int]) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for cp in code_points:
        ch = chr(cp)
        if unicodedata.is_normalized("NFKC", ch):
            out = ch.lower()
        else:
            out = unicodedata.normalize("NFKC", ch).lower()
        if out != ch:
            for c in out:
                found.setdefault(c, set()).add(ch)
    return {c: frozenset(raw) for c, raw in found.items()}


@functools.cache
def _sources_of() -> dict[str, frozenset[str]]:
    """For each character, the other (non-ASCII) characters that normalisation turns into
    something containing it: ``2`` <- ``２ ② ²``..., ``水`` <- ``⽔ ㈬ ㊌``. Built once per
    process (about 0.05 s), only for history search."""
    ranges, start = [], 0x80
    for low, high in _STABLE_BLOCKS:
        ranges.append(range(start, low))
        start = high + 1
    ranges.append(range(start, 0x110000))
    return _scan(cp for r in ranges for cp in r)


def _guard(text: str) -> str:
    """An RE2 character class of the raw characters that could become part of ``text`` only
    through normalisation, which ``lower(column) LIKE`` cannot see: compatibility forms
    (full-width, circled, Kangxi radicals...), combining marks that compose with a letter,
    and ``&`` (HTML entities can spell anything)."""
    sources = _sources_of()
    guards = {"&"}
    for c in set(text) - {" "}:
        guards |= sources.get(c, frozenset())
        decomposed = unicodedata.normalize("NFD", c)
        for mark in decomposed[1:]:
            guards.add(mark)
            guards |= sources.get(mark, frozenset())
    return "[" + "".join(f"\\x{{{ord(ch):X}}}" for ch in sorted(guards)) + "]"


class _Columns:
    def __init__(self, text_column: str, fields: Mapping[str, str | None]):
        self.text = _quote_column(text_column)
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)} (known: {', '.join(FIELDS)})")
        self.fields = {name: _quote_column(col) for name, col in fields.items() if col}


# ---------------------------------------------------------------------------- the tree


class _Node:
    __slots__ = ()
    cost = 1  # evaluation order inside AND/OR: cheap first

    def evaluate(self, post: _Post) -> bool:
        raise NotImplementedError

    def requirement(self) -> list[frozenset[str]]:
        """Sets of strings such that a match needs, for each set, one string in the text."""
        return []

    def necessary(self, columns: _Columns) -> tuple[str, tuple]:
        """SQL true for every post the node matches (and maybe more)."""
        return _TRUE

    def sufficient(self, columns: _Columns) -> tuple[str, tuple]:
        """SQL true only for posts the node matches (maybe not all of them)."""
        return _FALSE

    def leaves(self) -> Iterator[_Node]:
        yield self


class _Term(_Node):
    """A word, a prefix (``heat*``) or a phrase, normalised as post text is."""

    __slots__ = ("text", "parts", "phrase", "prefix", "_needle", "_pattern")

    def __init__(self, text: str, *, phrase: bool = False, prefix: bool = False):
        self.parts = tuple(text.split())
        self.text = " ".join(self.parts)
        self.phrase = phrase
        self.prefix = prefix
        pattern = ""
        for i, part in enumerate(self.parts):
            if i:
                joined = self.parts[i - 1][-1] + part[0]
                pattern += (
                    r"\s+"
                    if _IS_WORD_CHAR.fullmatch(joined[0]) and _IS_WORD_CHAR.fullmatch(joined[1])
                    else r"\s*"
                )
            pattern += re.escape(part)
        bounded_start = bool(_IS_WORD_CHAR.match(self.text))
        bounded_end = not prefix and bool(_IS_WORD_CHAR.match(self.text[-1]))
        if len(self.parts) == 1 and not bounded_start and not bounded_end:
            self._needle, self._pattern = self.text, None
        else:
            before = f"(?<![{_WORD_CHARS}])" if bounded_start else ""
            after = f"(?![{_WORD_CHARS}])" if bounded_end else ""
            self._needle, self._pattern = None, re.compile(before + pattern + after)

    def evaluate(self, post: _Post) -> bool:
        text = post.text
        if self._pattern is None:
            return self._needle in text
        for part in self.parts:  # cheap refusal before the regular expression
            if part not in text:
                return False
        return self._pattern.search(text) is not None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Every occurrence, overlapping ones included."""
        found = []
        if self._pattern is None:
            needle = self._needle
            at = text.find(needle)
            while at >= 0:
                found.append((at, at + len(needle)))
                at = text.find(needle, at + 1)
        else:
            match = self._pattern.search(text)
            while match:
                found.append(match.span())
                match = self._pattern.search(text, match.start() + 1)
        return found

    def requirement(self) -> list[frozenset[str]]:
        return [frozenset([part]) for part in self.parts]

    def necessary(self, columns: _Columns) -> tuple[str, tuple]:
        col = columns.text
        likes = " AND ".join(f"lower({col}) LIKE ? ESCAPE '\\'" for _ in self.parts)
        params = tuple(f"%{_escape_like(part)}%" for part in self.parts)
        return (
            f"coalesce(({likes}) OR regexp_matches({col}, ?), FALSE)",
            (*params, _guard(self.text)),
        )

    def __str__(self) -> str:
        if self.phrase or len(self.parts) > 1:
            return f"“{self.text}”" if '"' in self.text else f'"{self.text}"'
        return self.text + ("*" if self.prefix else "")


class _Field(_Node):
    __slots__ = ("name", "value")
    cost = 0

    def __init__(self, name: str, value: str):
        self.name, self.value = name, value

    def evaluate(self, post: _Post) -> bool:
        if self.name == "source":
            return post.source == self.value
        if self.name == "lang":
            lang = post.lang
            return lang == self.value or lang.startswith(self.value + "-")
        return self.value in post.areas

    def _condition(self, columns: _Columns, if_null: str) -> tuple[str, tuple]:
        col = columns.fields.get(self.name)
        if col is None:  # the table has no such column: SQL cannot tell
            return _TRUE if if_null == "TRUE" else _FALSE
        if self.name == "source":
            return (f"coalesce(lower({col}) = ?, FALSE)", (self.value,))
        if self.name == "area":
            return (f"coalesce(contains(lower({col}), ?), FALSE)", (f"|{self.value}|",))
        # An empty or missing language is guessed from the text: SQL cannot tell.
        return (
            f"coalesce(nullif(lower({col}), '') = ? OR starts_with(lower({col}), ?), {if_null})",
            (self.value, self.value + "-"),
        )

    def necessary(self, columns: _Columns) -> tuple[str, tuple]:
        return self._condition(columns, "TRUE")

    def sufficient(self, columns: _Columns) -> tuple[str, tuple]:
        return self._condition(columns, "FALSE")

    def __str__(self) -> str:
        if any(c.isspace() for c in self.value):
            return f'{self.name}:"{self.value}"'
        return f"{self.name}:{self.value}"


class _Not(_Node):
    __slots__ = ("child", "cost")

    def __init__(self, child: _Node):
        self.child = child
        self.cost = child.cost

    def evaluate(self, post: _Post) -> bool:
        return not self.child.evaluate(post)

    def necessary(self, columns: _Columns) -> tuple[str, tuple]:
        return _sql_not(self.child.sufficient(columns))

    def sufficient(self, columns: _Columns) -> tuple[str, tuple]:
        return _sql_not(self.child.necessary(columns))

    def leaves(self) -> Iterator[_Node]:
        yield from self.child.leaves()

    def __str__(self) -> str:
        return f"NOT {self.child}"


def _simplest(sets: list[frozenset[str]]) -> list[frozenset[str]]:
    """Drop repeated sets and sets implied by a smaller one ({a} makes {a, b} redundant)."""
    kept: list[frozenset[str]] = []
    for candidate in sorted(set(sets), key=lambda s: (len(s), sorted(s))):
        if not any(k <= candidate for k in kept):
            kept.append(candidate)
    return kept


def _most_selective(sets: list[frozenset[str]]) -> frozenset[str]:
    """The set least likely to be met by chance: long strings, few alternatives."""
    return max(sets, key=lambda s: (min(map(len, s)), -len(s), sorted(s)))


class _Group(_Node):
    __slots__ = ("children", "ordered", "cost")
    word = ""

    def __init__(self, children: Iterable[_Node]):
        flat: list[_Node] = []
        for child in children:  # (a AND b) AND c is a AND b AND c
            flat.extend(child.children if type(child) is type(self) else [child])
        self.children = tuple(flat)  # as written, for display
        self.ordered = tuple(sorted(flat, key=lambda c: c.cost))  # cheap first, for evaluation
        self.cost = max(c.cost for c in flat)

    def leaves(self) -> Iterator[_Node]:
        for child in self.children:
            yield from child.leaves()

    def __str__(self) -> str:
        return "(" + f" {self.word} ".join(map(str, self.children)) + ")"


class _And(_Group):
    __slots__ = ()
    word = "AND"

    def evaluate(self, post: _Post) -> bool:
        for child in self.ordered:
            if not child.evaluate(post):
                return False
        return True

    def requirement(self) -> list[frozenset[str]]:
        return _simplest([s for child in self.children for s in child.requirement()])

    def necessary(self, columns: _Columns) -> tuple[str, tuple]:
        return _sql_join("AND", (c.necessary(columns) for c in self.children))

    def sufficient(self, columns: _Columns) -> tuple[str, tuple]:
        return _sql_join("AND", (c.sufficient(columns) for c in self.children))


class _Or(_Group):
    __slots__ = ()
    word = "OR"

    def evaluate(self, post: _Post) -> bool:
        for child in self.ordered:
            if child.evaluate(post):
                return True
        return False

    def requirement(self) -> list[frozenset[str]]:
        # One alternative set per branch, the most selective; a branch without any makes the
        # whole OR free of requirements.
        chosen: set[str] = set()
        for child in self.children:
            sets = child.requirement()
            if not sets:
                return []
            chosen |= _most_selective(sets)
        return [frozenset(chosen)]

    def necessary(self, columns: _Columns) -> tuple[str, tuple]:
        return _sql_join("OR", (c.necessary(columns) for c in self.children))

    def sufficient(self, columns: _Columns) -> tuple[str, tuple]:
        return _sql_join("OR", (c.sufficient(columns) for c in self.children))


def _token_range(start: int, end: int, starts: list[int], ends: list[int]) -> tuple[int, int]:
    """The tokens [lo, hi) a text span overlaps; an empty range at lo when it overlaps none
    (a stop word, punctuation)."""
    lo = bisect.bisect_right(ends, start)
    hi = bisect.bisect_left(starts, end)
    return (lo, hi) if lo < hi else (lo, lo)


def _gaps(left: list[tuple[int, int]], right: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """For each span on the left, the stretch separating it from the closest span on the
    right before and after it (any farther one is separated by more); (0, 0) when one
    overlaps it. Works for text offsets and token ranges alike."""
    by_start = sorted(right)
    starts = [lo for lo, _ in by_start]
    reach = []  # the farthest end among spans starting at or before each one
    for _, hi in by_start:
        reach.append(max(hi, reach[-1]) if reach else hi)
    ends = sorted(hi for _, hi in right)
    for a_lo, a_hi in left:
        before = bisect.bisect_left(starts, a_hi)  # spans starting before a ends
        if before and reach[before - 1] > a_lo:
            yield (0, 0)
            continue
        if before < len(starts):
            yield (a_hi, starts[before])
        last_end = bisect.bisect_right(ends, a_lo)
        if last_end:
            yield (ends[last_end - 1], a_lo)


_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


def _at_most(pattern: re.Pattern, text: str, start: int, end: int, limit: int) -> bool:
    """Whether ``pattern`` occurs at most ``limit`` times in text[start:end]."""
    for count, _ in enumerate(pattern.finditer(text, start, end), 1):
        if count > limit:
            return False
    return True


class _Near(_Node):
    """Two words or phrases (or ORs of them) with at most ``distance`` tokens between."""

    __slots__ = ("left", "right", "distance")
    cost = 10  # may need the post segmented

    def __init__(self, left: tuple[_Term, ...], right: tuple[_Term, ...], distance: int):
        self.left, self.right, self.distance = left, right, distance

    @staticmethod
    def _spans(terms: tuple[_Term, ...], post: _Post) -> list[tuple[int, int]]:
        return [span for term in terms if term.evaluate(post) for span in term.spans(post.text)]

    def evaluate(self, post: _Post) -> bool:
        left = self._spans(self.left, post)
        right = self._spans(self.right, post) if left else None
        if not left or not right:
            return False
        text, distance = post.text, self.distance
        # Every token holds a letter or a digit, so a stretch with at most n of them holds at
        # most n tokens: near, without segmenting. Only the rest is segmented.
        for start, end in _gaps(left, right):
            if _at_most(_LETTER_OR_DIGIT, text, start, end, distance):
                return True
        spans = left + right
        starts, ends = post.token_spans(min(s for s, _ in spans), max(e for _, e in spans))
        left_tokens = [_token_range(s, e, starts, ends) for s, e in left]
        right_tokens = [_token_range(s, e, starts, ends) for s, e in right]
        return any(end - start <= distance for start, end in _gaps(left_tokens, right_tokens))

    @staticmethod
    def _side(terms: tuple[_Term, ...]) -> list[frozenset[str]]:
        if len(terms) == 1:
            return terms[0].requirement()
        return [frozenset(s for t in terms for s in _most_selective(t.requirement()))]

    def requirement(self) -> list[frozenset[str]]:
        return _simplest(self._side(self.left) + self._side(self.right))

    def necessary(self, columns: _Columns) -> tuple[str, tuple]:
        left = _sql_join("OR", (t.necessary(columns) for t in self.left))
        right = _sql_join("OR", (t.necessary(columns) for t in self.right))
        return _sql_join("AND", (left, right))

    def leaves(self) -> Iterator[_Node]:
        yield from self.left
        yield from self.right

    def __str__(self) -> str:
        def side(terms):
            return str(terms[0]) if len(terms) == 1 else "(" + " OR ".join(map(str, terms)) + ")"

        return f"({side(self.left)} NEAR/{self.distance} {side(self.right)})"


# ---------------------------------------------------------------------------- reading a query

# Token kinds.
_AND, _OR, _NOT, _NEAR_OP = "AND", "OR", "NOT", "NEAR"
_OPEN, _CLOSE, _LEAF, _END = "(", ")", "term", "end"
_STARTS_OPERAND = frozenset((_LEAF, _NOT, _OPEN))


class _Token:
    __slots__ = ("kind", "text", "position", "node", "distance")

    def __init__(self, kind: str, text: str, position: int, node=None, distance: int = 0):
        self.kind, self.text, self.position = kind, text, position
        self.node, self.distance = node, distance


class _Lexer:
    """Splits a query into tokens. Characters are classified after NFKC, one by one, so that
    full-width brackets, quotes, colons and keywords (（ ） ＂ ： ＡＮＤ) work, while every
    position stays an offset in the query as typed."""

    def __init__(self, query: str):
        self.query = query
        self.folded = [unicodedata.normalize("NFKC", ch) for ch in query]
        self.tokens: list[_Token] = []
        self.terms = 0

    def error(self, message: str, position: int, token: str = "") -> RuleSyntaxError:
        return RuleSyntaxError(message, self.query, position, token)

    def _opens_quote(self, i: int) -> bool:
        return self.folded[i] == '"' or self.query[i] in _QUOTES

    def _ends_word(self, i: int) -> bool:
        ch, f = self.query[i], self.folded[i]
        return (
            f.isspace()
            or ch in _ZERO_WIDTH
            or unicodedata.category(ch) == "Cc"
            or f in ("(", ")")
            or self._opens_quote(i)
            or ch in _CLOSING_ONLY
            or (f in ("&", "|") and i + 1 < len(self.query) and self.folded[i + 1] == f)
        )

    def run(self) -> list[_Token]:
        query, folded, n = self.query, self.folded, len(self.query)
        i = 0
        while i < n:
            ch, f = query[i], folded[i]
            if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS:
                raise self.error(
                    f"control character U+{ord(ch):04X} at position {i} is not allowed in a rule",
                    i,
                    ch,
                )
            if f.isspace() or ch in _ZERO_WIDTH:
                i += 1
            elif f in ("(", ")"):
                self.tokens.append(_Token(_OPEN if f == "(" else _CLOSE, ch, i))
                i += 1
            elif ch in _CLOSING_ONLY:
                raise self.error(
                    f"closing quote {ch} at position {i} has no opening quote before it", i, ch
                )
            elif self._opens_quote(i):
                text, end = self._phrase(i)
                self._leaf(_Term(self._normalized(text, i), phrase=True), query[i:end], i)
                i = end
            elif f in ("&", "|") and i + 1 < n and folded[i + 1] == f:
                self.tokens.append(_Token(_AND if f == "&" else _OR, query[i : i + 2], i))
                i += 2
            elif f == "-":
                follows = folded[i + 1] if i + 1 < n else ""
                if (
                    not follows
                    or follows == ")"
                    or (self._ends_word(i + 1) and follows != "(" and not self._opens_quote(i + 1))
                ):
                    raise self.error(
                        f"expected a term right after '-' at position {i} "
                        "(write it without a space, e.g. -演习)",
                        i,
                        ch,
                    )
                self.tokens.append(_Token(_NOT, ch, i))
                i += 1
            else:
                end = i + 1
                while end < n and not self._ends_word(end):
                    end += 1
                i = self._word(i, end)
        self.tokens.append(_Token(_END, "", n))
        return self.tokens

    def _phrase(self, i: int) -> tuple[str, int]:
        """The text inside the quotes opened at ``i``, and the offset after the closing one."""
        closers = _QUOTES.get(self.query[i], _QUOTES['"'])
        for j in range(i + 1, len(self.query)):
            ch = self.query[j]
            if ch in closers or (self.folded[j] == '"' and '"' in closers):
                text = self.query[i + 1 : j]
                if not text.strip() or all(c in _ZERO_WIDTH or c.isspace() for c in text):
                    raise self.error(f"empty phrase at position {i}", i, self.query[i : j + 1])
                return text, j + 1
            if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS:
                raise self.error(
                    f"control character U+{ord(ch):04X} at position {j} is not allowed in a rule",
                    j,
                    ch,
                )
        raise self.error(f"unclosed quote {self.query[i]} opened at position {i}", i, self.query[i])

    def _normalized(self, text: str, position: int) -> str:
        text = "".join(" " if c in _ZERO_WIDTH else c for c in text)
        cleaned = " ".join(normalize(text).split())
        if not cleaned:
            raise self.error(f"empty term at position {position}", position, text)
        return cleaned

    def _leaf(self, node: _Node, text: str, position: int) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.error(
                f"too many terms: a rule may hold at most {MAX_TERMS} words, phrases and "
                f"fields (the {MAX_TERMS + 1}st is at position {position})",
                position,
                text,
            )
        self.tokens.append(_Token(_LEAF, text, position, node=node))

    def _word(self, i: int, end: int) -> int:
        """Reads the bare word query[i:end]; returns where reading goes on (past a quoted
        field value)."""
        raw = self.query[i:end]
        folded = "".join(self.folded[i:end])
        if folded in (_AND, _OR, _NOT):
            self.tokens.append(_Token(folded, raw, i))
            return end
        if folded == "NEAR" or folded.startswith("NEAR/"):
            near = _NEAR.fullmatch(folded)
            if not near:
                raise self.error(f"NEAR needs a distance, e.g. NEAR/5 (at position {i})", i, raw)
            distance = int(near.group(1))
            if distance > MAX_NEAR_DISTANCE:
                raise self.error(
                    f"NEAR/{distance} at position {i} is too far: the largest distance is "
                    f"NEAR/{MAX_NEAR_DISTANCE}",
                    i,
                    raw,
                )
            self.tokens.append(_Token(_NEAR_OP, raw, i, distance=distance))
            return end
        name_end = i
        while (
            name_end < end and self.folded[name_end].isascii() and self.folded[name_end].isalpha()
        ):
            name_end += 1
        if name_end > i and name_end < end and self.folded[name_end] == ":":
            return self._field(i, name_end, end)
        star = folded.find("*")
        if star >= 0:
            at = i + next(k for k, f in enumerate(self.folded[i:end]) if "*" in f)
            if folded == "*":
                raise self.error(
                    f"a wildcard * at position {at} needs letters before it, e.g. heat*", at, raw
                )
            if star != len(folded) - 1:
                raise self.error(
                    f"a wildcard * is only allowed at the end of a word, e.g. heat* "
                    f"(at position {at})",
                    at,
                    raw,
                )
            self._leaf(_Term(self._normalized(raw[:-1], i), prefix=True), raw, i)
            return end
        self._leaf(_Term(self._normalized(raw, i)), raw, i)
        return end

    def _field(self, i: int, colon: int, end: int) -> int:
        name_typed = self.query[i:colon]
        name = "".join(self.folded[i:colon]).lower()
        if name not in FIELDS:
            close = difflib.get_close_matches(name, FIELDS, n=1)
            hint = (
                f"; did you mean '{close[0]}'?"
                if close
                else "; to search for it as text, put it in quotes"
            )
            raise self.error(
                f"unknown field '{name_typed}' at position {i} (known: {', '.join(FIELDS)}){hint}",
                i,
                name_typed,
            )
        value, after = self.query[colon + 1 : end], end
        if not value and end < len(self.query) and self._opens_quote(end):
            value, after = self._phrase(end)
        if not value:
            example = {"source": "weibo", "area": "松河区", "lang": "zh"}[name]
            raise self.error(
                f"field '{name}' at position {i} needs a value, e.g. {name}:{example}",
                colon + 1,
                self.query[i:end],
            )
        if "*" in value and after == end:
            raise self.error(
                f"field values take no wildcard * (at position {i}): write the whole value",
                i,
                self.query[i:end],
            )
        cleaned = " ".join(normalize(value).split())
        if not cleaned:
            raise self.error(
                f"field '{name}' at position {i} needs a value", colon + 1, self.query[i:end]
            )
        if name == "area" and "|" in cleaned:
            raise self.error(
                f"an area at position {i} cannot contain '|'", colon + 1, self.query[i:end]
            )
        self._leaf(_Field(name, cleaned), self.query[i:after], i)
        return after


class _Parser:
    """Recursive descent over the precedence levels OR < AND < NEAR < NOT; the depth of
    parentheses is capped before Python's own recursion limit could be reached."""

    def __init__(self, query: str, tokens: list[_Token]):
        self.query = query
        self.tokens = tokens
        self.at = 0

    @property
    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def error(self, message: str, position: int, token: str = "") -> RuleSyntaxError:
        return RuleSyntaxError(message, self.query, position, token)

    def expected_term(self, after: _Token | None) -> RuleSyntaxError:
        found = self.peek
        if after is None:  # an operator with nothing before it
            return self.error(
                f"'{found.text}' at position {found.position} needs a term before it",
                found.position,
                found.text,
            )
        if found.kind == _END:
            position = after.position + len(after.text)
            return self.error(
                f"expected a term after '{after.text}' at position {position}, "
                "but the query ends there",
                position,
                after.text,
            )
        what = {_CLOSE: "')'"}.get(found.kind, f"'{found.text}'")
        return self.error(
            f"expected a term after '{after.text}' at position {found.position}, found {what}",
            found.position,
            found.text,
        )

    def rule(self) -> _Node:
        node = self.or_(0, None)
        if self.peek.kind == _CLOSE:
            token = self.peek
            raise self.error(
                f"unmatched ')' at position {token.position}: no '(' opens it",
                token.position,
                token.text,
            )
        return node

    def or_(self, depth: int, after: _Token | None) -> _Node:
        items = [self.and_(depth, after)]
        while self.peek.kind == _OR:
            op = self.take()
            items.append(self.and_(depth, op))
        return items[0] if len(items) == 1 else _Or(items)

    def and_(self, depth: int, after: _Token | None) -> _Node:
        items = [self.near(depth, after)]
        while True:
            kind = self.peek.kind
            if kind == _AND:
                op = self.take()
                items.append(self.near(depth, op))
            elif kind in _STARTS_OPERAND:  # side by side: an implicit AND
                items.append(self.near(depth, None))
            else:
                break
        return items[0] if len(items) == 1 else _And(items)

    def near(self, depth: int, after: _Token | None) -> _Node:
        start = self.peek
        node = self.unary(depth, after)
        while self.peek.kind == _NEAR_OP:
            op = self.take()
            left = self.near_side(node, start, op, "before")
            right_start = self.peek
            right = self.near_side(self.unary(depth, op), right_start, op, "after")
            node = _Near(left, right, op.distance)
            start = None  # a further NEAR would chain
        return node

    def near_side(self, node: _Node, start: _Token | None, op: _Token, side: str):
        if start is None:
            raise self.error(
                f"NEAR at position {op.position} cannot be chained: write "
                "(a NEAR/3 b) AND (b NEAR/3 c)",
                op.position,
                op.text,
            )
        if isinstance(node, _Term):
            return (node,)
        if isinstance(node, _Or) and all(isinstance(c, _Term) for c in node.children):
            return node.children
        what = (
            "a field filter"
            if isinstance(node, _Field)
            else "a NOT (to exclude a proximity write NOT (a NEAR/3 b))"
            if isinstance(node, _Not)
            else "a NEAR"
            if isinstance(node, _Near)
            else "a group with AND, NOT or fields"
        )
        raise self.error(
            f"NEAR links two words or phrases (or a bracketed OR of them); the term {side} "
            f"'{op.text}' at position {start.position} is {what}",
            start.position,
            start.text,
        )

    def unary(self, depth: int, after: _Token | None) -> _Node:
        negations = 0
        while self.peek.kind == _NOT:
            after = self.take()
            negations += 1
        node = self.primary(depth, after)
        return _Not(node) if negations % 2 else node

    def primary(self, depth: int, after: _Token | None) -> _Node:
        token = self.peek
        if token.kind == _LEAF:
            self.take()
            return token.node
        if token.kind != _OPEN:
            raise self.expected_term(after)
        if depth >= MAX_DEPTH:
            raise self.error(
                f"too many nested parentheses at position {token.position}: at most "
                f"{MAX_DEPTH} levels",
                token.position,
                token.text,
            )
        self.take()
        if self.peek.kind == _CLOSE:
            raise self.error(
                f"empty parentheses at position {token.position}", token.position, "()"
            )
        node = self.or_(depth + 1, token)
        if self.peek.kind != _CLOSE:
            raise self.error(
                f"unclosed parenthesis opened at position {token.position}",
                token.position,
                token.text,
            )
        self.take()
        return node


# ---------------------------------------------------------------------------- the public API


class Rule:
    """A parsed rule: use :func:`parse` to make one."""

    __slots__ = ("query", "_root", "_required")

    def __init__(self, query: str, root: _Node):
        self.query = query
        self._root = root
        self._required: list[frozenset[str]] | None = None

    def matches(self, post: Mapping[str, Any]) -> bool:
        """Whether the post (a mapping with ``text`` and optionally ``lang``, ``source``,
        ``areas``, ``tokens``) meets the rule."""
        return self._root.evaluate(_Post(post))

    def terms(self) -> set[str]:
        """The words and phrases the rule mentions, normalised (lower case, NFKC), for
        highlighting; a prefix ``heat*`` gives ``heat``."""
        return {leaf.text for leaf in self._root.leaves() if isinstance(leaf, _Term)}

    def required(self) -> list[frozenset[str]]:
        """A cheap necessary condition: a post can match only if, for each set, one of its
        strings is a substring of the normalised text (see :func:`normalize`). Empty when the
        rule needs no particular text (only NOT or fields)."""
        if self._required is None:
            self._required = self._root.requirement()
        return list(self._required)

    def to_duckdb(
        self,
        text_column: str = "text",
        fields: Mapping[str, str | None] | None = None,
    ) -> tuple[str, list]:
        """A DuckDB WHERE clause with ``?`` parameters that every matching row meets (a
        superset: confirm each row with :meth:`matches`). ``fields`` maps ``source``, ``lang``
        and ``area`` to column names (default: source, lang, areas; map to None when the
        table lacks one); the area column holds codes and names as ``|code|name|...|``.

        Words become ``lower(text) LIKE ?`` with ``%`` and ``_`` escaped, or'ed with a regular
        expression over the few raw characters normalisation could turn into the word
        (full-width forms, ``&`` of HTML entities), so normalised matches are never lost.
        NOT over words cannot narrow SQL and gives TRUE; NOT over fields is exact."""
        if fields is None:
            fields = {"source": "source", "lang": "lang", "area": "areas"}
        sql, params = self._root.necessary(_Columns(text_column, fields))
        return sql, list(params)

    def __str__(self) -> str:
        """The rule with every operator and group spelled out."""
        text = str(self._root)
        return text[1:-1] if isinstance(self._root, (_Group, _Near)) else text

    def __repr__(self) -> str:
        return f"<Rule {self.query!r}: {self}>"


def parse(query: str) -> Rule:
    """Read a rule (grammar in the module docstring); raises :class:`RuleSyntaxError`."""
    if not isinstance(query, str):
        raise TypeError(f"a rule is text, not {type(query).__name__}")
    if len(query) > MAX_QUERY_LENGTH:
        raise RuleSyntaxError(
            f"the rule is {len(query):,} characters long; the limit is {MAX_QUERY_LENGTH:,}",
            query,
            MAX_QUERY_LENGTH,
            "",
        )
    tokens = _Lexer(query).run()
    if len(tokens) == 1:
        raise RuleSyntaxError("empty query: write at least one word", query, 0, "")
    return Rule(query, _Parser(query, tokens).rule())


class RuleSet:
    """Many rules applied to a stream at once. Each rule is indexed under its most selective
    required set; one regular-expression scan of a post finds which of those strings occur,
    so most rules are refused without being evaluated, and a post is segmented only when a
    NEAR must be checked."""

    def __init__(self, rules: Iterable[tuple[Hashable, Rule | str]]):
        self.ids: list[Hashable] = []
        self.rules: list[Rule] = []
        self._rest: list[tuple[tuple[str, ...], ...]] = []
        unindexed: list[int] = []
        index: dict[str, set[int]] = {}
        for rule_id, rule in rules:
            if isinstance(rule, str):
                rule = parse(rule)
            number = len(self.rules)
            self.ids.append(rule_id)
            self.rules.append(rule)
            required = rule.required()
            if not required:
                self._rest.append(())
                unindexed.append(number)
                continue
            anchor = _most_selective(required)
            self._rest.append(tuple(tuple(s) for s in required if s is not anchor))
            for text in anchor:
                index.setdefault(text, set()).add(number)
        self._unindexed = frozenset(unindexed)
        # Longest first, so that at each position the scan finds the longest string there;
        # the shorter ones found at the same place are its prefixes, whose rules it reaches too.
        anchors = sorted(index, key=lambda s: (-len(s), s))
        self._scan = re.compile("|".join(map(re.escape, anchors))).search if anchors else None
        self._reach = {
            s: frozenset(n for t in anchors if s.startswith(t) for n in index[t]) for s in anchors
        }

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, post: Mapping[str, Any]) -> list[Hashable]:
        """The ids of the rules the post meets, in the order the rules were given."""
        entry = _Post(post)
        text = entry.text
        scan = self._scan
        found = scan(text) if scan is not None else None
        if found is None and not self._unindexed:
            return []
        candidates = set(self._unindexed)
        reach = self._reach
        while found is not None:
            candidates |= reach[found.group()]
            found = scan(text, found.start() + 1)
        matched = []
        rules, rest = self.rules, self._rest
        for number in sorted(candidates):
            for alternatives in rest[number]:
                for alternative in alternatives:
                    if alternative in text:
                        break
                else:
                    break  # none of this set's strings occurs
            else:
                if rules[number]._root.evaluate(entry):
                    matched.append(self.ids[number])
        return matched
