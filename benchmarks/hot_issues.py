"""Hot issues on real data: the TipDM 2020 message board (hot-issue mining was that contest's
task) and Weibo posts of January-April 2020, with the clustering's speed beside a baseline.

    .venv/bin/python -m benchmarks.hot_issues [--no-write] [--per-day 20000] [--days N]
                                              [--benchmarks-section]

Reads ../shared/data in place (never copies it) and writes docs/hot-issues.md (with
``--benchmarks-section``, also the "Hot issues" section of docs/benchmarks.md). Takes several
minutes: jieba tokenizes some 600,000 Weibo posts (a bar shows the progress). The process is
pinned to one CPU, as the clustering is meant to run on one core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads its maths library

import argparse  # noqa: E402
import csv  # noqa: E402
import gzip  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import date, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks.report import machine, one_core, table, write_section  # noqa: E402
from civicpulse.signals import topics  # noqa: E402
from civicpulse.text.tokenize import tokens  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "zh"
TIPDM = SHARED / "tipdm2020_gov_messages_hot_topics_4326.csv.gz"
WEIBO = SHARED / "covid19_weibo_unlabeled_daily_2020.csv.gz"
SEED = 2020
# A day's growth is shown only when it and the day before hold this many posts.
MIN_DAY_POSTS = 5_000
# An event's issue is called visible when it is among its day's this many largest issues.
EVENT_TOP = 20

# Place-like names for the cohesion check: two characters before a place word ("丽发新城",
# "茶场村", "滨河苑"), not 路 closing a common noun (道路, 马路, 线路, ...). Crude on purpose,
# and the same for issues and for random groups.
PLACE_WORDS = (
    "小区|花园|新城|新村|家园|公寓|大厦|广场|苑|湾|城|村|镇|街道|社区|(?<![道马线铁公岔走跑])路|"
    "大道|中学|小学|学校|学院|幼儿园|医院|公园|市场|车站"
)
_PLACE = re.compile(rf"[\u4e00-\u9fff]{{2}}(?:{PLACE_WORDS})")
_NOT_A_NAME = re.compile(r"[的在条这那个了我你他们]")
_HASHTAG = re.compile(r"#([^#\s]{2,40})#")

# Real events of the period, checked after the fact (the clustering never sees these words).
EVENTS = (
    ("2020-01-23", "Wuhan's lockdown (封城)", ("封城",)),
    ("2020-02-06", "Dr Li Wenliang's death (李文亮)", ("李文亮",)),
    ("2020-02-12", "Hubei counts clinically diagnosed cases: +14,840 (临床诊断)", ("14840",)),
    ("2020-01-20", "Zhong Nanshan: spreads between people (人传人)", ("人传人",)),
    ("2020-03-11", "WHO calls a pandemic (大流行)", ("大流行",)),
)


def _most_common(counts: Counter) -> tuple[str, int]:
    """The most common key, ties broken by the key (sets iterate in a per-process order)."""
    return max(counts.items(), key=lambda kv: (kv[1], kv[0]))




# ------------------------------------------------------------------------------ TipDM


@dataclass
class Message:
    user: str
    subject: str
    time: datetime
    details: str
    likes: int


def _when(text: str) -> datetime:
    for fmt in ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d"):
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise ValueError(f"{TIPDM.name}: unreadable 留言时间 {text!r}")


def read_tipdm() -> list[Message]:
    with gzip.open(TIPDM, "rt", encoding="utf-8", newline="") as f:
        return [
            Message(
                r["留言用户"],
                r["留言主题"] or "",
                _when(r["留言时间"]),
                r["留言详情"] or "",
                int(r["点赞数"] or 0),
            )
            for r in csv.DictReader(f)
        ]


def _places(text: str) -> set[str]:
    return set(_PLACE.findall(text))


class PlaceCheck:
    """Share of an issue's messages that name its most named place, beside random groups of
    the same size. A name counts only if its two leading characters are followed by a place
    word in at least half of their uses in the whole file (丽发 nearly always, 我们 or 安置
    rarely) and hold no function word (的, 这, 我们, ...)."""

    def __init__(self, messages: list[Message], seed: int = SEED):
        texts = [m.subject + "。" + m.details for m in messages]
        places = [_places(t) for t in texts]
        everything = "\n".join(texts)
        as_place = Counter(p[:2] for p in _PLACE.findall(everything))
        names = {
            p
            for p in set().union(*places)
            if not _NOT_A_NAME.search(p[:2]) and as_place[p[:2]] >= 0.5 * everything.count(p[:2])
        }
        self.places = [s & names for s in places]
        self.subject_places = [_places(m.subject) & names for m in messages]
        self.rng = np.random.default_rng(seed)

    def top(self, members: list[int]) -> tuple[str | None, float]:
        counts = Counter(p for i in members for p in self.places[i])
        if not counts:
            return None, 0.0
        place, n = _most_common(counts)
        return place, n / len(members)

    def share(self, members: list[int]) -> float:
        return self.top(members)[1]

    def random_share(self, size: int, draws: int = 30) -> float:
        n = len(self.places)
        return float(
            np.mean(
                [self.share(list(self.rng.choice(n, size, replace=False))) for _ in range(draws)]
            )
        )

    def recall(self, members: list[int], place: str) -> tuple[int, int]:
        """Of the messages naming ``place`` in their subject, how many the issue holds."""
        naming = {i for i, s in enumerate(self.subject_places) if place in s}
        return len(naming & set(members)), len(naming)


def _busiest(times: list[datetime], days: int = 30) -> tuple[int, int, datetime]:
    """The most messages within ``days`` days, the count in the ``days`` days before that
    span, and the span's start."""
    ts = sorted(times)
    span = timedelta(days=days)
    best, start = 0, ts[0]
    for i, t in enumerate(ts):
        n = int(np.searchsorted(ts, t + span, side="left")) - i
        if n > best:
            best, start = n, t
    before = sum(1 for t in ts if start - span <= t < start)
    return best, before, start


