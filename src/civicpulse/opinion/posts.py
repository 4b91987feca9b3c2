"""Posts in the lake: validated, de-duplicated, scored and appended by local day.

The lake table ``posts`` is the system of record for posts; the store keeps only the batch that
brought them and what it refused. A post already stored (same source and id) is skipped, so an
interrupted import is simply run again. A post whose text is a near copy of one seen in the
days around it (a repost, a copy-paste campaign) is stored but marked ``duplicate_of`` the first,
so counts of *voices* and counts of *posts* can both be read.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from itertools import islice

import duckdb
import pandas as pd
import pyarrow as pa
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from civicpulse.core import analytics
from civicpulse.lake import parquet
from civicpulse.opinion.models import IngestBatch, QuarantinedPost, Source
from civicpulse.opinion.records import MAX_TEXT, RawPost, Refusal
from civicpulse.opinion.scoring import scorer
from civicpulse.text.fingerprint import NearDuplicateIndex

TABLE = "posts"
CHUNK = 20_000
NEAR_DAYS = 2  # a copy is looked for this many days either side
MAX_FUTURE = timedelta(minutes=10)  # clocks differ; a post from tomorrow is an error

SCHEMA = pa.schema(
    [
        ("post_key", pa.string()),
        ("source", pa.string()),
        ("external_id", pa.string()),
        ("author_hash", pa.string()),
        ("text", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("url", pa.string()),
        ("reach", pa.int64()),
        ("reposts", pa.int64()),
        ("lon", pa.float64()),
        ("lat", pa.float64()),
        ("place", pa.string()),
        ("lang", pa.string()),
        ("sentiment", pa.float64()),
        ("simhash", pa.int64()),
        ("content_hash", pa.string()),
        ("duplicate_of", pa.string()),
        ("area_code", pa.string()),
        ("district_code", pa.string()),
        ("areas", pa.string()),
        ("rules", pa.string()),
        ("sensitive", pa.float64()),
        ("batch_id", pa.int64()),
        ("day", pa.string()),
    ]
)


def author_hash(source: str, author: str) -> str:
    """A keyed hash: the same author of a source is recognisable across posts, but the name
    cannot be recovered by hashing a list of known handles without the installation's key."""
    if not author:
        return ""
    key = hashlib.sha256(("posts-author:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, f"{source}\x1f{author}".encode(), hashlib.sha256).hexdigest()[:32]


def local_day(moment) -> str:
    return timezone.localtime(moment).date().isoformat()


def check(post: RawPost) -> Refusal | None:
    """Why a post cannot be stored, or None."""
    def refuse(field: str, reason: str) -> Refusal:
        return Refusal(post.line, reason, field, post.text[:2000] if post.text else "")

    if not post.external_id or len(post.external_id) > 200:
        return refuse("id", "a post needs an id of at most 200 characters")
    if not post.text or not post.text.strip():
        return refuse("text", "the post has no text")
    if len(post.text) > MAX_TEXT:
        return refuse("text", f"the text is longer than {MAX_TEXT:,} characters")
    if post.created_at is None or timezone.is_naive(post.created_at):
        return refuse("created_at", "the time must carry its time zone")
    if post.created_at > timezone.now() + MAX_FUTURE:
        return refuse("created_at", "the post is dated in the future")
    for name in ("reach", "reposts"):
        value = getattr(post, name)
        if not isinstance(value, int) or value < 0:
            return refuse(name, f"{name} must be a whole number of at least 0")
    if (post.lon is None) != (post.lat is None):
        return refuse("lat", "give both lon and lat, or neither")
    if post.lon is not None:
        if not (math.isfinite(post.lon) and math.isfinite(post.lat)):
            return refuse("lat", "lon and lat must be numbers")
        if not (-180 <= post.lon <= 180 and -90 <= post.lat <= 90):
            return refuse("lat", "lat must be within ±90 and lon within ±180")
    if len(post.url) > 500:
        return refuse("url", "the address is longer than 500 characters")
    return None


def store(
    source: Source,
    items: Iterable[RawPost | Refusal],
    *,
    name: str,
    progress: bool = False,
    total: int | None = None,
) -> IngestBatch:
    """Take posts from one channel into the lake; refusals and bad posts go to quarantine.

    Each chunk of posts is appended before the next is read, so a crash loses at most the chunk
    in hand, and running the same input again stores only what is missing.
    """
    batch = IngestBatch.objects.create(source=source, name=name[:500], started_at=timezone.now())
    bar = tqdm(total=total, unit="post", desc=f"posts from {source.name}", disable=not progress)
    near = _NearCopies()
    try:
        stream = iter(items)
        while chunk := list(islice(stream, CHUNK)):
            _take_chunk(batch, source, chunk, near)
            bar.update(len(chunk))
    finally:
        bar.close()
    batch.finished_at = timezone.now()
    batch.committed = True
    batch.save()
    return batch


def _take_chunk(
    batch: IngestBatch, source: Source, chunk: list[RawPost | Refusal], near: _NearCopies
) -> None:
    refusals: list[Refusal] = []
    fresh: list[RawPost] = []
    seen: set[str] = set()
    for item in chunk:
        if isinstance(item, Refusal):
            refusals.append(item)
            continue
        item.source = source.name
        problem = check(item)
        if problem is not None:
            refusals.append(problem)
        elif item.key in seen:
            batch.duplicates += 1
        else:
            seen.add(item.key)
            fresh.append(item)
    batch.rows_read += len(chunk)
    stored = _stored_keys(fresh)
    new = [p for p in fresh if p.key not in stored]
    batch.duplicates += len(fresh) - len(new)
    if new:
        table, copies = _to_table(batch, new, near)
        analytics.registry().append(
            TABLE,
            table,
            partition_by=["day"],
            description="Public posts, scored on the way in, by local day",
        )
        batch.accepted += len(new)
        batch.near_duplicates += copies
    with transaction.atomic():
        QuarantinedPost.objects.bulk_create(
            QuarantinedPost(
                batch=batch, line=r.line, field=r.field[:100], reason=r.reason[:300],
                raw=r.raw[:2000],
            )
            for r in refusals
        )
        batch.quarantined += len(refusals)
        batch.save()


def _to_table(batch: IngestBatch, posts: list[RawPost], near: _NearCopies) -> tuple[pa.Table, int]:
    scores = scorer().score(posts)
    days = [local_day(p.created_at) for p in posts]
    near.load(days)
    duplicate_of = []
    for post, fp, day in zip(posts, scores.simhash, days, strict=True):
        original = near.find(fp, day)
        duplicate_of.append(original or "")
        if original is None:
            near.add(post.key, fp, day)
    columns = {
        "post_key": [p.key for p in posts],
        "source": [p.source for p in posts],
        "external_id": [p.external_id for p in posts],
        "author_hash": [author_hash(p.source, p.author) for p in posts],
        "text": [p.text for p in posts],
        "created_at": [p.created_at for p in posts],
        "url": [p.url for p in posts],
        "reach": [p.reach for p in posts],
        "reposts": [p.reposts for p in posts],
        "lon": [p.lon for p in posts],
        "lat": [p.lat for p in posts],
        "place": [p.place for p in posts],
        "lang": scores.lang,
        "sentiment": scores.sentiment,
        "simhash": scores.simhash,
        "content_hash": scores.content_hash,
        "duplicate_of": duplicate_of,
        "area_code": scores.area_code,
        "district_code": scores.district_code,
        "areas": scores.areas,
        "rules": scores.rules,
        "sensitive": scores.sensitive,
        "batch_id": [batch.pk] * len(posts),
        "day": days,
    }
    copies = sum(1 for d in duplicate_of if d)
    return pa.table(columns, schema=SCHEMA), copies


class _NearCopies:
    """Fingerprints of the days a batch touches (and the days around them), loaded from the
    lake once per day and kept for the rest of the batch."""

    def __init__(self) -> None:
        self.index: dict[str, NearDuplicateIndex] = {}

    def load(self, days: Sequence[str]) -> None:
        wanted = set()
        for day in set(days):
            d = date.fromisoformat(day)
            around = range(-NEAR_DAYS, NEAR_DAYS + 1)
            wanted.update((d + timedelta(days=k)).isoformat() for k in around)
        missing = sorted(wanted - self.index.keys())
        for day in missing:
            self.index[day] = NearDuplicateIndex()
        found = query(missing, "SELECT post_key, simhash, day FROM posts WHERE duplicate_of = ''")
        for key, fp, day in found:
            self.index[day].add(key, fp)

    def find(self, fp: int, day: str) -> str | None:
        d = date.fromisoformat(day)
        for k in range(-NEAR_DAYS, NEAR_DAYS + 1):
            index = self.index.get((d + timedelta(days=k)).isoformat())
            if index is not None and (hit := index.find(fp)) is not None:
                return hit
        return None

    def add(self, key: str, fp: int, day: str) -> None:
        self.index[day].add(key, fp)


def _stored_keys(posts: list[RawPost]) -> set[str]:
    if not posts:
        return set()
    days = sorted({local_day(p.created_at) for p in posts})
    keys = [p.key for p in posts]
    found: set[str] = set()
    for start in range(0, len(keys), 5000):
        part = keys[start : start + 5000]
        found.update(
            k
            for (k,) in query(
                days, "SELECT post_key FROM posts WHERE post_key IN (SELECT unnest(?))", [part]
            )
        )
    return found


def day_files(days: Iterable[str], table: str = TABLE) -> list[str]:
    """The Parquet files of the given days in the current version of the posts table (or of
    another table partitioned by ``day``, such as the hot issues' membership)."""
    root = parquet.current_path(settings.CONFIG.lake_dir, table)
    if root is None:
        return []
    files = []
    for day in days:
        directory = root / f"day={day}"
        if directory.is_dir():
            files.extend(str(p) for p in sorted(directory.glob("part-*.parquet")))
    return files


def filters(source: str, area_codes: Sequence[str] | None) -> tuple[str, dict]:
    """SQL conditions (each ANDed, as `` AND (...)``) and their named parameters for a source
    and a set of areas (None: every area; empty: none). A post's ``areas`` column holds its area
    and every ancestor as ``|code|name|...|``, so a district's code finds its streets' posts."""
    clauses, params = [], {}
    if source:
        clauses.append("source = $source")
        params["source"] = source
    if area_codes is not None:
        if not area_codes:
            clauses.append("false")
        else:
            names = [f"area{k}" for k in range(len(area_codes))]
            clauses.append(" OR ".join(f"contains(areas, ${n})" for n in names))
            params.update({n: f"|{code}|" for n, code in zip(names, area_codes, strict=True)})
    return "".join(f" AND ({c})" for c in clauses), params


def query(days: Iterable[str], sql: str, params: Sequence | Mapping | None = None) -> list[tuple]:
    """Run ``sql`` over the posts of the given local days, which it reads as the table ``posts``.

    Reading only the days' partitions is what keeps the watch cheap however long the history
    grows. With no posts on those days ``posts`` is an empty table of the same columns, so
    callers need no special case; ``day`` is always text (DuckDB would guess a date)."""
    with _posts_view(days) as con:
        return con.execute(sql, params or []).fetchall()


def query_frame(
    days: Iterable[str], sql: str, params: Sequence | Mapping | None = None
) -> pd.DataFrame:
    """:func:`query` as a DataFrame (with its columns even when empty)."""
    with _posts_view(days) as con:
        return con.execute(sql, params or []).df()


@contextmanager
def _posts_view(days: Iterable[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    files = day_files(days)
    con = duckdb.connect()
    try:
        if files:
            # The file names are the lake's own (not user input); quoted as SQL strings because
            # a view cannot take bound parameters.
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(
                f"CREATE TEMP VIEW posts AS SELECT * FROM read_parquet([{listing}], "
                "hive_partitioning = true, hive_types = {'day': VARCHAR})"
            )
        else:
            con.register("posts", SCHEMA.empty_table())
        yield con
    finally:
        con.close()
