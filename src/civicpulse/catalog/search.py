"""Catalog search in Chinese and English over titles, tags, column names and descriptions.

    found = search("供水", grade="important", limit=20, offset=0)
    found.total, [hit.dataset for hit in found.hits]

**Why in Python.** The search must behave the same on SQLite and PostgreSQL, and a city's
catalog holds at most a few thousand datasets: the whole corpus, tokenised, fits in memory and is
scanned in milliseconds (2,000 datasets with 30 columns each: see the pages' report). It is built
once per process from one query and kept until the catalog changes: :func:`_signature` (count,
latest ``updated_at`` and the current-version pointers of all datasets) is read on every search,
and a different signature rebuilds the corpus, re-tokenising only the datasets whose
``updated_at`` or current version changed. Loading a version moves the pointer and touches
``updated_at``, so new column names are found at once. (A bulk ``QuerySet.update`` of a text
field bypasses ``updated_at``: the catalog's own code always saves.)

**Words.** Text is normalised (NFKC, lower case) and split into runs of Chinese characters and
runs of Latin letters or digits. Chinese runs are cut by jieba
(:func:`civicpulse.text.tokenize.tokens`); English words lose a plural ending (``permits`` →
``permit``, ``categories`` → ``category``, ``addresses`` → ``address``); numbers stay as written
(``311``); stop words and single letters are dropped. Column names are split at ``_``, spaces and
camel case (``AgencyName`` → ``agency name``).

**Matching.** Every word of the query must match (AND). A word matches a field when it is one of
the field's words, or, for a Chinese word, when it occurs anywhere in the field's text: jieba may
cut ``供水管网`` as one word in one text and as two in another, and the substring rule makes
``供水`` find ``城市供水管网数据`` either way.

**Ranking.** Each query word scores the weight of the best field it matched in — title (zh or
en) :data:`WEIGHTS` 8, a tag 4, a column name of the current version 2, the description 1 — and a
dataset's score is the sum over the query's words. So a title hit ranks above a tag hit, a tag
hit above a column hit, a column hit above a description hit. Equal scores are ordered most
recently updated first, then by identifier. Without query words every dataset that passes the
filters is listed in that same order.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Max, Sum

from civicpulse.catalog.models import Dataset
from civicpulse.text.tokenize import EN_STOP_WORDS, ZH_STOP_WORDS, normalize, tokens

__all__ = ["FIELDS", "WEIGHTS", "Hit", "Results", "SearchError", "known_tags", "search", "words"]

FIELDS = ("title", "tags", "columns", "description")
WEIGHTS = {"title": 8, "tags": 4, "columns": 2, "description": 1}
MAX_LIMIT = 500

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[a-z0-9]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class SearchError(ValueError):
    """A search asked with a filter value that does not exist; one line saying which."""


# --------------------------------------------------------------------------- words


def _singular(word: str) -> str:
    """English plural to singular, the common cases only (no full stemmer: ``status`` and
    ``bus`` stay, ``permits`` and ``categories`` lose their ending)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """The words of ``text`` as the search compares them (see the module's docstring)."""
    if not text:
        return []
    text = normalize(_CAMEL.sub(" ", text))
    out: list[str] = []
    for run in _RUNS.findall(text):
        if _IS_CJK.match(run):
            out.extend(t for t in tokens(run, "zh", normalized=True) if t not in ZH_STOP_WORDS)
        elif run.isdigit():
            out.append(run)
        elif len(run) > 1 and run not in EN_STOP_WORDS:
            out.append(_singular(run))
    return out


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True, slots=True)
class _Entry:
    """One dataset as the search sees it: filter values, and each field's words and text."""

    pk: int
    slug: str
    owner: str  # department code
    grade: str
    frequency: str
    tags: tuple[str, ...]
    updated: float
    words: dict[str, frozenset[str]]
    text: dict[str, str]  # normalised, for Chinese substring matches


_lock = threading.Lock()
_cache: dict[str, object] = {"signature": None, "by_pk": {}, "entries": ()}
builds = 0  # how many times this process built the corpus (tests read it)


def _signature() -> tuple:
    """What changes whenever anything the corpus holds changes: one aggregate query."""
    figures = Dataset.objects.aggregate(
        n=Count("id"),
        updated=Max("updated_at"),
        pointers=Sum("current_version_id"),
        latest=Max("current_version_id"),
    )
    return (figures["n"], figures["updated"], figures["pointers"], figures["latest"])


def _columns(schema) -> str:
    names = [c.get("name", "") for c in schema or () if isinstance(c, dict)]
    return "\n".join(n.replace("_", " ") for n in names)


