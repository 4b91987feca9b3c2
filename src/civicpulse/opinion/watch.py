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

import pandas as pd
from django.utils import timezone
from django.utils.translation import gettext as _

from civicpulse.cases import services as cases
from civicpulse.opinion import posts, warnings
from civicpulse.opinion.models import Rule
from civicpulse.signals import burst
from civicpulse.signals.warning import Indicators
from civicpulse.text import rules as rule_language
from civicpulse.text.sentiment import NEGATIVE

WINDOW = timedelta(hours=24)
HISTORY_DAYS = 60  # daily series behind a rule's, an area's or an issue's burst score
PROFILE_DAYS = 14  # whole days behind the time-of-day profile of posts
PROFILE_MIN_POSTS = 200
MIN_ELAPSED = 0.05  # just after midnight a day's expectation is not scaled to nothing
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
    sql = f"SELECT {FRAME_COLUMNS} FROM posts WHERE created_at >= ? AND created_at < ?"
    if where:
        sql += f" AND ({where})"
    return posts.query_frame(days_between(since, until), sql, [since, until, *params])


def day_elapsed(now: datetime) -> float:
    """The share of a usual day's posts that has come in by ``now``'s time of day.

    A burst check on the running day compares a part of a day with whole days; scaling the
    expectation by the clock would be wrong, because posts come mostly by day (a third of the
    clock at 8:00 is far less than a third of the posts). The share is read off the last
    ``PROFILE_DAYS`` whole days; with too few posts to tell, the clock's share is used."""
    local = timezone.localtime(now)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since = midnight - timedelta(days=PROFILE_DAYS)
    offset = local.utcoffset().total_seconds() if local.utcoffset() else 0.0
    clock = (local - midnight).total_seconds()
    ((before, total),) = posts.query(
        days_between(since, midnight - timedelta(seconds=1)),
        "SELECT count_if((epoch(created_at) + ?) % 86400 < ?), count(*) FROM posts "
        "WHERE created_at >= ? AND created_at < ?",
        [offset, clock, since, midnight],
    )
    share = before / total if total >= PROFILE_MIN_POSTS else clock / 86400
    return min(1.0, max(MIN_ELAPSED, share))


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
    table = rule_table(now)
    elapsed = day_elapsed(now)
    raised = 0
    for rule in Rule.objects.filter(is_active=True).select_related("concern"):
        tag = f"|{rule.pk}|"
        mine = current[current["rules"].str.contains(tag, regex=False)]
        previous = int(before["rules"].str.contains(tag, regex=False).sum())
        if mine.empty and not _has_active(rule):
            continue
        parsed = rule_language.parse(rule.query)
        linked = sum(1 for c in open_texts if parsed.matches({"text": c["text"]}))
        found = None
        if rule.pk in table.columns:
            found = burst.assess_latest(table[rule.pk], key=f"rule:{rule.pk}", elapsed=elapsed)
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
    table = rule_table(now)
    if rule_id in table.columns:
        return table[rule_id]
    return pd.Series(0, index=table.index, dtype="int64")


def rule_table(now: datetime) -> pd.DataFrame:
    """Daily posts of every rule over the last ``HISTORY_DAYS``: a row per local day (missing
    days 0), a column per rule id, from one scan of those days (each post carries the ids of
    the rules it matched)."""
    start = now - timedelta(days=HISTORY_DAYS)
    days = days_between(start, now)
    rows = posts.query(
        days,
        "SELECT day, CAST(rule AS BIGINT), count(*) FROM ("
        "  SELECT day, unnest(string_split(rules, '|')) AS rule FROM posts"
        "  WHERE rules <> '' AND created_at < ?"  # a replay must not see the day's later posts
        ") WHERE rule <> '' GROUP BY ALL",
        [now],
    )
    return daily_table(rows, days)


def daily_table(rows: Iterable[tuple], days: list[str]) -> pd.DataFrame:
    """(day, member, count) rows as a table: a row per day of ``days``, a column per member."""
    index = pd.to_datetime(days)
    frame = pd.DataFrame(rows, columns=["day", "member", "n"])
    if frame.empty:
        return pd.DataFrame(index=index, dtype="int64")
    table = frame.pivot_table(index="day", columns="member", values="n", aggfunc="sum")
    table.index = pd.to_datetime(table.index)
    return table.reindex(index, fill_value=0).fillna(0).astype("int64")


def area_table(now: datetime) -> pd.DataFrame:
    """Daily posts per district over the last ``HISTORY_DAYS``, a column per district code."""
    start = now - timedelta(days=HISTORY_DAYS)
    days = days_between(start, now)
    rows = posts.query(
        days,
        "SELECT day, district_code, count(*) FROM posts "
        "WHERE district_code <> '' AND created_at < ? GROUP BY ALL",
        [now],
    )
    return daily_table(rows, days)


def watch_areas(now: datetime | None = None) -> dict:
    """Posts per district against the other districts and their own recent level: a district
    that suddenly talks far more than usual is an event even when no rule names its topic.

    A district whose posts are already the subject of an active rule or issue warning is not
    warned of twice (one event, one warning); its own warning, once open, is still assessed so
    that it steps down."""
    now = now or timezone.now()
    table = area_table(now)
    if table.empty or not len(table.columns):
        return {"areas": 0}
    verdicts = burst.assess_group(table, key="area", elapsed=day_elapsed(now))
    covered = _covered_districts()
    current = frame(now - WINDOW, now, "district_code <> ''")
    before = frame(now - 2 * WINDOW, now - WINDOW, "district_code <> ''")
    names = _area_names(table.columns)
    raised = 0
    for district in table.columns:
        key = f"area:{district}"
        found = verdicts.get(district)
        active = _active(key)
        if not active and (found is None or district in covered):
            continue
        mine = current[current["district_code"] == district]
        previous = int((before["district_code"] == district).sum())
        ind = indicators_of(mine, previous, now, burst_score=found.score if found else 0.0)
        warning = warnings.apply(
            key,
            title=f"{names.get(district, district)} · " + _("posts far above usual"),
            category="area",
            area_code=district,
            indicators=ind,
            evidence=evidence_of(mine),
            now=now,
        )
        raised += warning is not None
    return {"areas": raised}


def _covered_districts() -> set[str]:
    from civicpulse.opinion.models import Warning

    return set(
        Warning.objects.filter(status=Warning.Status.ACTIVE, area__isnull=False)
        .exclude(event_key__startswith="area:")
        .values_list("area__code", flat=True)
    )


def _area_names(codes: Iterable[str]) -> dict[str, str]:
    from civicpulse.core.models import Area

    return {area.code: area.name for area in Area.objects.filter(code__in=list(codes))}


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
        places = _area_names(table.columns)
        for district in table.columns:
            found = verdicts.get(district)  # keyed by member; the Burst's key is the full one
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
                key, title=f"{names.get(code, code)} · {places.get(district, district)}",
                category="service",
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
