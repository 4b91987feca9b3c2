"""Burst detection: on the demo city's two years of requests (one abnormal heating winter among
normal ones), and on small series built to show one behaviour each."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from civicpulse.demo.generator import DemoCity
from civicpulse.signals import burst
from civicpulse.signals.burst import Burst, Rule, Scale

END = date(2026, 11, 26)


# --------------------------------------------------------------------------------------------
# the demo city
# --------------------------------------------------------------------------------------------


class City:
    """One demo city's requests as a table per service (a row per day, a column per district)
    and every burst found in them, group by group."""

    def __init__(self, seed: int):
        self.city = DemoCity(seed=seed, size="small", end=END)
        parent = {a.code: a.parent_code for a in self.city.areas}
        level = {a.code: a.level for a in self.city.areas}
        self.heated = {a.code for a in self.city.areas if a.level == "district" and a.heated}
        self.districts = sorted(a.code for a in self.city.areas if a.level == "district")

        def district(code: str) -> str:
            while level[code] != "district":
                code = parent[code]
            return code

        rows = [
            (case.service_code, district(case.grid_code), case.created_at.date())
            for batch in self.city.cases()
            for case in batch
        ]
        frame = pd.DataFrame(rows, columns=["service", "district", "day"])
        days = pd.date_range(self.city.start, self.city.end, name="day")
        self.tables = {
            service: (
                part.groupby(["day", "district"])
                .size()
                .unstack(fill_value=0)
                .reindex(index=days.date, columns=self.districts, fill_value=0)
                .set_axis(days, axis=0)
            )
            for service, part in frame.groupby("service")
        }
        self.found = {
            service: burst.detect_group(table, key=service)
            for service, table in self.tables.items()
        }

    def is_expected(self, service: str, district: str, b: Burst) -> bool:
        """The two things the generator made happen: the abnormal heating winter and the
        water crisis that reached the hotline."""
        a_district, a_start, a_end = self.city.abnormal_winter
        c_district, c_start, c_end, _ = self.city.crisis
        if service == "heating" and district == a_district:
            return b.start <= a_end and b.end >= a_start
        if service == "water" and district == c_district:
            return b.start <= c_end and b.end >= c_start
        return False

    def false_alarms(self) -> list[Burst]:
        return [
            b
            for service, by_district in self.found.items()
            for district, bursts in by_district.items()
            for b in bursts
            if not self.is_expected(service, district, b)
        ]


@pytest.fixture(scope="module", params=[7, 2260], ids=lambda seed: f"seed{seed}")
def city(request) -> City:
    return City(request.param)


def test_the_abnormal_winter_is_found_within_a_week(city):
    district, start, end = city.city.abnormal_winter
    found = [b for b in city.found["heating"][district] if b.start <= end and b.end >= start]
    assert found, f"no heating burst in {district} during {start}..{end}"
    first = min(b.start for b in found)
    assert first <= start + timedelta(days=7), f"first found on {first}, the winter began {start}"
    covered = sum((min(b.end, end) - max(b.start, start)).days + 1 for b in found)
    assert covered >= 60, f"only {covered} of the {(end - start).days + 1} days are in a burst"
    assert all(b.ratio > 1.5 for b in found), found


def test_normal_winters_do_not_alarm(city):
    district, start, end = city.city.abnormal_winter
    normal = {
        d: [b for b in bursts if d != district or b.end < start or b.start > end]
        for d, bursts in city.found["heating"].items()
    }
    # the other heated districts in all three winters, and the first and the third winter of
    # the abnormal district
    assert not any(normal.values()), normal
    assert len(city.heated) == 3 and district in city.heated


def test_few_false_alarms_across_all_services_and_districts(city):
    series = sum(len(by) for by in city.found.values())
    assert series == 17 * 5
    assert len(city.false_alarms()) <= 2, city.false_alarms()


def test_the_live_check_raises_the_abnormal_winter_and_keeps_quiet_elsewhere(city):
    district, start, _ = city.city.abnormal_winter
    table = city.tables["heating"]
    raised = None
    for day in pd.date_range(start, start + timedelta(days=14)):
        now = burst.assess_group(table.loc[:day], key="heating")
        assert all(now[d] is None for d in city.heated - {district}), (day, now)
        if now[district] is not None:
            raised = now[district]
            break
    assert raised is not None, "not raised in the first two weeks of the abnormal winter"
    assert raised.key == f"heating:{district}" and raised.score > 0


def test_one_series_against_its_group_total_works_too(city):
    """The form the watch job uses: one district with the total of all districts as peers."""
    district, start, end = city.city.abnormal_winter
    table = city.tables["heating"]
    found = burst.detect(table[district], peers=table.sum(axis=1), key="heating")
    assert any(b.start <= start + timedelta(days=7) and b.end >= start for b in found), found
    latest = burst.assess_latest(
        table.loc[: start + timedelta(days=20), district],
        peers=table.loc[: start + timedelta(days=20)].sum(axis=1),
    )
    assert latest is not None and latest.baseline == burst.PEER


# --------------------------------------------------------------------------------------------
# small series, one behaviour each
# --------------------------------------------------------------------------------------------


def days(n: int, start: str = "2025-01-06") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, name="day")


def poisson(rates, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).poisson(rates)


def test_a_spike_in_a_flat_series_is_one_burst_on_its_day():
    counts = poisson(np.full(200, 20.0))
    counts[150] = 60
    found = burst.detect(pd.Series(counts, index=days(200)), key="flat")
    assert len(found) == 1, found
    (b,) = found
    assert b.start == b.end == b.peak == days(200)[150].date()
    assert b.observed == 60 and 15 < b.expected < 25 and b.ratio > 2.4
    assert b.baseline == burst.RECENT and b.score >= 4.5 and b.key == "flat"


def test_a_weekly_rhythm_is_not_a_burst():
    index = days(364)
    rates = np.where(index.weekday < 5, 30.0, 8.0)
    assert burst.detect(pd.Series(poisson(rates), index=index)) == []


def test_a_doubling_that_lasts_is_found_by_persistence_not_by_any_single_day():
    index = days(300)
    rates = np.where(index.weekday < 5, 10.0, 4.0)
    rates[200:] *= 1.6
    found = burst.detect(pd.Series(poisson(rates, seed=3), index=index))
    assert found, "a lasting rise of 60 % went unseen"
    first = found[0]
    assert index[200].date() <= first.start <= index[214].date(), first
    trace = burst.trace(pd.Series(poisson(rates, seed=3), index=index))
    assert trace["day_z"].iloc[200:214].max() < 4.5  # no single day would have made it


def test_one_to_three_is_not_a_burst_but_one_to_eight_is():
    index = days(120)
    counts = poisson(np.full(120, 0.3), seed=5)
    counts[100] = 3
    assert burst.detect(pd.Series(counts, index=index)) == []
    counts[100] = 8
    (b,) = burst.detect(pd.Series(counts, index=index))
    assert b.start == index[100].date()
    assert burst.detect(pd.Series(counts, index=index), min_count=9) == []


def seasonal_series(abnormal: float = 1.0, seed: int = 11) -> pd.Series:
    """Two years from 1 October: 4 a day, 24 a day from November to March; the second winter
    multiplied by ``abnormal``."""
    index = pd.date_range("2024-10-01", "2026-09-30", name="day")
    winter = (index.month >= 11) | (index.month <= 3)
    rates = np.where(winter, 24.0, 4.0) * np.where(index.weekday < 5, 1.1, 0.75)
    second = winter & (index >= pd.Timestamp("2025-10-01"))
    rates = np.where(second, rates * abnormal, rates)
    return pd.Series(poisson(rates, seed=seed), index=index)


def test_the_usual_winter_rise_is_expected_from_last_year():
    found = burst.detect(seasonal_series())
    # The first winter is news: nothing in the history knows it yet.
    assert found and found[0].start < date(2024, 11, 10)
    assert all(b.end < date(2025, 10, 1) for b in found), found
    trace = burst.trace(seasonal_series())
    second = trace.loc["2025-11-01":"2026-03-31"]
    assert (second["baseline"] == burst.SEASONAL).all()
    assert 0.8 < second["observed"].sum() / second["expected"].sum() < 1.25


def test_an_abnormal_winter_stands_out_against_last_year():
    found = [b for b in burst.detect(seasonal_series(abnormal=2.0)) if b.end >= date(2025, 10, 1)]
    assert found and found[0].start <= date(2025, 11, 7), found
    assert found[0].baseline == burst.SEASONAL and found[0].ratio > 1.5


def test_a_peer_group_carries_the_season_in_its_first_year():
    """No last year at all: the peers' same day says what a winter day brings."""
    index = pd.date_range("2025-09-01", "2026-03-31", name="day")
    rates = np.where((index.month >= 11) | (index.month <= 3), 20.0, 1.0)
    table = pd.DataFrame(
        {
            name: poisson(rates * share, seed=i)
            for i, (name, share) in enumerate([("a", 1.0), ("b", 0.8), ("c", 1.2), ("d", 1.0)])
        },
        index=index,
    )
    alone = burst.detect(table["a"])
    assert alone and alone[0].start <= date(2025, 11, 3)  # the recent level knew no winter
    assert burst.detect_group(table) == {"a": [], "b": [], "c": [], "d": []}
    table.loc["2026-01-10":, "b"] *= 3
    found = burst.detect_group(table, key="heating")
    assert [b.key for b in found["b"]] == ["heating:b"], found
    assert found["b"][0].start <= date(2026, 1, 14) and found["b"][0].baseline == burst.PEER
    assert not (found["a"] or found["c"] or found["d"]), found