def _median_cosine(docs: list[list[str]], rows: list[int]) -> float:
    """Median TF-IDF cosine (sublinear counts, IDF over all ``docs``) between pairs of
    ``rows``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True).fit_transform(docs)[rows]
    sims = (x @ x.T).toarray()
    return float(np.median(sims[np.triu_indices(len(rows), k=1)]))


def tipdm_docs(messages: list[Message], subject_weight: int) -> list[list[str]]:
    out = []
    for m in tqdm(messages, desc="TipDM tokens", unit="msg", leave=False):
        subject = tokens(m.subject, "zh")
        out.append(subject * subject_weight + tokens(m.details, "zh"))
    return out


def tipdm_report(messages: list[Message]) -> tuple[list[str], dict]:
    check = PlaceCheck(messages)
    variants = []
    for weight, what in ((1, "subject + details"), (2, "subject twice + details")):
        docs = tipdm_docs(messages, weight)
        kept_docs = docs
        started = time.perf_counter()
        issues = topics.cluster(docs)
        took = time.perf_counter() - started
        top = issues[:15]
        variants.append(
            (
                what,
                issues,
                took,
                float(np.mean([check.share(c.members) for c in top])),
                float(np.mean([check.random_share(c.size) for c in top])),
                float(np.mean([check.share(c.members) for c in issues])),
            )
        )
    what, issues, _took, *_ = variants[1]

    scored = []
    for c in issues:
        ms = [messages[i] for i in c.members]
        busiest, before, start = _busiest([m.time for m in ms])
        users = len({m.user for m in ms})
        likes = sum(m.likes for m in ms)
        figures = topics.Figures(size=busiest, previous=before, reach=likes + users)
        scored.append((topics.heat(figures), c, ms, busiest, before, start, users, likes))
    scored.sort(key=lambda s: -s[0])

    lines = [
        "## 1. TipDM 2020 message board (4,326 messages)",
        "",
        f"Source: `{TIPDM.name}` (TipDM Cup 2020, problem C, attachment 3: messages to a "
        "city's leaders, 2017-06 to 2020-01, with likes). The contest asked for hot issues: "
        "the messages about one problem at one place within a period, ranked by heat.",
        "",
        "Each message is tokenized (jieba) as its subject and details and clustered in one "
        f"window with the defaults (threshold {topics.THRESHOLD}, min_size 3). Issues are "
        "ranked with `topics.heat`: *size* = messages in the issue's busiest 30 days, "
        "*previous* = messages in the 30 days before them (so an issue spread thinly over two "
        "years is cooler than one that broke out in a month: the time concentration), "
        "*reach* = likes + distinct authors, *negative* = 0 (every message here is a "
        "complaint or a request).",
        "",
        "| text clustered | issues | messages in issues | place share, top 15 | same, random "
        "groups of those sizes | place share, all issues | time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {w} | {len(cs)} | {sum(c.size for c in cs):,} | {top:.2f} | {rand:.2f} | "
            f"{alls:.2f} | {took:.1f} s |"
            for w, cs, took, top, rand, alls in variants
        ],
        "",
        "*Place share*: the share of an issue's messages that name its most named place "
        "(two characters before a place word: 小区, 新城, 村, 路, 苑, ...; counted only when those "
        "two characters precede a place word in at least half of their uses in the file). "
        "The subject names the place and the problem in a few "
        "words while the details run to 350 characters on average, so the table below uses "
        f"the subject twice (*{what}*).",
        "",
        "### The hottest 15 issues",
        "",
        "| # | heat | label | messages (distinct texts) | authors | likes | first - last | "
        "peak week | busiest 30 days (30 days before) | place share | sample subjects |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, (h, c, ms, busiest, before, _start, users, likes) in enumerate(scored[:15], 1):
        distinct = len({(m.subject, m.details) for m in ms})
        times = sorted(m.time for m in ms)
        week = Counter(t.strftime("%G-W%V") for t in times).most_common(1)[0]
        subjects = [messages[c.center].subject]
        for m in ms:
            if m.subject not in subjects:
                subjects.append(m.subject)
            if len(subjects) == 3:
                break
        sample = " / ".join(s[:30].replace("|", "/") for s in subjects)
        place, share = check.top(c.members)
        lines.append(
            f"| {n} | {h:.1f} | {c.label} | {c.size} ({distinct}) | {users} | {likes:,} | "
            f"{times[0]:%Y-%m-%d} - {times[-1]:%Y-%m-%d} | {week[0]} ({week[1]}) | "
            f"{busiest} ({before}) | {share:.2f} {place or ''} | {sample} |"
        )
    lines += ["", "### Checking the top issues", ""]
    recall_rows = []
    facts: dict = {"top": [], "split": [], "one_author": [], "shared": []}
    facts["variants"] = [(w, top, rand) for w, _cs, _t, top, rand, _a in variants]
    for n, (_h, c, _ms, *_rest, users, _likes) in enumerate(scored[:15], 1):
        if users == 1 and c.size >= 10:
            facts["one_author"].append((n, c.label, c.size))
        place, share = check.top(c.members)
        if place is None:
            recall_rows.append(f"| {n} | {c.label} | - | - | - | {c.cohesion:.2f} |")
            continue
        held, naming = check.recall(c.members, place)
        others = sum(
            1 for o in issues if o is not c and check.recall(o.members, place)[0] > 0 and naming > 0
        )
        if n <= 2:
            facts["top"].append((n, c.label, place, share, held, naming))
        if others >= 2:
            facts["split"].append((n, place, held, naming, others))
            facts.setdefault("apart_place", place)
        recall_rows.append(
            f"| {n} | {c.label} | {place} | {share:.2f} | {held} of {naming}"
            f"{f' ({others} other issues hold some)' if others else ''} | {c.cohesion:.2f} |"
        )
    lines += [
        "| # | label | its most named place | share of its messages naming it | of the "
        "messages naming it in their subject, held here | cohesion (mean cosine to centroid) |",
        "| --- | --- | --- | --- | --- | --- |",
        *recall_rows,
        "",
    ]
    facts["apart"] = "no issue of the top 15 is split"
    if "apart_place" in facts:
        place = facts["apart_place"]
        naming = [i for i, p in enumerate(check.subject_places) if place in p]
        facts["apart"] = (
            f"a median pairwise cosine of {_median_cosine(kept_docs, naming):.2f} between the "
            f"{len(naming)} messages naming {place} in their subject"
        )
    top15 = [s[1] for s in scored[:15]]
    for a in range(len(top15)):
        for b in range(a + 1, len(top15)):
            common = set(top15[a].label.split(" · ")[:2]) & set(top15[b].label.split(" · ")[:2])
            if common:
                facts["shared"].append((a + 1, b + 1, sorted(common)))
    return lines, facts


# ------------------------------------------------------------------------------ Weibo


@dataclass
class DayIssue:
    """One cluster of one day, reduced to what the tracking needs."""

    terms: list[tuple[str, float]]
    label: str
    size: int
    users: int
    center: str
    cohesion: float
    tag: str | None
    tag_share: float
    hits: dict[str, float]


@dataclass
class Day:
    day: date
    posts: int
    sampled: int
    issues: list[DayIssue]
    seconds: float
    random_tag_share: float
    word_posts: dict[str, int]


def weibo_days(per_day: int, limit: int | None):
    """(date, texts, users) of each day of the file, as it streams (a day's rows are together
    in the file, though the days are not in order)."""
    with gzip.open(WEIBO, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        di, ui, ti = header.index("date"), header.index("userid"), header.index("text")
        current, texts, users, seen = None, [], [], 0
        for row in reader:
            if row[di] != current:
                if current is not None:
                    yield current, texts, users
                    seen += 1
                    if limit and seen >= limit:
                        return
                current, texts, users = row[di], [], []
            texts.append(row[ti])
            users.append(row[ui])
        if current is not None:
            yield current, texts, users


def cluster_day(day: date, texts: list[str], users: list[str], per_day: int, rng) -> Day:
    posts = len(texts)
    if posts > per_day:
        keep = np.sort(rng.choice(posts, per_day, replace=False))
        texts = [texts[i] for i in keep]
        users = [users[i] for i in keep]
    docs = [tokens(t, "zh") for t in texts]
    started = time.perf_counter()
    clusters = topics.cluster(docs)
    seconds = time.perf_counter() - started
    tags = [set(_HASHTAG.findall(t)) for t in texts]

    def tag_share(members) -> tuple[str | None, float]:
        counts = Counter(h for i in members for h in tags[i])
        if not counts:
            return None, 0.0
        tag, n = _most_common(counts)
        return tag, n / len(members)

    issues = []
    for c in clusters:
        tag, share = tag_share(c.members)
        hits = {
            word: sum(1 for i in c.members if word in texts[i]) / c.size
            for _d, _what, words in EVENTS
            for word in words
        }
        issues.append(
            DayIssue(
                c.terms,
                c.label,
                c.size,
                len({users[i] for i in c.members}),
                texts[c.center],
                c.cohesion,
                tag,
                share,
                hits,
            )
        )
    top = clusters[:30]
    random_share = float(
        np.mean([tag_share(rng.choice(len(texts), c.size, replace=False))[1] for c in top])
        if top
        else 0.0
    )
    words = {word for _d, _what, ws in EVENTS for word in ws}
    word_posts = {word: sum(1 for t in texts if word in t) for word in words}
    return Day(day, posts, len(texts), issues, seconds, random_share, word_posts)


@dataclass
class Issue:
    id: int
    terms: list[tuple[str, float]]
    days: dict[date, DayIssue] = field(default_factory=dict)
    per10k: dict[date, float] = field(default_factory=dict)
    heat: dict[date, float] = field(default_factory=dict)
    growth: dict[date, float] = field(default_factory=dict)


def track(
    days: list[Day], keep_days: int = 7, min_overlap: float = topics.MIN_OVERLAP
) -> tuple[list[Issue], list[tuple[DayIssue, DayIssue]]]:
    """Match each day's clusters to the issues seen in the ``keep_days`` before it. Returns
    the issues and each continuation (an issue's previous day, its new day)."""
    issues: list[Issue] = []
    continued: list[tuple[DayIssue, DayIssue]] = []
    previous_day: date | None = None
    for d in sorted(days, key=lambda d: d.day):
        live = {i.id: i.terms for i in issues if i.days and (d.day - max(i.days)).days <= keep_days}
        matched = topics.match([x.terms for x in d.issues], live, min_overlap=min_overlap)
        for k, x in enumerate(d.issues):
            issue_id = matched[k]
            if issue_id is None:
                issue = Issue(len(issues), x.terms)
                issues.append(issue)
            else:
                issue = issues[issue_id]
                issue.terms = x.terms  # the issue's words follow its latest day
                continued.append((issue.days[max(issue.days)], x))
            issue.days[d.day] = x
            size = 10_000 * x.size / d.sampled
            before = issue.per10k.get(previous_day, 0.0) if previous_day else 0.0
            issue.per10k[d.day] = size
            figures = topics.Figures(size=size, previous=before, reach=x.users)
            issue.heat[d.day] = topics.heat(figures)
            issue.growth[d.day] = (size + topics.GROWTH_SMOOTHING) / (
                before + topics.GROWTH_SMOOTHING
            )
        previous_day = d.day
    return issues, continued


def _held(x: DayIssue) -> bool:
    """A cluster held together by one hashtag: 80% of its posts carry it, and one of its two
    heaviest terms is part of it."""
    return bool(x.tag) and x.tag_share >= 0.8 and any(t in x.tag for t, _w in x.terms[:2])


def match_quality(days: list[Day]) -> tuple[list[str], tuple[float, float]]:
    """Precision and recall of ``topics.match`` between consecutive days, where the truth is
    known: two clusters held by the same hashtag on two consecutive days are one issue."""
    ordered = sorted(days, key=lambda d: d.day)
    pairs = [
        (a, b) for a, b in zip(ordered, ordered[1:], strict=False) if (b.day - a.day).days == 1
    ]
    rows = []
    for overlap in (0.2, 0.3, 0.4, 0.5, 0.6):
        tp = fp = fn = 0
        for a, b in pairs:
            found = topics.match(
                [x.terms for x in b.issues],
                {k: x.terms for k, x in enumerate(a.issues)},
                min_overlap=overlap,
            )
            truth = {
                (j, k)
                for j, y in enumerate(b.issues)
                if _held(y)
                for k, x in enumerate(a.issues)
                if _held(x) and x.tag == y.tag
            }
            said = {
                (j, k)
                for j, k in found.items()
                if k is not None and _held(b.issues[j]) and _held(a.issues[k])
            }
            tp, fp, fn = tp + len(said & truth), fp + len(said - truth), fn + len(truth - said)
        mark = " (default)" if overlap == topics.MIN_OVERLAP else ""
        if overlap == topics.MIN_OVERLAP:
            at_default = (tp / max(tp + fp, 1), tp / max(tp + fn, 1))
        rows.append(
            f"| {overlap}{mark} | {tp / max(tp + fp, 1):.2f} | {tp / max(tp + fn, 1):.2f} | "
            f"{tp} | {fp} | {fn} |"
        )
    return [
        f"Where the truth is known: over the {len(pairs)} pairs of consecutive days in the "
        "file, two clusters held together by one hashtag (80% of their posts carry it and one "
        "of their two heaviest terms is part of it) are the same issue when the hashtag is the "
        "same. `topics.match` of each day's clusters against the day before, scored on those "
        "clusters:",
        "",
        "| min_overlap | precision | recall | right | wrong | missed |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "A 'wrong' match may still be the same story under a new hashtag (广东启动一级响应 the "
        "day before 一级响应是什么), so precision is if anything understated.",
    ], at_default


def weibo_report(days: list[Day], per_day: int) -> tuple[list[str], dict]:
    issues, continued = track(days)
    ordered = sorted(days, key=lambda d: d.day)
    first_day = ordered[0].day
    all_days = {ordered[0].day + timedelta(n) for n in range((ordered[-1].day - first_day).days)}
    missing = sorted(all_days - {d.day for d in days})
    posts = sum(d.posts for d in days)
    sampled = sum(d.sampled for d in days)
    in_issues = sum(x.size for d in days for x in d.issues)
    persistent = [i for i in issues if len(i.days) >= 2]
    tag_share = np.mean([x.tag_share for d in days for x in d.issues[:30]])
    random_share = np.mean([d.random_tag_share for d in days])
    seconds = [d.seconds for d in days]

    def peak(i: Issue) -> date:
        return max(i.heat, key=lambda day: i.heat[day])

    def prev_day(day: date) -> date | None:
        earlier = [d.day for d in ordered if d.day < day]
        return max(earlier) if earlier else None

    posts_on = {d.day: d.posts for d in days}

    # rising: an issue's hottest day, counted only where the day before it is in the file and
    # both days hold a fair sample (the first days hold 133 and 580 posts)
    def rise_ok(i: Issue) -> bool:
        p, before = peak(i), prev_day(peak(i))
        return (
            before is not None
            and (p - before).days == 1
            and min(posts_on[p], posts_on[before]) >= MIN_DAY_POSTS
        )

    hottest = sorted(issues, key=lambda i: -i.heat[peak(i)])
    rising = [i for i in hottest if rise_ok(i)][:20]

    def sample(i: Issue) -> str:
        text = i.days[peak(i)].center.replace("|", "/").replace("\n", " ")
        return text[:60]

    lines = [
        f"## 2. Weibo, 2020-01-19 to 2020-04-07 ({posts:,} posts on {len(days)} days)",
        "",
        f"Source: `{WEIBO.name}`. Each day is one window: up to {per_day:,} of its posts "
        f"(a seeded sample; {sampled:,} in all) are tokenized and clustered with the defaults, "
        f"and each day's clusters are matched with `topics.match` (min_overlap "
        f"{topics.MIN_OVERLAP}) to the "
        "issues seen in the 7 days before, so an issue keeps its number from day to day. "
        "Size is counted per 10,000 of the day's posts (the file holds 133 to 22,632 posts a "
        "day, so raw counts would rise and fall with the collection); heat is `topics.heat` "
        "with *previous* = the issue's size on the previous day in the file and *reach* = "
        "distinct authors.",
        "",
        f"Days missing from the file ({len(missing)}): "
        + ", ".join(f"{d:%m-%d}" for d in missing)
        + ". A 'rise' is only counted where the day before is in the file.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| posts in an issue (of those clustered) | {in_issues / sampled:.0%} |",
        f"| issues a day (median) | {int(np.median([len(d.issues) for d in days]))} |",
        f"| issues tracked over the period | {len(issues):,} ({len(persistent):,} seen on 2 "
        "days or more) |",
        f"| share of a top-30 issue's posts carrying its most common hashtag | "
        f"{tag_share:.2f} (random posts, same sizes: {random_share:.2f}) |",
        f"| clustering time a day (median, max) | {np.median(seconds):.1f} s, "
        f"{max(seconds):.1f} s (one core; tokenizing not included) |",
        "",
        "### The issues that rose fastest",
        "",
        "Ranked by their heat on their hottest day; only issues whose hottest day follows a "
        f"day in the file, both days holding at least {MIN_DAY_POSTS:,} posts.",
        "",
        "| # | label | first seen | peak day | posts that day (per 10k) | x growth on the day "
        "before | days seen | its hashtag (share) | the post nearest its centre |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for n, i in enumerate(rising, 1):
        p = peak(i)
        x = i.days[p]
        tag = f"#{x.tag}# ({x.tag_share:.2f})" if x.tag else "-"
        lines.append(
            f"| {n} | {x.label} | {min(i.days):%m-%d} | {p:%m-%d} | {x.size} "
            f"({i.per10k[p]:.0f}) | {i.growth[p]:.1f} | {len(i.days)} | {tag} | {sample(i)} |"
        )
    lines += [
        "",
        "### The hottest issue of each day",
        "",
        "| day | posts | label | posts in it | its hashtag |",
        "| --- | --- | --- | --- | --- |",
    ]
    for d in ordered:
        best = max(
            (i for i in issues if d.day in i.heat), key=lambda i: i.heat[d.day], default=None
        )
        if best is None:
            lines.append(f"| {d.day:%m-%d} | {d.posts:,} | - | - | - |")
            continue
        x = best.days[d.day]
        lines.append(
            f"| {d.day:%m-%d} | {d.posts:,} | {x.label} | {x.size} | "
            f"{('#' + x.tag[:30] + '#') if x.tag else '-'} |"
        )
    match_lines, match_facts = match_quality(days)
    tagged = [(a, b) for a, b in continued if min(a.tag_share, b.tag_share) >= 0.5]
    same_tag = np.mean([a.tag == b.tag for a, b in tagged]) if tagged else 0.0
    shuffled = [b for _a, b in tagged]
    np.random.default_rng(SEED).shuffle(shuffled)
    random_tag = (
        np.mean([a.tag == b.tag for (a, _b), b in zip(tagged, shuffled, strict=True)])
        if tagged
        else 0.0
    )

    def lived_rows(chosen: list[Issue]) -> list[str]:
        rows = []
        for i in chosen:
            first, last, p = min(i.days), max(i.days), peak(i)
            x = i.days[p]
            tag = f"#{x.tag[:24]}# ({x.tag_share:.2f})" if x.tag else "-"
            rows.append(
                f"| {i.id} | {len(i.days)} | {first:%m-%d}: {i.days[first].label} | "
                f"{p:%m-%d}: {x.label} | {last:%m-%d}: {i.days[last].label} | {x.size} | "
                f"{x.users} | {tag} |"
            )
        return rows

    by_life = sorted(issues, key=lambda i: (-len(i.days), -max(i.per10k.values())))
    on_topic = [i for i in by_life if _held(i.days[peak(i)])]
    head = [
        "| issue | days seen | first day: label | peak day: label | last day: label | posts "
        "on its peak day | authors | its hashtag (share) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        "",
        "### Identity across days",
        "",
        f"{len(continued):,} times an issue was continued from an earlier day by "
        "`topics.match`. Where both days' clusters have a dominant hashtag (held by half their "
        f"posts or more; {len(tagged):,} continuations), it is the same hashtag in "
        f"{same_tag:.0%} of them (the same continuations paired at random: {random_tag:.0%}).",
        "",
        *match_lines,
        "",
        "The longest-lived issues, as they come:",
        "",
        *head,
        *lived_rows(by_life[:6]),
        "",
        "The longest-lived among issues held together by one hashtag on their peak day (as "
        "above: 80% of the posts carry it, and it holds one of the two heaviest terms):",
        "",
        *head,
        *lived_rows(on_topic[:8]),
    ]
    lines += ["", "### Real events of the period (checked, not tuned for)", ""]
    lines += [
        "An issue is about an event when at least half of its posts contain the event's "
        "words (looked up in the raw text after clustering; the clustering never sees them). "
        "For each event: the largest such issue in the week from the event's date, and the "
        "largest over the whole period.",
        "",
        "| event (date) | days of that week in the file | posts containing its words that "
        "week (of them in issues about it) | largest issue that week: day, label, posts, "
        "hashtag | issues about it, all period (days) | largest, all period |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    present = {d.day for d in days}
    by_day = {d.day: d for d in days}
    facts: dict = {"events": [], "match": match_facts}
    for when, what, words in EVENTS:
        start = date.fromisoformat(when)
        week = [start + timedelta(n) for n in range(7)]
        found = [
            (day, i, x)
            for i in issues
            for day, x in i.days.items()
            if any(x.hits.get(w, 0) >= 0.5 for w in words)
        ]
        in_week = [f for f in found if f[0] in week]
        there = ", ".join(f"{d:%m-%d}" for d in week if d in present) or "none"

        def show(f) -> str:
            day, _i, x = f
            tag = f" #{x.tag[:24]}#" if x.tag else ""
            return f"{day:%m-%d}, {x.label}, {x.size}{tag}"

        def size_rank(f) -> tuple[int, int]:
            day, _i, x = f
            sizes = sorted((y.size for y in by_day[day].issues), reverse=True)
            return sizes.index(x.size) + 1, len(sizes)

        def describe(f) -> str:
            day, _i, x = f
            tag = f", #{x.tag[:30]}#" if x.tag else ""
            return f"{x.label} ({x.size} posts on {day:%m-%d}{tag})"

        mentions = sum(d.word_posts.get(w, 0) for d in days if d.day in week for w in words)
        held = sum(round(f[2].size * max(f[2].hits.get(w, 0) for w in words)) for f in in_week)
        biggest = max(in_week, key=lambda f: f[2].size) if in_week else None
        facts["events"].append(
            (what, there, mentions, held, biggest and (size_rank(biggest), describe(biggest)))
        )
        lines.append(
            f"| {what} ({when}) | {there} | {mentions:,} ({held:,}) | "
            f"{show(max(in_week, key=lambda f: f[2].size)) if in_week else 'none'} | "
            f"{len({f[1].id for f in found})} ({len({f[0] for f in found})}) | "
            f"{show(max(found, key=lambda f: f[2].size)) if found else 'none'} |"
        )
    facts["templates"] = sum(not _held(i.days[peak(i)]) for i in by_life[:6])
    facts["tag_share"], facts["random_share"] = float(tag_share), float(random_share)
    facts["covered"] = in_issues / sampled
    return lines, facts


# ------------------------------------------------------------------------------ findings


def findings(tipdm: dict, weibo: dict) -> list[str]:
    """The headline findings, in words, from the figures of this run."""
    out = ["## What we see", ""]
    top = "; ".join(
        f"#{n} {label} holds {held} of the {naming} messages naming {place} in their subject "
        f"(place share {share:.2f})"
        for n, label, place, share, held, naming in tipdm["top"]
    )
    (_w1, top1, rand1), (w2, top2, rand2) = tipdm["variants"]
    out.append(
        f"- **TipDM: the two big complaints come first, whole.** {top}. Over the top 15 issues "
        f"{top2:.0%} of an issue's messages name its most named place, against {rand2:.0%} for "
        f"random groups of the same sizes ({top1:.0%} and {rand1:.0%} with the subject once)."
    )
    for n, label, size in tipdm["one_author"]:
        out.append(
            f"- **A campaign is not a crowd.** #{n} ({label}) is {size} templated requests "
            "from one author over the year (请加快…力度); its likes lift it into the top 15. "
            "Counting distinct authors in *reach* keeps it below the crowd complaints; a desk "
            "should show the author count beside the heat."
        )
    splits = "; ".join(
        f"{place}: {held} of {naming} in issue #{n}, the rest spread over {others} other issues"
        for n, place, held, naming, others in tipdm["split"]
    )
    shared = "; ".join(
        f"#{a} and #{b} share {', '.join(t)}" for a, b, t in tipdm["shared"] if a <= 15
    )
    if splits or shared:
        out.append(
            "- **Where it falls short: one place, several issues.** Long messages written in "
            "one's own words about the same shops or the same case sit far apart as TF-IDF "
            f"vectors ({tipdm['apart']}). "
            + (f"{splits}. " if splits else "")
            + (f"Top issues sharing a label term: {shared}." if shared else "")
        )
    tag, rand = weibo["tag_share"], weibo["random_share"]
    precision, recall = weibo["match"]
    out.append(
        f"- **Weibo: issues are the day's hashtags.** {weibo['covered']:.0%} of the posts fall "
        f"in an issue; in the 30 largest issues of a day {tag:.0%} of the posts carry the "
        f"issue's most common hashtag (random posts: {rand:.0%}), though the clustering never "
        "reads hashtags as such. Across consecutive days, `match` continues a hashtag's issue "
        f"with precision {precision:.2f} and recall {recall:.2f} (default min_overlap)."
    )
    out.append(
        f"- **The longest-lived 'issues' are spam.** {weibo['templates']} of the 6 longest-lived "
        "hold no common hashtag; their labels show fixed texts (aphorisms, ads, a lawsuit "
        "plea) re-posted daily under whatever "
        "hashtags trend: the same words every day, so identity holds, correctly, but a desk "
        "should drop issues whose posts come from few authors or carry no common hashtag."
    )
    for what, there, mentions, held, biggest in weibo["events"]:
        if biggest:
            (rank_, of), text = biggest
            where = (
                f"among the day's {EVENT_TOP} largest (#{rank_} of {of})"
                if rank_ <= EVENT_TOP
                else f"#{rank_} of the day's {of} issues by size, below its top {EVENT_TOP}"
            )
            verdict = f"the week's largest issue mostly mentioning it is {text}, {where}"
        else:
            verdict = "not found as an issue"
        days_note = f"file days that week: {there}" if there != "none" else "no day of that week"
        out.append(
            f"- **{what}**: {verdict} ({days_note}; {mentions:,} posts contain its words, "
            f"{held:,} of them in issues about it)."
        )
    out += [
        "- Mostly mentioning an event is not being about it: the labels tell (an issue of news "
        "digests or of video spam can mention an event in most of its posts). Days missing "
        "from the file (the lockdown's 22-23 January, 5-8 February around Dr Li's death) "
        "cannot show their events on the day.",
        "- Posts carrying a trending hashtag on an unrelated body (video spam, quotes) are "
        "common: they cluster by their body, which is right for the words but leaves the "
        "hashtag's count short of its reach. Where the hashtag itself is the issue, a caller can "
        "add it as one token.",
        "",
    ]
    return out


# ------------------------------------------------------------------------------ speed


def speed(docs: list[list[str]], texts: list[str]) -> list[tuple[str, str, str, str]]:
    """The clustering of a 50,000-post window beside TF-IDF vectorising alone (sklearn) and
    beside jieba tokenizing the same posts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    def best(fn, repeat=3):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    vectorise = best(
        lambda: TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True).fit_transform(docs)
    )
    clustering = best(lambda: topics.cluster(docs))
    tokenize = best(lambda: [tokens(t, "zh") for t in texts], repeat=1)
    n = len(docs)
    return [
        (
            f"cluster a window of {n:,} Weibo posts (token lists), 1 core",
            f"{clustering:.1f} s",
            f"TF-IDF vectorising alone (sklearn) {vectorise:.1f} s",
            f"{clustering / vectorise:.1f}x",
        ),
        (
            "the same, beside tokenizing those posts (jieba)",
            f"{clustering:.1f} s",
            f"jieba tokens {tokenize:.1f} s",
            f"{clustering / tokenize:.2f}x",
        ),
    ]


# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--per-day", type=int, default=20_000, help="Weibo posts a day, at most")
    parser.add_argument("--days", type=int, default=None, help="only the file's first N days")
    parser.add_argument(
        "--benchmarks-section",
        action="store_true",
        help='also write the "Hot issues" section of docs/benchmarks.md',
    )
    args = parser.parse_args()
    pinned = one_core()
    where = machine()
    tokens("暖气")  # jieba's dictionary loads outside any timing

    print("TipDM ...", flush=True)
    tipdm_lines, tipdm_facts = tipdm_report(read_tipdm())

    rng = np.random.default_rng(SEED)
    days: list[Day] = []
    speed_docs: list[list[str]] = []
    speed_texts: list[str] = []
    with tqdm(total=620_783, desc="Weibo posts", unit="post", smoothing=0.05) as bar:
        for day, texts, users in weibo_days(args.per_day, args.days):
            d = cluster_day(date.fromisoformat(day), texts, users, args.per_day, rng)
            days.append(d)
            bar.update(len(texts))
            bar.set_postfix(day=day, issues=len(d.issues), s=f"{d.seconds:.1f}")
            if len(speed_texts) < 50_000:
                speed_texts += texts[: 50_000 - len(speed_texts)]
    weibo_lines, weibo_facts = weibo_report(days, args.per_day)

    print("speed ...", flush=True)
    speed_docs = [tokens(t, "zh") for t in speed_texts]
    rows = speed(speed_docs, speed_texts)

    doc = "\n".join(
        [
            "# Hot issues",
            "",
            f"Measured {date.today().isoformat()} on {where} by `python -m "
            f"benchmarks.hot_issues` ({pinned}).",
            "",
            "`civicpulse.signals.topics` groups a window's posts into issues (TF-IDF stars "
            "merged by centroid, hot issues peeled off by sampling; see the module), labels "
            "each by its distinctive terms (a class-based TF-IDF against the window), matches "
            "issues from one window to the next by the overlap of their terms, and ranks them "
            "with a heat score. Nothing here was tuned to the events below: the threshold "
            f"({topics.THRESHOLD}, centroids at {topics.CENTROID_SHARE:g} of it) was chosen on "
            "the cohesion figures (place share, hashtag share) of a few TipDM and Weibo "
            f"windows, and min_overlap ({topics.MIN_OVERLAP}) on 6 of the Weibo day pairs "
            "scored below.",
            "",
            "Heat = (ln(1 + size) + 0.5 ln(1 + reach)) x ((size + 5) / (previous + 5)) ** 0.5 "
            "x (1 + negative share).",
            "",
            *findings(tipdm_facts, weibo_facts),
            *tipdm_lines,
            *weibo_lines,
            "",
            "## Speed",
            "",
            *table(rows),
            "",
        ]
    )
    print(doc)
    if args.no_write:
        return
    (REPO / "docs" / "hot-issues.md").write_text(doc)
    print("wrote docs/hot-issues.md")
    if args.benchmarks_section:
        write_section(
            "Hot issues",
            [
                f"Measured {date.today().isoformat()} on {where} by `python -m "
                f"benchmarks.hot_issues` ({pinned}); the baselines ran in the same process. "
                "What the issues are and how good: docs/hot-issues.md.",
                "",
                *table(rows),
            ],
        )
        print("wrote the Hot issues section of docs/benchmarks.md")


if __name__ == "__main__":
    main()
