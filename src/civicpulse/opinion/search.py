"""Search over the history of posts with a keyword rule, saved or typed now.

Each stored post carries the ids of the saved rules it matched when it came in, but a rule typed
now, or a saved rule edited since, has no such tags: the search evaluates the rule over the
period instead. DuckDB scans the period's day partitions with the rule's superset filter
(:meth:`civicpulse.text.rules.Rule.to_duckdb`, every value a bound parameter), then
:meth:`~civicpulse.text.rules.Rule.matches` confirms each candidate in Python, so the hits are
exactly the stream's matches. The work is bounded by the period (:data:`MAX_DAYS`), and candidates
are read in chunks, so a rule that cannot narrow SQL (``NOT 演习``) costs time, not memory.

Near copies (``duplicate_of``) match like any post: they are counted, marked, and can be left
out of the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import duckdb
from django.utils import timezone

from civicpulse.opinion import posts
from civicpulse.opinion.models import Rule as SavedRule
from civicpulse.text import rules

MAX_DAYS = 366
MAX_LIMIT = 500
CHUNK = 5_000

_CANDIDATE_COLUMNS = (
    "post_key, source, text, url, lang, areas, created_at, CAST(day AS VARCHAR) AS day, "
    "reach, sentiment, district_code, duplicate_of"
)
_HIT_COLUMNS = (
    "post_key, source, text, url, created_at, reach, sentiment, district_code, duplicate_of"
)


class SearchError(ValueError):
    """A search that will not be run (the period or the paging is out of bounds)."""


@dataclass(frozen=True)
class Hit:
    """One matching post, as a reader sees it (the author's hash is not part of it)."""

    post_key: str
    source: str
    text: str
    url: str
    created_at: datetime
    reach: int
    sentiment: float | None
    district_code: str
    duplicate_of: str

    @property
    def is_copy(self) -> bool:
        return bool(self.duplicate_of)


@dataclass(frozen=True)
class SearchResult:
    """One page of hits, newest first, and the figures of the whole period.

    ``matched`` counts every post the rule matches (copies included), ``copies`` the near copies
    among them; ``total`` is what the pages list (``matched`` less ``copies`` when copies are
    hidden). ``candidates`` is what the SQL superset filter returned before the exact check.
    The per-day lists run over ``days`` (local days, oldest first) and count every match."""

    query: str
    rule: rules.Rule
    since: datetime
    until: datetime
    hits: list[Hit]
    total: int
    matched: int
    copies: int
    candidates: int
    offset: int
    limit: int
    days: list[str] = field(default_factory=list)
    per_day: list[int] = field(default_factory=list)
    voices_per_day: list[int] = field(default_factory=list)
    negative_per_day: list[int] = field(default_factory=list)


def period(since: date | datetime, until: date | datetime) -> tuple[datetime, datetime, list[str]]:
    """The instants [start, end) and the local days a period covers. A ``date`` is a whole local
    day (``until`` included); a ``datetime`` is an instant (``until`` excluded)."""
    tz = timezone.get_current_timezone()

    def instant(value: date | datetime, after: bool) -> datetime:
        if isinstance(value, datetime):
            if timezone.is_naive(value):
                raise SearchError("a time must carry its time zone")
            return value
        if isinstance(value, date):
            day = value + timedelta(days=1) if after else value
            return datetime.combine(day, time.min, tz)
        raise SearchError(f"a period is given by dates or times, not {type(value).__name__}")

    start, end = instant(since, False), instant(until, True)
    if end <= start:
        raise SearchError("the period ends before it starts: give the earlier day first")
    first = timezone.localtime(start).date()
    last = timezone.localtime(end - timedelta(microseconds=1)).date()
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise SearchError(
            f"the period covers {count:,} days; search at most {MAX_DAYS} days at a time"
        )
    return start, end, [(first + timedelta(days=k)).isoformat() for k in range(count)]


def as_rule(query: str | SavedRule | rules.Rule) -> rules.Rule:
    """The parsed rule; a query that does not parse raises its ``RuleSyntaxError``."""
    if isinstance(query, rules.Rule):
        return query
    if isinstance(query, SavedRule):
        return rules.parse(query.query)
    return rules.parse(query)


def search(
    query: str | SavedRule | rules.Rule,
    *,
    since: date | datetime,
    until: date | datetime,
    area_codes: Sequence[str] | None = None,
    source: str = "",
    limit: int = 50,
    offset: int = 0,
    copies: bool = True,
) -> SearchResult:
    """Posts created in the period that the rule matches, newest first.

    ``area_codes`` limits the search to posts placed within those areas (``None``: the whole
    city, ``[]``: nothing), ``source`` to one source; ``copies=False`` leaves near copies out of
    the list and of ``total`` (they are still counted in ``copies``)."""
    parsed = as_rule(query)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"a page holds 1 to {MAX_LIMIT} posts, not {limit!r}")
    if not isinstance(offset, int) or offset < 0:
        raise SearchError(f"the offset is a whole number of at least 0, not {offset!r}")
    start, end, days = period(since, until)
    files = posts.day_files(days)
    found: list[tuple[datetime, str, str, bool, bool]] = []
    candidates = 0
    page: list[Hit] = []
    con = duckdb.connect()
    try:
        if files:
            candidates, found = _matches(con, parsed, files, start, end, source, area_codes)
        listed = [m for m in found if copies or not m[3]]
        listed.sort(key=lambda m: (m[0], m[1]), reverse=True)
        keys = [m[1] for m in listed[offset : offset + limit]]
        if keys:
            page = _hits(con, keys)
    finally:
        con.close()
    index = {d: k for k, d in enumerate(days)}
    per_day, voices, negative = [0] * len(days), [0] * len(days), [0] * len(days)
    for _at, _key, day, is_copy, is_negative in found:
        k = index[day]
        per_day[k] += 1
        voices[k] += not is_copy
        negative[k] += is_negative
    n_copies = sum(1 for m in found if m[3])
    return SearchResult(
        query=parsed.query,
        rule=parsed,
        since=start,
        until=end,
        hits=page,
        total=len(listed),
        matched=len(found),
        copies=n_copies,
        candidates=candidates,
        offset=offset,
        limit=limit,
        days=days,
        per_day=per_day,
        voices_per_day=voices,
        negative_per_day=negative,
    )


