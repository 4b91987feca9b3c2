"""Hot issues: the posts and citizen requests of the last two windows grouped by what they say,
each group matched to the issue it continues, measured and assessed as an event.

Clustering both windows together gives each issue its growth directly (members in this window
against members in the one before). Which issue each post belongs to is appended to the lake
table ``issue_posts``; the figures of every issue are then one aggregation over ``posts`` joined
with the latest assignment of each post (:func:`issue_figures`), the same on DuckDB or Spark.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import pandas as pd
import pyarrow as pa
from django.db import transaction
from django.utils import timezone

from civicpulse.cases import services as cases
from civicpulse.catalog import services as catalog
from civicpulse.core import analytics
from civicpulse.core.models import Area
from civicpulse.opinion import posts, warnings, watch
from civicpulse.opinion.models import Issue, Warning
from civicpulse.signals import burst, topics
from civicpulse.signals.warning import Indicators
from civicpulse.text.sentiment import NEGATIVE
from civicpulse.text.tokenize import tokens

WINDOW = timedelta(hours=24)
KEEP_ALIVE = timedelta(days=3)  # an issue not seen for this long is not matched any more
MAX_DOCS = 50_000
MEMBERSHIP = "issue_posts"
MEMBERSHIP_SCHEMA = pa.schema(
    [
        ("post_key", pa.string()),
        ("issue_id", pa.int64()),
        ("assigned_at", pa.timestamp("us", tz="UTC")),
        ("day", pa.string()),
    ]
)


def refresh(now: datetime | None = None, window: timedelta = WINDOW) -> dict:
    """Regroup, update the issues and assess each one; what changed, in numbers."""
    now = now or timezone.now()
    frame = watch.frame(now - 2 * window, now)
    frame = frame.sort_values("created_at", kind="stable").reset_index(drop=True)
    requests = cases.recent_cases(now - 2 * window, now)
    originals = frame[frame["duplicate_of"] == ""].tail(MAX_DOCS)
    texts = list(originals["text"]) + [c["text"] for c in requests]
    docs = [tokens(t) for t in texts]
    clusters = topics.cluster(docs) if docs else []
    live = {
        i.pk: [tuple(t) for t in i.terms]
        for i in Issue.objects.filter(last_seen__gte=now - KEEP_ALIVE)
    }
    matched = topics.match(clusters, live) if clusters else {}

    n_posts = len(originals)
    copies = frame[frame["duplicate_of"] != ""].groupby("duplicate_of")["post_key"].apply(list)
    post_row = {key: i for i, key in enumerate(frame["post_key"])}
    original_keys = list(originals["post_key"])
    assignments: list[tuple[str, int]] = []
    saved: list[tuple[Issue, pd.DataFrame, list[dict]]] = []
    for index, cluster in enumerate(clusters):
        members = [m for m in cluster.members if m < n_posts]
        keys = [original_keys[m] for m in members]
        keys += [c for k in keys for c in copies.get(k, [])]
        rows = frame.iloc[[post_row[k] for k in keys]] if keys else frame.iloc[[]]
        in_cases = [requests[m - n_posts] for m in cluster.members if m >= n_posts]
        issue = _save_issue(matched.get(index), cluster, rows, in_cases, now, window)
        if issue is None:
            continue
        saved.append((issue, rows, in_cases))
        assignments.extend((k, issue.pk) for k in keys)
    # membership first: an issue's daily series (its burst score) includes this window
    _append_membership(assignments, frame, now)
    if assignments:  # once per run: posts → their issues
        lineage = ("lake_table", posts.TABLE, posts.TABLE), ("lake_table", MEMBERSHIP, MEMBERSHIP)
        catalog.record_lineage(*lineage, "opinion.hot_issues", {"rows": len(assignments)})
    table = issue_table(now)
    elapsed = watch.day_elapsed(now)
    for issue, rows, in_cases in saved:
        found = None
        if issue.pk in table.columns:
            found = burst.assess_latest(table[issue.pk], key=f"issue:{issue.pk}", elapsed=elapsed)
        issue.burst_score = found.score if found else 0.0
        Issue.objects.filter(pk=issue.pk).update(burst_score=issue.burst_score)
        _assess(issue, rows, in_cases, now, window)
    seen = {issue.pk for issue, _, _ in saved}
    calmed = _calm_down(seen, now)
    return {"clusters": len(clusters), "issues": len(seen), "calmed": calmed}


def _save_issue(issue_id, cluster, rows: pd.DataFrame, in_cases: list[dict], now, window):
    current = rows[rows["created_at"] >= pd.Timestamp(now - window)]
    current_cases = [c for c in in_cases if c["created_at"] >= now - window]
    if len(current) + len(current_cases) == 0:
        return None  # an issue of the window before that is quiet now: nothing to say
    previous = len(rows) - len(current)
    volume = len(current) + len(current_cases)
    growth = (volume + 1.0) / (previous + len(in_cases) - len(current_cases) + 1.0)
    reach = int(current["reach"].sum())
    negative = float((current["sentiment"] < NEGATIVE).mean()) if len(current) else 0.0
    districts = sorted(
        set(current["district_code"]) | {c["district_code"] for c in current_cases} - {""}
    )
    main = watch.main_district(current)
    samples = list(current.nlargest(5, "reach")["post_key"]) if len(current) else []
    terms = [[t, float(w)] for t, w in cluster.terms]
    values = dict(
        signature=topics.signature(cluster.terms)[:300],
        label=cluster.label[:200],
        terms=terms,
        last_seen=now,
        posts=len(current),
        cases=len(current_cases),
        previous_posts=previous,
        growth=growth,
        reach=reach,
        negative_share=negative,
        areas=districts,
        area=Area.objects.filter(code=main).first() if main else None,
        heat=topics.heat(
            topics.Figures(size=volume, previous=previous, reach=reach, negative=negative)
        ),
        samples=samples,
    )
    with transaction.atomic():
        if issue_id is not None:
            Issue.objects.filter(pk=issue_id).update(**values)
            return Issue.objects.get(pk=issue_id)
        first = rows["created_at"].min() if len(rows) else now
        return Issue.objects.create(first_seen=_aware(first), **values)


def _aware(value) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value if timezone.is_aware(value) else timezone.make_aware(value)


def _assess(issue: Issue, rows: pd.DataFrame, in_cases: list[dict], now, window) -> None:
    current = rows[rows["created_at"] >= pd.Timestamp(now - window)]
    open_cases = sum(1 for c in in_cases if c["open"])
    ind = watch.indicators_of(
        current, issue.previous_posts, now, open_cases=open_cases, burst_score=issue.burst_score
    )
    ind.volume += issue.cases
    warnings.apply(
        f"issue:{issue.pk}",
        title=issue.label,
        indicators=ind,
        area_code=issue.area.code if issue.area_id else "",
        issue=issue,
        evidence=watch.evidence_of(current),
        now=now,
    )


def _calm_down(seen: set[int], now) -> int:
    """Assess issues with an active warning that fell silent, so their warnings step down."""
    quiet = Warning.objects.filter(
        status=Warning.Status.ACTIVE, event_key__startswith="issue:"
    ).exclude(issue_id__in=seen)
    n = 0
    for warning in quiet.select_related("issue"):
        warnings.apply(
            warning.event_key, title=warning.title, indicators=Indicators(), issue=warning.issue,
            now=now,
        )
        n += 1
    return n


def _append_membership(assignments: list[tuple[str, int]], frame: pd.DataFrame, now) -> None:
    if not assignments:
        return
    day_of = dict(zip(frame["post_key"], frame["created_at"], strict=True))
    table = pa.table(
        {
            "post_key": [k for k, _ in assignments],
            "issue_id": [i for _, i in assignments],
            "assigned_at": [now] * len(assignments),
            "day": [posts.local_day(_aware(day_of[k])) for k, _ in assignments],
        },
        schema=MEMBERSHIP_SCHEMA,
    )
    analytics.registry().append(
        MEMBERSHIP, table, partition_by=["day"],
        description="Which hot issue each post belongs to (latest assignment wins)",
    )


def issue_table(now: datetime) -> pd.DataFrame:
    """Daily posts of every issue over the last ``watch.HISTORY_DAYS`` (each post counted for
    the issue it was last assigned to): a row per local day, a column per issue id."""
    days = watch.days_between(now - timedelta(days=watch.HISTORY_DAYS), now)
    membership = posts.day_files(days, table=MEMBERSHIP)
    if not membership:
        return watch.daily_table([], days)
    rows = posts.query(
        days,
        # assignments made after ``now`` (a replay of the past) are not known yet at ``now``
        "WITH latest AS ("
        "  SELECT post_key, arg_max(issue_id, assigned_at) AS issue_id"
        "  FROM read_parquet(?, hive_partitioning = false) WHERE assigned_at <= ?"
        "  GROUP BY post_key"
        ") SELECT p.day, l.issue_id, count(*) FROM posts p JOIN latest l USING (post_key) "
        "WHERE p.created_at < ? GROUP BY ALL",
        [membership, now, now],
    )
    return watch.daily_table(rows, days)


def issue_figures(posts_table: ibis.Table, membership: ibis.Table, since, until) -> ibis.Table:
    """Per issue over [since, until): posts, voices (originals), reach, negative share, areas
    touched and first/last post — the recompute the cockpit and the benchmarks run."""
    latest = membership.group_by("post_key").aggregate(
        issue_id=membership.issue_id.argmax(membership.assigned_at)
    )
    p = posts_table.filter(
        (posts_table.created_at >= since) & (posts_table.created_at < until)
    )
    joined = p.join(latest, "post_key")
    return joined.group_by("issue_id").aggregate(
        posts=joined.count(),
        voices=(joined.duplicate_of == "").sum(),
        reach=joined.reach.sum(),
        negative_share=(joined.sentiment < NEGATIVE).mean(),
        districts=joined.district_code.nunique(),
        first=joined.created_at.min(),
        last=joined.created_at.max(),
    )