def _build(previous: dict[int, tuple[tuple, _Entry]]) -> dict[int, tuple[tuple, _Entry]]:
    """Entries for every dataset; one unchanged since ``previous`` (same ``updated_at`` and
    current version) keeps its words, so a change re-tokenises only what changed."""
    rows = Dataset.objects.values_list(
        "pk",
        "slug",
        "title",
        "title_en",
        "description",
        "tags",
        "owner__code",
        "grade",
        "update_frequency",
        "updated_at",
        "current_version_id",
        "current_version__schema",
    )
    built = {}
    for row in rows:
        pk, slug, title, title_en, description, tags, owner, grade, freq, updated = row[:10]
        stamp = (updated, row[10])
        kept = previous.get(pk)
        if kept is not None and kept[0] == stamp:
            built[pk] = kept
            continue
        tags = tuple(str(t) for t in tags or ())
        texts = {
            "title": f"{title}\n{title_en}",
            "tags": "\n".join(tags),
            "columns": _columns(row[11]),
            "description": description or "",
        }
        entry = _Entry(
            pk=pk,
            slug=slug,
            owner=owner,
            grade=grade,
            frequency=freq,
            tags=tags,
            updated=updated.timestamp(),
            words={f: frozenset(words(t)) for f, t in texts.items()},
            text={f: normalize(t) for f, t in texts.items()},
        )
        built[pk] = (stamp, entry)
    return built


def corpus() -> tuple[_Entry, ...]:
    """The tokenised catalog, rebuilt only when :func:`_signature` has changed."""
    global builds
    signature = _signature()
    with _lock:
        if _cache["signature"] != signature:
            _cache["by_pk"] = _build(_cache["by_pk"])  # type: ignore[arg-type]
            _cache["entries"] = tuple(entry for _stamp, entry in _cache["by_pk"].values())
            _cache["signature"] = signature
            builds += 1
        return _cache["entries"]  # type: ignore[return-value]


def known_tags() -> list[str]:
    """Every tag in the catalog, sorted: what a tag filter offers."""
    return sorted({t for entry in corpus() for t in entry.tags})


# --------------------------------------------------------------------------- searching


@dataclass(frozen=True, slots=True)
class Hit:
    dataset: Dataset
    score: int
    matched: dict[str, list[str]] = field(default_factory=dict)  # field -> query words found


@dataclass(frozen=True, slots=True)
class Results:
    total: int  # all matches, before limit and offset
    hits: list[Hit]
    terms: list[str]  # the query's words, as compared


def _matches(word: str, entry: _Entry, name: str) -> bool:
    if word in entry.words[name]:
        return True
    return bool(_IS_CJK.match(word)) and word in entry.text[name]


def _score(terms: Iterable[str], entry: _Entry) -> tuple[int, dict[str, list[str]]] | None:
    total = 0
    matched: dict[str, list[str]] = {}
    for word in terms:
        found = [name for name in FIELDS if _matches(word, entry, name)]
        if not found:
            return None
        total += max(WEIGHTS[name] for name in found)
        for name in found:
            matched.setdefault(name, []).append(word)
    return total, matched


def _check_choice(value: str | None, choices, what: str) -> None:
    if value and value not in choices:
        raise SearchError(f"unknown {what} {value!r} (one of: {', '.join(choices)})")


def search(
    query: str = "",
    *,
    department: str | None = None,
    grade: str | None = None,
    tag: str | None = None,
    frequency: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> Results:
    """Datasets matching ``query`` and the filters, best first (see the module's docstring).

    ``department`` is the owner's code; ``tag`` an exact tag. An unknown grade or frequency
    raises :class:`SearchError`; an unknown department or tag simply matches nothing."""
    _check_choice(grade, Dataset.Grade.values, "grade")
    _check_choice(frequency, Dataset.Frequency.values, "update frequency")
    if not 0 <= limit <= MAX_LIMIT or offset < 0:
        raise SearchError(f"limit must be 0..{MAX_LIMIT} and offset at least 0")
    terms = list(dict.fromkeys(words(query or "")))
    ranked: list[tuple[int, float, str, int, dict]] = []
    for entry in corpus():
        if department and entry.owner != department:
            continue
        if grade and entry.grade != grade:
            continue
        if frequency and entry.frequency != frequency:
            continue
        if tag and tag not in entry.tags:
            continue
        scored = _score(terms, entry) if terms else (0, {})
        if scored is None:
            continue
        ranked.append((scored[0], entry.updated, entry.slug, entry.pk, scored[1]))
    ranked.sort(key=lambda r: r[2])  # stable sorts: identifier, then newest, then score
    ranked.sort(key=lambda r: (r[0], r[1]), reverse=True)
    page = ranked[offset : offset + limit]
    found = Dataset.objects.select_related("owner", "current_version").in_bulk([r[3] for r in page])
    hits = [Hit(found[r[3]], r[0], r[4]) for r in page if r[3] in found]
    return Results(total=len(ranked), hits=hits, terms=terms)