def _matches(
    con: duckdb.DuckDBPyConnection,
    parsed: rules.Rule,
    files: list[str],
    start: datetime,
    end: datetime,
    source: str,
    area_codes: Sequence[str] | None,
) -> tuple[int, list[tuple[datetime, str, str, bool, bool]]]:
    """(candidates, matches) where each match is (created_at, post_key, day, is_copy,
    is_negative). The rule's filter takes ``?`` parameters and the scope's named ones, which
    DuckDB cannot mix in one statement: the rule's candidates are kept in a temporary table
    first, and the scope narrows them there."""
    from civicpulse.text.sentiment import NEGATIVE  # read when searching, as the trend does

    where, params = parsed.to_duckdb()
    con.execute(
        f"CREATE TEMP TABLE candidates AS SELECT {_CANDIDATE_COLUMNS} "
        "FROM read_parquet(?, hive_partitioning = true, hive_types = {'day': VARCHAR}) "
        f"WHERE created_at >= ? AND created_at < ? AND ({where})",
        [files, start, end, *params],
    )
    scope, named = posts.filters(source, area_codes)
    cursor = con.execute(
        "SELECT post_key, text, source, lang, areas, created_at, day, duplicate_of, sentiment "
        f"FROM candidates WHERE true{scope}",
        named,
    )
    candidates = 0
    found = []
    while chunk := cursor.fetchmany(CHUNK):
        candidates += len(chunk)
        for key, text, src, lang, areas, created_at, day, duplicate_of, sentiment in chunk:
            post = {"text": text, "source": src, "lang": lang, "areas": areas}
            if parsed.matches(post):
                negative = sentiment is not None and sentiment < NEGATIVE
                found.append((created_at, key, day, bool(duplicate_of), negative))
    return candidates, found


def _hits(con: duckdb.DuckDBPyConnection, keys: list[str]) -> list[Hit]:
    rows = con.execute(
        f"SELECT {_HIT_COLUMNS} FROM candidates WHERE post_key IN (SELECT unnest(?))", [keys]
    ).fetchall()
    by_key = {row[0]: row for row in rows}
    return [_hit(by_key[k]) for k in keys]


def _hit(row: tuple) -> Hit:
    key, source, text, url, created_at, reach, sentiment, district_code, duplicate_of = row
    return Hit(
        post_key=key,
        source=source or "",
        text=text or "",
        url=url or "",
        created_at=created_at,
        reach=int(reach or 0),
        sentiment=None if sentiment is None else float(sentiment),
        district_code=district_code or "",
        duplicate_of=duplicate_of or "",
    )