def test_the_live_check_follows_a_day_still_running():
    index = days(120)
    counts = poisson(np.full(120, 40.0), seed=8)
    counts[-1] = 20  # half a usual day by midday
    series = pd.Series(counts, index=index)
    assert burst.assess_latest(series) is None  # a low full day: nothing
    assert burst.assess_latest(series, elapsed=0.5) is None  # half a day at half: nothing
    counts[-1] = 60  # by midday, a full day and a half
    assert burst.assess_latest(series, elapsed=1.0) is None
    hot = burst.assess_latest(pd.Series(counts, index=index), elapsed=0.5, key="k")
    assert hot is not None and hot.end == index[-1].date() and hot.key == "k"


def test_a_burst_stays_open_over_a_quiet_day():
    index = days(100)
    counts = poisson(np.full(100, 10.0), seed=4)
    counts[95:98] = [40, 45, 42]
    counts[98:] = [10, 9]
    series = pd.Series(counts, index=index)
    latest = burst.assess_latest(series)
    assert latest is not None and latest.start == index[95].date()
    assert latest.end == index[97].date() and latest.observed == 127
    assert burst.assess_latest(series, rule=Rule(gap_days=1)) is None


def test_the_trace_explains_every_day():
    index = days(60)
    trace = burst.trace(pd.Series(poisson(np.full(60, 5.0)), index=index))
    assert list(trace.columns) == ["observed", "expected", "baseline", "day_z", "window_z", "burst"]
    assert trace["expected"].iloc[:10].isna().all()  # too little history to judge
    assert (trace["baseline"].iloc[20:] == burst.RECENT).all()
    assert not trace["burst"].any()


