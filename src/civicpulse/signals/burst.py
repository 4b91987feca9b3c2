"""Bursts in daily counts: days clearly above what that day should bring.

A city watches daily counts (per issue, keyword rule, service, area). Counts that rise every
winter or every Monday are not news; a burst is a count above what is *expected for that day*.
Three baselines say what is expected, each from the days before (never from the day judged):

``seasonal``
    The same time last year: the mean of the seven days centred on the same weekday 52 weeks ago
    (one of each weekday, so the weekly rhythm cancels), times this weekday's factor, times the
    year-over-year trend (the last half year against the same half year before, pulled towards
    1 when counts are few and kept within 0.5-2). Needs a year of history.
``peer``
    The series' usual share of its peer group (over the last year) times what the rest of the
    group brought that same day: one district's heating complaints against the other districts'.
    The group carries the season, the weather, the weekday and the holiday of the day, so this
    works from the first weeks on, without last year; it cannot see a rise of the whole group
    (watch the group's total for that). The test is conditional on the day's total of series
    and peers (the series' part is binomial with its usual share), so a peer day low by chance
    does not make an ordinary day look high.
``recent``
    The level of the last four weeks times this weekday's factor, for series with neither a
    year of history nor peers (a keyword rule started last month). Not used when the others are
    available: every season's rise is above the recent level.

When seasonal and peer are both available the *larger* expectation is used: a burst must stand
out against the calendar *and* against the peers. That is deliberately conservative, because
each alone errs low at the wrong moments (a season that starts on a fixed date blurs in last
year's seven-day window; the peers' expectation drops when a peer has an outage).

Counts are over-dispersed (weather, news). A day's count is judged against a variance of
``mu + alpha * mu**2`` plus the baseline's own error: the counts it was estimated from, which
neighbouring days share (so over several days it adds up instead of averaging out). ``alpha``
is measured on the series' recent ordinary days (winsorised, so an unflagged burst does not pass
for noise). The tail probability is reported as a z score (3 ~ one in 740, 4 ~ one in 31,600).

A day is a burst day when, for one of the :class:`Rule`'s scales, the last ``days`` days
(today included) hold at least ``min_count``, reach the scale's ``z`` together, and at least
``min_high`` of them, today included, are each ``soft_z`` above expectation: one very high day
(size), a few high days (a surge) or two weeks of moderately high days (persistence). The high
days leading up to it join it. Burst days at most ``gap_days`` apart form one :class:`Burst`.

History is processed day by day and burst days (and the quiet days inside a burst) enter later
baselines at their usual value, as Farrington's method discounts past outbreaks, so a long burst
does not become its own baseline; after ``ADAPT_DAYS`` of one burst the observed counts are taken
in again, so a lasting change becomes the new normal. A burst judged against the recent level
alone is kept as observed: it may be a season seen for the first time, which next year's
seasonal baseline has to learn (and the recent level absorbs a lasting change within weeks).

Plain Python (numpy, pandas, scipy), no Django.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import special

__all__ = [
    "PEER",
    "RECENT",
    "SEASONAL",
    "Burst",
    "LOOKBACK_DAYS",
    "Rule",
    "Scale",
    "assess_group",
    "assess_latest",
    "daily_counts",
    "detect",
    "detect_group",
    "trace",
]

SEASONAL, PEER, RECENT = "seasonal", "peer", "recent"
_KINDS = ("", SEASONAL, PEER, RECENT)
_SEASONAL_KIND, _PEER_KIND, _RECENT_KIND = 1, 2, 3

YEAR_DAYS = 364  # 52 weeks: the same weekday a year ago
SEASON_HALF = 3  # last year's window is that day +-3: one of each weekday
TREND_DAYS = 182  # half a year: a year-over-year trend, not last month's mood
RECENT_DAYS = 28
MIN_HISTORY_DAYS = 14  # before this, nothing is judged
SHARE_DAYS = 365
MIN_SHARE_COUNT = 5  # below this (in a year) there is no peer baseline
GUARD_DAYS = 2  # the last days before the one judged are left out of every baseline
WEEKDAY_DAYS = 84
DISPERSION_DAYS = 56
REFRESH_DAYS = 7  # weekday factors and dispersion are re-estimated weekly
ADAPT_DAYS = 182  # a burst lasting half a year starts to be taken as the new normal
# Pseudo-counts that pull thin estimates towards "no effect".
_TREND_PRIOR = 20.0
_WEEKDAY_PRIOR = 10.0
_ALPHA_PRIOR = 0.02  # day-to-day noise of about 14 % on top of Poisson
_ALPHA_PRIOR_WEIGHT = 500.0  # as much say as 20 days with 5 counts expected
_MAX_ALPHA = 1.0
_WINSOR_KEPT = 0.9206  # E[min(Z**2, 4)] for a standard normal Z
_MIN_MU = 0.02  # a day's expectation is never exactly zero
_P_FLOOR = 1e-300
_MAX_Z = 37.0  # z of _P_FLOOR


@dataclass(frozen=True)
class Burst:
    """Days of one series clearly above expectation.

    ``observed`` and ``expected`` are totals over ``start`` .. ``end``; ``score`` is the highest
    z score on its days (a day's own or its window's); ``baseline`` is the kind of expectation on
    the peak day (``seasonal``, ``peer`` or ``recent``).
    """

    key: str
    start: date
    end: date
    peak: date
    observed: int
    expected: float
    ratio: float
    score: float
    baseline: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Scale:
    """One way to be a burst: the last ``days`` days together reach ``z`` above expectation,
    with at least ``min_high`` of them (today included) each ``Rule.soft_z`` above it."""

    days: int
    min_high: int
    z: float

    def __post_init__(self) -> None:
        if isinstance(self.days, bool) or not isinstance(self.days, int) or self.days < 1:
            raise ValueError(f"Scale.days must be a whole number >= 1, got {self.days!r}")
        if not 1 <= self.min_high <= self.days:
            raise ValueError(
                f"Scale.min_high must be between 1 and days ({self.days}), got {self.min_high}"
            )
        if not self.z > 0:
            raise ValueError(f"Scale.z must be positive, got {self.z}")


@dataclass(frozen=True)
class Rule:
    """When days above expectation make a burst (see the module docstring).

    The default scales: one day at z >= 5 (size), three days at z >= 4.5 with two of them
    high (a surge), fourteen days at z >= 3.5 with five of them high (persistence). The bars
    are high because they are tried often: a city watching a hundred series looks at some
    36,000 series-days a year, at z = 3 one in 740 clears the bar by chance, and real day-to-day
    noise has a heavier tail than any model of it. Two weeks is what it takes to see a doubling
    of three requests a day.
    """

    scales: tuple[Scale, ...] = (Scale(1, 1, 5.0), Scale(3, 2, 4.5), Scale(14, 5, 3.5))
    soft_z: float = 1.0
    gap_days: int = 3

    def __post_init__(self) -> None:
        if not self.scales or not all(isinstance(s, Scale) for s in self.scales):
            raise ValueError("Rule.scales must be a non-empty tuple of Scale")
        if isinstance(self.gap_days, bool) or not isinstance(self.gap_days, int):
            raise ValueError(f"Rule.gap_days must be a whole number, got {self.gap_days!r}")
        if self.gap_days < 0:
            raise ValueError(f"Rule.gap_days must not be negative, got {self.gap_days}")

    @property
    def longest(self) -> int:
        return max(s.days for s in self.scales)


def _check(min_count: int, rule: Rule | None) -> Rule:
    if isinstance(min_count, bool) or not isinstance(min_count, int | np.integer):
        raise TypeError(f"min_count must be a whole number, got {min_count!r}")
    if min_count < 1:
        raise ValueError(f"min_count must be at least 1, got {min_count}")
    if rule is not None and not isinstance(rule, Rule):
        raise TypeError(f"rule must be a Rule, not {type(rule).__name__}")
    return rule or Rule()


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def detect(
    series: pd.Series,
    *,
    peers: pd.Series | None = None,
    key: str = "",
    min_count: int = 5,
    rule: Rule | None = None,
) -> list[Burst]:
    """Every burst in a daily history, oldest first.

    ``series``: counts indexed by day (missing days count 0). ``peers``: the daily total of the
    series' peer group, *this series included* (``table.sum(axis=1)`` over districts); without it
    there is no peer baseline. When the members of the group are at hand, :func:`detect_group`
    is better: it keeps one member's burst out of the others' baselines.
    """
    r = _check(min_count, rule)
    y, others, days = _inputs(series, peers)
    return _bursts(_scan(y, others, days, r, min_count), days, key, r)


def detect_group(
    table: pd.DataFrame, *, key: str = "", min_count: int = 5, rule: Rule | None = None
) -> dict[str, list[Burst]]:
    """Every burst of every member of a peer group (a column per member, e.g. a district; a row
    per day), each member judged against the others.

    Two passes: the first finds each member's bursts; the second judges each member again with
    the others' history cleaned of their bursts, so that one district's abnormal winter does not
    lower its neighbours' usual share and make their next normal winter look high. Burst keys
    are ``f"{key}:{column}"`` (or the column alone without a key).
    """
    r = _check(min_count, rule)
    days, states = _scan_group(table, r, min_count)
    return {col: _bursts(state, days, _member_key(key, col), r) for col, state in states.items()}


def assess_latest(
    series: pd.Series,
    *,
    peers: pd.Series | None = None,
    key: str = "",
    elapsed: float = 1.0,
    min_count: int = 5,
    rule: Rule | None = None,
) -> Burst | None:
    """The burst the last day belongs to, or None: the live check.

    ``elapsed`` is the share of a usual day's count that has come in by now when the last day is
    still running (the share by the hour profile of the series, not of the clock: about 0.3 at
    ten in the morning for daytime complaints); the seasonal and recent expectations of the last
    day are scaled by it, the peer expectation needs no scaling (the peers' day is as far along).

    The same day-by-day pass as :func:`detect` over the last ``LOOKBACK_DAYS`` only (what the
    baselines need), so a call costs a few milliseconds however long the history is.
    """
    r = _check(min_count, rule)
    _check_elapsed(elapsed)
    y, others, days = _inputs(series, peers)
    y, days = y[-LOOKBACK_DAYS:], days[-LOOKBACK_DAYS:]
    others = None if others is None else others[-LOOKBACK_DAYS:]
    return _latest(_scan(y, others, days, r, min_count, elapsed=elapsed), days, key, r)


def assess_group(
    table: pd.DataFrame,
    *,
    key: str = "",
    elapsed: float = 1.0,
    min_count: int = 5,
    rule: Rule | None = None,
) -> dict[str, Burst | None]:
    """:func:`assess_latest` for every member of a peer group, as :func:`detect_group` judges
    them (twice the work of judging each member alone)."""
    r = _check(min_count, rule)
    _check_elapsed(elapsed)
    days, states = _scan_group(table, r, min_count, elapsed=elapsed, tail=LOOKBACK_DAYS)
    return {col: _latest(state, days, _member_key(key, col), r) for col, state in states.items()}


def trace(
    series: pd.Series,
    *,
    peers: pd.Series | None = None,
    min_count: int = 5,
    rule: Rule | None = None,
) -> pd.DataFrame:
    """Day by day what :func:`detect` saw: ``observed``, ``expected`` (NaN while the history is
    too short), ``baseline``, ``day_z``, ``window_z`` and ``burst``; for charts and for
    explaining a verdict."""
    r = _check(min_count, rule)
    y, others, days = _inputs(series, peers)
    state = _scan(y, others, days, r, min_count)
    return pd.DataFrame(
        {
            "observed": y.astype(np.int64),
            "expected": state.mu,
            "baseline": [_KINDS[k] for k in state.kind],
            "day_z": state.day_z,
            "window_z": state.window_z,
            "burst": state.flagged,
        },
        index=pd.DatetimeIndex(days, name="day"),
    )


def daily_counts(days, *, start: date | None = None, end: date | None = None) -> pd.Series:
    """Count events per day: ``days`` holds one date (or datetime) per event; the result has
    every day from ``start`` (default the first event) to ``end`` (default the last), 0 where
    nothing happened."""
    stamps = pd.Series(pd.to_datetime(list(days)), dtype="datetime64[ns]").dt.normalize()
    counts = stamps.value_counts()
    first = pd.Timestamp(start) if start is not None else counts.index.min()
    last = pd.Timestamp(end) if end is not None else counts.index.max()
    if pd.isna(first) or pd.isna(last):
        raise ValueError("no events and no start/end: cannot tell which days to count")
    index = pd.date_range(first, last, freq="D", name="day")
    return counts.reindex(index, fill_value=0).astype(np.int64)


# The history one day's baselines need, with room for last year's window to have been judged
# too (so that its bursts are discounted as they are in a full pass).
LOOKBACK_DAYS = YEAR_DAYS + SEASON_HALF + TREND_DAYS + GUARD_DAYS + 120


def _check_elapsed(elapsed: float) -> None:
    if not 0.0 < elapsed <= 1.0:
        raise ValueError(f"elapsed must be in (0, 1], got {elapsed}")


def _member_key(key: str, column) -> str:
    return f"{key}:{column}" if key else str(column)


def _latest(state: _State, days: pd.DatetimeIndex, key: str, rule: Rule) -> Burst | None:
    """The burst still open on the last day: one of its days lies within ``gap_days`` of it
    (a quiet day inside a burst does not end it)."""
    recent = state.flagged[-(rule.gap_days + 1) :]
    if not recent.any():
        return None
    return _bursts(state, days, key, rule)[-1]


def _scan(
    y: np.ndarray,
    others: np.ndarray | None,
    days: pd.DatetimeIndex,
    rule: Rule,
    min_count: int,
    *,
    history_others: np.ndarray | None = None,
    elapsed: float = 1.0,
) -> _State:
    return _Scan(y, others, history_others, days, rule, min_count, elapsed).run()


def _scan_group(
    table: pd.DataFrame,
    rule: Rule,
    min_count: int,
    *,
    elapsed: float = 1.0,
    tail: int | None = None,
) -> tuple[pd.DatetimeIndex, dict[str, _State]]:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, not {type(table).__name__}")
    if table.shape[1] == 0:
        raise ValueError("table has no columns: a group needs at least one member")
    if table.columns.has_duplicates:
        raise ValueError(
            f"table has duplicate columns: {list(table.columns[table.columns.duplicated()])}"
        )
    members = {col: _as_daily(table[col], f"column {col!r}") for col in table.columns}
    days = pd.date_range(
        min(s.index[0] for s in members.values()), max(s.index[-1] for s in members.values())
    )
    if tail is not None:
        days = days[-tail:]
    ys = {col: s.reindex(days, fill_value=0.0).to_numpy() for col, s in members.items()}
    total = np.sum(list(ys.values()), axis=0)
    first = {
        col: _scan(y, total - y, days, rule, min_count, elapsed=elapsed) for col, y in ys.items()
    }
    clean_total = np.sum([s.clean for s in first.values()], axis=0)
    return days, {
        col: _scan(
            y,
            total - y,
            days,
            rule,
            min_count,
            history_others=clean_total - first[col].clean,
            elapsed=elapsed,
        )
        for col, y in ys.items()
    }


# --------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------


def _inputs(series, peers) -> tuple[np.ndarray, np.ndarray | None, pd.DatetimeIndex]:
    counts = _as_daily(series, "series")
    others = None
    if peers is not None:
        group = _as_daily(peers, "peers").reindex(counts.index, fill_value=0.0)
        short = group < counts
        if short.any():
            day = group.index[short.to_numpy().argmax()]
            raise ValueError(
                f"peers must be the group's total with this series included, but on "
                f"{day.date()} peers has {group[day]:g} and the series {counts[day]:g}"
            )
        others = (group - counts).to_numpy(dtype=float)
    return counts.to_numpy(dtype=float), others, counts.index


def _as_daily(series, name: str) -> pd.Series:
    if not isinstance(series, pd.Series):
        raise TypeError(
            f"{name} must be a pandas Series of daily counts, not {type(series).__name__}"
        )
    if series.empty:
        raise ValueError(f"{name} is empty: there are no days to judge")
    if pd.api.types.is_numeric_dtype(series.index.dtype):
        raise ValueError(f"{name} must be indexed by day, not by {series.index.dtype} numbers")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(series.index))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be indexed by day: {error}") from None
    if index.tz is not None:
        index = index.tz_localize(None)
    index = index.normalize()
    if index.has_duplicates:
        day = index[index.duplicated()][0].date()
        raise ValueError(f"{name} has more than one count for {day}")
    values = pd.to_numeric(pd.Series(series.to_numpy(), index=index), errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        raise ValueError(f"{name} has no valid count for {index[bad.argmax()].date()}")
    wrong = (values < 0) | (values != np.floor(values))
    if wrong.any():
        day = values.index[wrong.to_numpy().argmax()]
        raise ValueError(
            f"{name} holds {values[day]:g} on {day.date()}: counts are whole numbers >= 0"
        )
    values = values.sort_index()
    full = pd.date_range(values.index[0], values.index[-1], freq="D")
    return values.reindex(full, fill_value=0.0).astype(float)


# --------------------------------------------------------------------------------------------
# the day-by-day pass
# --------------------------------------------------------------------------------------------


@dataclass
class _State:
    y: np.ndarray
    mu: np.ndarray
    kind: np.ndarray
    day_z: np.ndarray
    window_z: np.ndarray
    flagged: np.ndarray
    clean: np.ndarray


class _Scan:
    """One day-by-day pass over a series: judge each day against baselines built from the days
    before it, then put the day into the history those baselines read (``clean``), at its usual
    value when it was a burst day.

    Days more than ``lag`` back never change again, so their sums come from running totals;
    only the last few days are summed afresh. Plain floats and lists: numpy's per-call overhead
    would dominate at this size.
    """

    def __init__(
        self,
        y: np.ndarray,
        others: np.ndarray | None,
        history_others: np.ndarray | None,
        days: pd.DatetimeIndex,
        rule: Rule,
        min_count: int,
        elapsed: float,
    ):
        n = len(y)
        self.n, self.rule, self.min_count, self.elapsed = n, rule, min_count, elapsed
        # days further back than this never change again
        self.lag = rule.longest + rule.gap_days + 1
        self.y = y.tolist()
        self.clean = y.tolist()
        self.totals = [0.0] * (n + 1)  # running totals of ``clean``, exact up to ``settled``
        self.settled = 0
        self.others = None if others is None else others.tolist()
        hist = others if history_others is None else history_others
        self.other_totals = (
            None if hist is None else np.concatenate(([0.0], np.cumsum(hist))).tolist()
        )
        self.weekday = days.weekday.tolist()
        nan = math.nan
        self.mu, self.usual, self.day_z, self.window_z = ([nan] * n for _ in range(4))
        # the null distribution of each day: see ``_null``
        self.mean, self.known, self.weight, self.shared = ([0.0] * n for _ in range(4))
        self.kind, self.flagged = [0] * n, [False] * n
        self.factors, self.alpha = [1.0] * 7, _ALPHA_PRIOR
        self.start, self.last = -1, -n  # first and last day of the latest burst
        self.scales = sorted(rule.scales, key=lambda s: s.days)
        # running totals over the days for the window tests: days judged, days high, count,
        # and the null's mean, known variance, noise weight and shared error
        self.running = [[0.0] * (n + 1) for _ in range(7)]

    def total(self, a: int, b: int) -> float:
        """Sum of ``clean[a:b]``."""
        a = max(a, 0)
        if b <= a:
            return 0.0
        s = self.settled
        if b <= s:
            return self.totals[b] - self.totals[a]
        if a >= s:
            return math.fsum(self.clean[a:b])
        return self.totals[s] - self.totals[a] + math.fsum(self.clean[s:b])

    def run(self) -> _State:
        n, clean = self.n, self.clean
        for t in range(n):
            while self.settled <= t - self.lag:
                s = self.settled
                self.totals[s + 1] = self.totals[s] + clean[s]
                self.settled += 1
            end = t - GUARD_DAYS  # the baselines read the days before this one
            if end < MIN_HISTORY_DAYS:
                self._add(t, judged=False)
                continue
            if t % REFRESH_DAYS == 0 or t == n - 1:
                self._refresh(end)
            self._judge(t, end)
            self._add(t, judged=True)
            trigger = self._trigger(t)
            if trigger:
                self._mark(t, trigger)
        return _State(
            np.asarray(self.y),
            np.asarray(self.mu),
            np.asarray(self.kind, dtype=np.int8),
            np.asarray(self.day_z),
            np.asarray(self.window_z),
            np.asarray(self.flagged),
            np.asarray(clean),
        )

    def _judge(self, t: int, end: int) -> None:
        """Day ``t``'s expectation (the largest available), its usual value (their median) and
        its z."""
        found = self._expectations(t, end)
        best = max(found)
        m = self.mu[t] = max(best[0], _MIN_MU)
        self.kind[t] = best[1]
        self.usual[t] = _median([f[0] for f in found])
        self._null(t, m, best)
        variance = self.known[t] + self.alpha * self.weight[t] + self.shared[t] ** 2
        self.day_z[t] = _z(self.y[t], self.mean[t], variance)

    def _add(self, t: int, *, judged: bool) -> None:
        """Extend the running totals the window tests read by day ``t``."""
        values = (
            (1.0, float(self.day_z[t] >= self.rule.soft_z), self.y[t], self.mean[t])
            + (self.known[t], self.weight[t], self.shared[t])
            if judged
            else (0.0,) * 7
        )
        for series, value in zip(self.running, values, strict=True):
            series[t + 1] = series[t] + value

    def _trigger(self, t: int) -> int:
        """The length of the shortest window that makes day ``t`` a burst day, or 0."""
        judged, high, count, mean, known, weight, shared = self.running
        z, soft = self.day_z[t], self.rule.soft_z
        trigger = 0
        for scale in self.scales:
            lo = t + 1 - scale.days
            if lo < 0 or judged[t + 1] - judged[lo] < scale.days:
                break
            total = count[t + 1] - count[lo]
            if scale.days == 1:
                wz = z
            else:
                # the window's days share most of their baseline history: those errors add up
                # rather than average out
                variance = (
                    known[t + 1]
                    - known[lo]
                    + self.alpha * (weight[t + 1] - weight[lo])
                    + (shared[t + 1] - shared[lo]) ** 2
                )
                wz = _z(total, mean[t + 1] - mean[lo], variance)
                if not wz <= self.window_z[t]:
                    self.window_z[t] = wz
            if (
                not trigger
                and wz >= scale.z
                and z >= soft
                and total >= self.min_count
                and high[t + 1] - high[lo] >= scale.min_high
            ):
                trigger = scale.days
        return trigger

    def _mark(self, t: int, trigger: int) -> None:
        """Make day ``t`` a burst day, with the high days of its ``trigger``-day window that
        lead up to it (those were the burst's start)."""
        soft, gap = self.rule.soft_z, self.rule.gap_days
        joined, after = [], t
        for j in range(t - 1, t - trigger, -1):
            if after - j - 1 > gap:
                break
            if self.day_z[j] >= soft:
                joined.append(j)
                after = j
        for j in [*reversed(joined), t]:
            if self.flagged[j]:
                continue
            if j - self.last - 1 > gap:
                self.start = j
            else:  # the quiet days inside a burst are part of it
                for k in range(self.last + 1, j):
                    self._discount(k)
            self.flagged[j], self.last = True, j
            if j - self.start < ADAPT_DAYS:
                self._discount(j)

    def _discount(self, j: int) -> None:
        """Put a burst day into the history at its usual value. Not when only the recent level
        judged it: then the burst may be a season seen for the first time, and next year's
        seasonal baseline must learn it from the counts as they were."""
        if self.kind[j] != _RECENT_KIND:
            self.clean[j] = self.usual[j]

    def _null(self, t: int, m: float, best: tuple) -> None:
        """What day ``t``'s count looks like when nothing happens: its mean, its variance
        known in advance, the weight of the day-to-day noise (variance = known + alpha *
        weight + shared**2) and the baseline's history error (``shared``, a standard error:
        neighbouring days share it, so over a window it adds up rather than averages out).

        Against the peers the test is conditional on the day's total: given that the series
        and its peers brought ``T`` together, the series' part is binomial with its usual
        share. That removes the peers' own chance ups and downs, which would otherwise make a
        low peer day look like a high one here.
        """
        _, kind, history, share = best
        if kind == _PEER_KIND:
            p = share / (1.0 + share)
            total = self.y[t] + self.others[t] + 0.5
            spread = total * p * (1.0 - p)
            self.mean[t] = total * p
            self.known[t] = spread
            # both counts carry day-to-day noise; its effect on the split
            self.weight[t] = 2.0 * (m * (1.0 - p)) ** 2
            self.shared[t] = spread * math.sqrt(history)
        else:
            self.mean[t] = m
            self.known[t] = m
            self.weight[t] = m * m
            self.shared[t] = m / math.sqrt(history)

    def _expectations(self, t: int, end: int) -> list[tuple[float, int, float, float]]:
        """The baselines for day ``t``: seasonal and peer where available, else recent; each as
        (expectation, kind, history error, share). The history error is the counts the
        baseline rests on (seasonal, recent) or the relative variance of the share (peer)."""
        scale = self.elapsed if t == self.n - 1 else 1.0
        factor = self.factors[self.weekday[t]] * scale
        found = []
        seasonal = self._seasonal(t, end)
        if seasonal is not None:
            found.append((seasonal[0] * factor, _SEASONAL_KIND, seasonal[1], 0.0))
        if self.others is not None:
            peer = self._peer(t, end)
            if peer is not None:
                found.append(peer)
        if not found:
            lo = max(0, end - RECENT_DAYS)
            count = self.total(lo, end) + 0.5
            found.append((count / (end - lo) * factor, _RECENT_KIND, count, 0.0))
        return found

    def _seasonal(self, t: int, end: int) -> tuple[float, float] | None:
        lo = t - YEAR_DAYS - SEASON_HALF
        if lo < 0:
            return None
        count = self.total(lo, lo + 2 * SEASON_HALF + 1) + 0.5
        trend = 1.0
        if end - TREND_DAYS - YEAR_DAYS >= 0:
            now = self.total(end - TREND_DAYS, end)
            then = self.total(end - TREND_DAYS - YEAR_DAYS, end - YEAR_DAYS)
            trend = min(2.0, max(0.5, (now + _TREND_PRIOR) / (then + _TREND_PRIOR)))
        return count / (2 * SEASON_HALF + 1) * trend, count

    def _peer(self, t: int, end: int) -> tuple[float, int, float, float] | None:
        lo = max(0, end - SHARE_DAYS)
        mine = self.total(lo, end)
        theirs = self.other_totals[end] - self.other_totals[lo]
        if mine < MIN_SHARE_COUNT or theirs < MIN_SHARE_COUNT:
            return None
        share = mine / theirs
        today = self.others[t] + 0.5  # a peer day of 0 does not mean an expectation of 0
        return share * today, _PEER_KIND, 1.0 / mine + 1.0 / theirs, share

    def _refresh(self, end: int) -> None:
        """Re-estimate the weekday factors and the dispersion (weekly: they move slowly)."""
        lo = max(0, end - WEEKDAY_DAYS)
        part = np.asarray(self.clean[lo:end])
        if len(part) >= 28:
            # each weekday against the centred weekly mean around it: a ratio that a season
            # rising or falling through the stretch does not bias
            weekly = np.convolve(part, np.ones(7) / 7.0, mode="valid")
            wd = np.asarray(self.weekday[lo + 3 : end - 3])
            observed = np.bincount(wd, weights=part[3:-3], minlength=7)
            expected = np.bincount(wd, weights=weekly, minlength=7)
            factors = (observed + _WEEKDAY_PRIOR) / (expected + _WEEKDAY_PRIOR)
            self.factors = (factors / factors.mean()).tolist()
        # Day-to-day noise beyond Poisson, as a negative binomial's alpha (variance
        # mu + alpha * mu**2: noise that grows with the count, as weather and news make it),
        # by moments over the recent ordinary days, pulled towards a modest prior while the
        # counts are too low to tell.
        excess, weight = _ALPHA_PRIOR * _ALPHA_PRIOR_WEIGHT, _ALPHA_PRIOR_WEIGHT
        for j in range(max(0, end - DISPERSION_DAYS), end):
            if math.isnan(self.mu[j]) or self.flagged[j]:
                continue
            known = self.known[j] + self.shared[j] ** 2
            # winsorised at two standard deviations, so that the high days of a burst not
            # yet flagged do not pass for noise (and blunt the test that would flag them)
            cap = 4.0 * (known + self.alpha * self.weight[j])
            square = min((self.y[j] - self.mean[j]) ** 2, cap) / _WINSOR_KEPT
            excess += square - known
            weight += self.weight[j]
        self.alpha = min(_MAX_ALPHA, max(0.0, excess / weight))


def _z(observed: float, mean: float, variance: float) -> float:
    """How far above its expectation a count is, as a standard normal z.

    Above expectation: the upper-tail probability of a Poisson count on the scale of effective
    counts (count and mean divided by the variance-to-mean ratio, the quasi-Poisson way), turned
    into a z. Its tail is lighter than a negative binomial's of the same variance, which matters
    when much of the variance is the baseline's own error rather than the day's. At or below
    expectation it is the plain standardised difference: nothing is decided there.
    """
    if observed <= mean:
        return (observed - mean) / math.sqrt(variance)
    spread = max(0.25, variance / mean)  # a binomial split is less spread than Poisson
    p = float(special.gammainc(observed / spread, mean / spread))
    return min(_MAX_Z, float(-special.ndtri(max(p, _P_FLOOR))))


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


# --------------------------------------------------------------------------------------------
# from burst days to bursts
# --------------------------------------------------------------------------------------------


def _bursts(state: _State, days: pd.DatetimeIndex, key: str, rule: Rule) -> list[Burst]:
    hits = np.flatnonzero(state.flagged)
    if not len(hits):
        return []
    groups: list[list[int]] = [[int(hits[0])]]
    for i in hits[1:]:
        if i - groups[-1][-1] - 1 <= rule.gap_days:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    out = []
    for group in groups:
        first, last = group[0], group[-1]
        span = slice(first, last + 1)
        observed = int(state.y[span].sum())
        expected = float(state.mu[span].sum())
        excess = state.y[group] - state.mu[group]
        peak = group[int(np.argmax(excess))]
        score = float(
            np.nanmax(
                np.maximum(state.day_z[group], np.nan_to_num(state.window_z[group], nan=-np.inf))
            )
        )
        out.append(
            Burst(
                key=key,
                start=days[first].date(),
                end=days[last].date(),
                peak=days[peak].date(),
                observed=observed,
                expected=round(expected, 2),
                ratio=round(observed / expected, 2) if expected > 0 else math.inf,
                score=round(score, 2),
                baseline=_KINDS[state.kind[peak]],
            )
        )
    return out
