"""The watch: every worker cycle, each saved rule is an event whose indicators are measured over
the last window of posts, and each service's requests per district are checked for a burst above
their seasonal baseline. Verdicts go through :mod:`civicpulse.opinion.warnings`.

Hot issues are measured by :mod:`civicpulse.opinion.issues`, which clusters text and so runs less
often; rules are cheap (their matches were stored with each post), so a post that pushes a rule
over a threshold raises its warning within one cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
from django.utils import timezone

from civicpulse.cases import services as cases
from civicpulse.opinion import posts, warnings
from civicpulse.opinion.models import Rule
from civicpulse.signals import burst
from civicpulse.signals.warning import Indicators
from civicpulse.text import rules as rule_language
from civicpulse.text.sentiment import NEGATIVE

WINDOW = timedelta(hours=24)
HISTORY_DAYS = 60  # daily series behind a rule's burst score
SERVICE_HISTORY_DAYS = 800  # two winters and a bit: the seasonal baseline needs last year
EVIDENCE = 10

FRAME_COLUMNS = (
    "post_key, source, text, url, author_hash, created_at, reach, reposts, sentiment, "
    "district_code, rules, sensitive, duplicate_of"
)


def days_between(start: datetime, end: datetime) -> list[str]:
    first, last = timezone.localtime(start).date(), timezone.localtime(end).date()
    return [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]


def frame(since: datetime, until: datetime, where: str = "", params=()) -> pd.DataFrame:
    """Posts created in [since, until) as a DataFrame (empty with the columns when none)."""
    files = posts.day_files(days_between(since, until))
    if not files:
        return pd.DataFrame(columns=[c.strip() for c in FRAME_COLUMNS.split(",")])
    sql = (
        f"SELECT {FRAME_COLUMNS} FROM read_parquet(?, hive_partitioning = true) "
        "WHERE created_at >= ? AND created_at < ?"
    )
    if where:
        sql += f" AND ({where})"
    con = duckdb.connect()
    try:
        return con.execute(sql, [files, since, until, *params]).df()
    finally:
        con.close()


def indicators_of(
    window: pd.DataFrame, previous: int, now: datetime, *, open_cases: int = 0,
    burst_score: float = 0.0,
) -> Indicators:
    """The indicator system's numbers for one event's posts in the window."""
    volume = len(window)
    if volume == 0:
        return Indicators(growth=0.0, open_cases=open_cases, burst_score=burst_score)
    last_hour = window["created_at"] >= pd.Timestamp(now - timedelta(hours=1))
    districts = window["district_code"].replace("", pd.NA).dropna().nunique()
    return Indicators(
        volume=float(volume),
        growth=(volume + 1.0) / (previous + 1.0),
        negative_share=float((window["sentiment"] < NEGATIVE).mean()),
        reach=float(window["reach"].sum()),
        spread_speed=float(last_hour.sum()),
        sensitive=float(window["sensitive"].sum()),
        breadth=float(districts),
        open_cases=float(open_cases),
        burst_score=float(burst_score),
    )


def evidence_of(window: pd.DataFrame, n: int = EVIDENCE) -> list[dict]:
    """The originals (not the copies) that reached the most people."""
    originals = window[window["duplicate_of"] == ""]
    top = originals.nlargest(n, "reach") if len(originals) else originals
    return [
        {
            "post_key": row.post_key,
            "source": row.source,
            "text": row.text,
            "url": row.url,
            "author_hash": row.author_hash,
            "reach": int(row.reach),
            "sentiment": float(row.sentiment),
            "created_at": row.created_at.to_pydatetime(),
        }
        for row in top.itertuples()
    ]


def main_district(window: pd.DataFrame) -> str:
    codes = window["district_code"].replace("", pd.NA).dropna()
    return str(codes.mode().iloc[0]) if len(codes) else ""


def watch_rules(now: datetime | None = None) -> dict:
    """Assess every active rule as an event over the last window."""
    now = now or timezone.now()
    current = frame(now - WINDOW, now, "rules <> ''")
    before = frame(now - 2 * WINDOW, now - WINDOW, "rules <> ''")
    open_texts = cases.recent_cases(now - timedelta(days=14), now, open_only=True)
    raised = 0
    for rule in Rule.objects.filter(is_active=True).select_related("concern"):
        tag = f"|{rule.pk}|"
        mine = current[current["rules"].str.contains(tag, regex=False)]
        previous = int(before["rules"].str.contains(tag, regex=False).sum())
        if mine.empty and not _has_active(rule):
            continue
        parsed = rule_language.parse(rule.query)
        linked = sum(1 for c in open_texts if parsed.matches({"text": c["text"]}))
        series = rule_series(rule.pk, now)
        found = burst.assess_latest(series, key=f"rule:{rule.pk}") if len(series) else None
        ind = indicators_of(
            mine, previous, now, open_cases=linked, burst_score=found.score if found else 0.0
        )
        warning = warnings.apply(
            f"rule:{rule.pk}",
            title=f"{rule.concern.name}: {rule.name}",
            category=rule.concern.category,
            area_code=main_district(mine),
            indicators=ind,
            evidence=evidence_of(mine),
            now=now,
        )
        raised += warning is not None
    return {"rules": raised}


def _has_active(rule: Rule) -> bool:
    from civicpulse.opinion.models import Warning

    return Warning.objects.filter(
        event_key=f"rule:{rule.pk}", status=Warning.Status.ACTIVE
    ).exists()


def rule_series(rule_id: int, now: datetime) -> pd.Series:
    """Daily count of a rule's posts over the last ``HISTORY_DAYS`` (missing days are 0)."""
    start = now - timedelta(days=HISTORY_DAYS)
    files = posts.day_files(days_between(start, now))
    index = pd.date_range(timezone.localtime(start).date(), timezone.localtime(now).date())
    if not files:
        return pd.Series(0, index=index)
    con = duckdb.connect()
    try:
        rows = con.execute(
            "SELECT day, count(*) FROM read_parquet(?, hive_partitioning = true) "
            "WHERE contains(rules, ?) GROUP BY day",
            [files, f"|{rule_id}|"],
        ).fetchall()
    finally:
        con.close()
    counts = pd.Series({pd.Timestamp(d): n for d, n in rows}, dtype="int64")
    return counts.reindex(index, fill_value=0)