def test_daily_counts_fills_the_quiet_days():
    counts = burst.daily_counts(
        [date(2026, 1, 2), date(2026, 1, 2), pd.Timestamp("2026-01-04 23:59")],
        end=date(2026, 1, 5),
    )
    assert counts.tolist() == [2, 0, 1, 0]
    assert counts.index[0] == pd.Timestamp("2026-01-02")


def test_missing_days_count_zero():
    index = days(90)
    full = pd.Series(poisson(np.full(90, 3.0)), index=index)
    assert burst.detect(full[full > 0]) == burst.detect(full)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "message"),
    [
        (pd.Series([1, 2], index=pd.to_datetime(["2026-01-01", "2026-01-01"])), "more than one"),
        (pd.Series([1, -2], index=days(2)), "whole numbers >= 0"),
        (pd.Series([1, 2.5], index=days(2)), "2.5 on 2025-01-07"),
        (pd.Series([1, None], index=days(2)), "no valid count for 2025-01-07"),
        (pd.Series([1, 2]), "indexed by day"),
        (pd.Series([], dtype=float), "empty"),
    ],
)
def test_bad_series_are_named(series, message):
    with pytest.raises(ValueError, match=message):
        burst.detect(series)


def test_bad_arguments_are_named():
    series = pd.Series([3, 4, 5], index=days(3))
    with pytest.raises(TypeError, match="pandas Series"):
        burst.detect([1, 2, 3])
    with pytest.raises(ValueError, match="peers must be the group's total"):
        burst.detect(series, peers=pd.Series([3, 3, 9], index=days(3)))
    with pytest.raises(ValueError, match="min_count must be at least 1"):
        burst.detect(series, min_count=0)
    with pytest.raises(ValueError, match="elapsed must be in"):
        burst.assess_latest(series, elapsed=0)
    with pytest.raises(ValueError, match="Scale.min_high"):
        Scale(3, 4, 3.0)
    with pytest.raises(ValueError, match="Scale.z must be positive"):
        Scale(3, 2, 0)
    with pytest.raises(ValueError, match="Rule.scales"):
        Rule(scales=())
    with pytest.raises(ValueError, match="Rule.gap_days"):
        Rule(gap_days=-1)
    with pytest.raises(TypeError, match="DataFrame"):
        burst.detect_group(series)
    with pytest.raises(ValueError, match="column 'b'"):
        burst.detect_group(pd.DataFrame({"a": [1, 2], "b": [1, -1]}, index=days(2)))