def watch_services(
    now: datetime | None = None, services: Iterable[str] | None = None
) -> dict:
    """Check each service's requests per district for a burst above the seasonal baseline: the
    usual winter rise of heating complaints is expected, an abnormal one is not."""
    now = now or timezone.now()
    # whole days only: a morning's few requests are not a day's
    now = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    since = now - timedelta(days=SERVICE_HISTORY_DAYS)
    names = cases.service_names()
    raised = 0
    for code in services or names:
        table = service_table(code, since, now)
        if table.empty:
            continue
        verdicts = burst.assess_group(table, key=f"service:{code}")
        for district in table.columns:
            found = verdicts.get(f"service:{code}:{district}")
            key = f"service:{code}:{district}"
            if found is None and not _active(key):
                continue
            ind = Indicators(
                volume=float(table[district].iloc[-7:].sum()),
                growth=float(found.ratio) if found else 1.0,
                breadth=1.0,
                open_cases=float(table[district].iloc[-1]),
                burst_score=float(found.score) if found else 0.0,
            )
            warning = warnings.apply(
                key, title=f"{names.get(code, code)} · {district}", category="service",
                area_code=district, indicators=ind, now=now,
            )
            raised += warning is not None
    return {"services": raised}


def _active(key: str) -> bool:
    from civicpulse.opinion.models import Warning

    return Warning.objects.filter(event_key=key, status=Warning.Status.ACTIVE).exists()


def service_table(code: str, since: datetime, until: datetime) -> pd.DataFrame:
    """Daily requests of one service: a row per local day, a column per district."""
    counts = cases.daily_counts(code, since, until)
    if not counts:
        return pd.DataFrame()
    series = pd.Series(counts)
    table = series.unstack(level=0, fill_value=0)
    table.index = pd.to_datetime(table.index)
    days = pd.date_range(
        date.fromisoformat(days_between(since, since)[0]), timezone.localtime(until).date()
    )
    return table.reindex(days, fill_value=0).drop(columns=[""], errors="ignore")
