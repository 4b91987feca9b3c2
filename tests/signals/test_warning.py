"""The warning indicator system: levels, the volume gate, hysteresis, validation, reasons."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import pytest

from civicpulse.signals import burst
from civicpulse.signals.warning import (
    INDICATORS,
    LEVEL_NAMES,
    Indicators,
    Thresholds,
    assess,
)

TH = Thresholds.default()


def at(level: int, factor: float = 1.0, **extra) -> Indicators:
    """Every indicator at ``factor`` times its threshold for ``level``."""
    values = {name: TH.threshold(name, level) * factor for name in INDICATORS}
    values["negative_share"] = min(values["negative_share"], 1.0)
    return Indicators(**{**values, **extra})


def severity(level: int | None) -> int:
    return 5 if level is None else level  # 1 most severe .. 5 no warning


def test_levels_from_the_default_thresholds():
    assert assess(Indicators(), TH).level is None
    for level in (4, 3, 2, 1):
        assert assess(at(level), TH).level == level
        assert assess(at(level, 0.99), TH).level == (level + 1 if level < 4 else None)


def test_two_indicators_must_agree():
    # one ordinary indicator alone, however high, is not enough
    assert assess(Indicators(volume=5000), TH).level is None
    assert assess(Indicators(volume=5000, growth=20), TH).level == 1
    # sensitive terms weigh 1.5: with volume at level II they make level II
    assert assess(Indicators(volume=200, sensitive=10), TH).level == 2


def test_the_volume_gate():
    loud = dict(negative_share=1.0, reach=1e9, sensitive=100, spread_speed=1e4, growth=100)
    assert assess(Indicators(volume=2, **loud), TH).level is None
    assert assess(Indicators(volume=3, **loud), TH).level == 4  # three angry posts: blue at most
    assert assess(Indicators(volume=10, **loud), TH).level == 3
    assert assess(Indicators(volume=100, **loud), TH).level == 1


@pytest.mark.parametrize("current", [None, 1, 2, 3, 4])
def test_more_of_any_indicator_never_lowers_the_level(current):
    rng = np.random.default_rng(2260)
    for _ in range(400):
        values = {
            name: TH.threshold(name, 4) * float(np.exp(rng.uniform(-1.5, 3.5)))
            for name in INDICATORS
        }
        values["negative_share"] = float(rng.uniform(0, 1))
        base = Indicators(**values)
        before = severity(assess(base, TH, current).level)
        for name in INDICATORS:
            bigger = getattr(base, name) * float(rng.uniform(1.0, 4.0))
            if name == "negative_share":
                bigger = min(bigger, 1.0)
            after = severity(assess(replace(base, **{name: bigger}), TH, current).level)
            assert after <= before, (name, values, current)


def test_an_upgrade_is_immediate():
    a = assess(at(1), TH, current=4)
    assert a.level == 1 and a.summary.startswith("Raised from level IV to I")


def test_a_downgrade_waits_for_the_margin_and_steps_one_level_at_a_time():
    # just below level II: held, not lowered
    held = assess(at(2, 0.9), TH, current=2)
    assert held.level == 2 and "held" in held.summary
    assert all(r.met for r in held.reasons if r.indicator != "breadth" or r.met)
    # below by more than the 20 % margin: one step down
    lowered = assess(at(2, 0.75), TH, current=2)
    assert lowered.level == 3 and lowered.summary.startswith("Lowered from level II to III")
    # an event gone quiet steps down once per assessment, then closes
    steps, level = [], 1
    while level is not None:
        level = assess(Indicators(), TH, current=level).level
        steps.append(level)
    assert steps == [2, 3, 4, None]


def test_closing():
    closed = assess(Indicators(), TH, current=4)
    assert closed.level is None and closed.summary.startswith("Closed")
    assert assess(at(4, 0.85), TH, current=4).level == 4  # within the margin: kept open
    assert assess(at(4, 0.75), TH, current=4).level is None


def test_a_reason_for_every_indicator():
    ind = Indicators(volume=200, growth=6, negative_share=0.75, reach=2e6, spread_speed=20)
    a = assess(ind, TH)
    assert a.level == 2 and a.name == "II"
    assert [r.indicator for r in a.reasons] == list(INDICATORS)
    by = {r.indicator: r for r in a.reasons}
    assert by["volume"].met and by["volume"].threshold == 150 and by["volume"].level == 2
    assert by["spread_speed"].level == 3 and not by["spread_speed"].met
    assert by["sensitive"].level is None and not by["sensitive"].met
    assert by["negative_share"].text == (
        "Share of negative posts is 75%: at level II (70% or more); counts 1 point toward level II."
    )
    assert "does not count toward level II (50 needed)" in by["spread_speed"].text
    assert sum(TH.weights[r.indicator] for r in a.reasons if r.met) >= TH.points_needed
    assert a.summary == (
        "Level II: 4 points (2 needed) from volume, growth, negative share and reach, "
        "and the volume passes the level's gate (30)."
    )
    for r in a.reasons:  # what the warning store keeps: plain JSON
        json.dumps(asdict(r))
        assert r.text and r.text.endswith(".")
    quiet = assess(Indicators(volume=1), TH)
    assert quiet.level is None and len(quiet.reasons) == len(INDICATORS)
    assert not any(r.met for r in quiet.reasons)
    assert quiet.summary.startswith("No warning: the volume (1) is below the 3")


def test_a_burst_from_the_burst_detector_feeds_the_warning():
    index = pd.date_range("2026-01-01", periods=90)
    counts = np.random.default_rng(3).poisson(np.full(90, 8.0))
    counts[-3:] = [30, 34, 41]
    found = burst.assess_latest(pd.Series(counts, index=index), key="service:water:239901")
    assert found is not None
    ind = Indicators(
        volume=float(counts[-7:].sum()),
        growth=found.ratio,
        breadth=1,
        open_cases=float(counts[-1]),
        burst_score=found.score,
    )
    a = assess(ind, TH)
    assert a.level is not None and a.level <= 3, a.summary
    assert "burst_score" in {r.indicator for r in a.reasons if r.met}


# --------------------------------------------------------------------------------------------
# stored as JSON, edited by administrators
# --------------------------------------------------------------------------------------------


def test_thresholds_round_trip_through_json():
    stored = json.loads(json.dumps(TH.to_dict()))
    assert Thresholds.from_dict(stored) == TH
    assert set(stored["indicators"]) == set(INDICATORS)
    assert stored["indicators"]["volume"] == {
        "thresholds": [20.0, 50.0, 150.0, 500.0],
        "weight": 1.0,
    }


def test_a_policy_names_only_what_it_changes():
    th = Thresholds.from_dict(
        {
            "indicators": {"burst_score": {"thresholds": [3, 4, 6, None], "weight": 2}},
            "volume_gate": [1, 5, 20, 50],
        }
    )
    assert th.weights["burst_score"] == 2 and th.threshold("burst_score", 1) is None
    assert th.levels["volume"] == TH.levels["volume"]
    assert th.to_dict()["indicators"]["burst_score"]["thresholds"] == [3.0, 4.0, 6.0, None]
    # a burst alone now makes a warning, but never level I
    assert assess(Indicators(volume=60, burst_score=7), th).level == 2
    assert assess(Indicators(volume=600, burst_score=70), th).level == 2
    assert assess(Indicators(volume=600, burst_score=70, growth=20), th).level == 1


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ([], TypeError, "JSON object"),
        ({"indicators": {"volum": {}}}, ValueError, "unknown indicator 'volum'"),
        ({"thresholds": {}}, ValueError, "unknown setting 'thresholds'"),
        (
            {"indicators": {"reach": {"thresholds": [10, 5, 20, 30]}}},
            ValueError,
            r"indicator 'reach': thresholds must rise from level IV to I, but level III \(5\)",
        ),
        (
            {"indicators": {"growth": {"thresholds": [2, 2, 5, 10]}}},
            ValueError,
            "level III",
        ),
        ({"indicators": {"volume": {"thresholds": [-1, 5, 20, 30]}}}, ValueError, "negative"),
        ({"indicators": {"volume": {"weight": -1}}}, ValueError, "weight must not be negative"),
        ({"indicators": {"volume": {"thresholds": [1, 2, 3]}}}, ValueError, "expected 4 values"),
        (
            {"indicators": {"volume": {"thresholds": [1, None, 3, 4]}}},
            ValueError,
            "level II has a threshold but the milder level III has none",
        ),
        ({"indicators": {"volume": {"thresholds": [1, 2, 3, "x"]}}}, ValueError, "level I"),
        ({"indicators": {"volume": {"thresholds": [1, 2, 3, True]}}}, ValueError, "level I"),
        (
            {"indicators": {"negative_share": {"thresholds": [40, 55, 70, 85]}}},
            ValueError,
            "shares, between 0 and 1",
        ),
        ({"indicators": {"volume": {"colour": "red"}}}, ValueError, "unknown setting 'colour'"),
        ({"volume_gate": [5, 3, 30, 100]}, ValueError, "volume_gate: thresholds must rise"),
        ({"volume_gate": [None, 3, 30, 100]}, ValueError, "volume_gate: level IV needs"),
        ({"downgrade_margin": 1.0}, ValueError, "downgrade_margin is a share below 1"),
        ({"points_needed": 0}, ValueError, "points_needed must be above 0"),
        ({"points_needed": 99}, ValueError, "no warning could ever be raised"),
        ({"points_needed": math.nan}, ValueError, "points_needed must be a number"),
    ],
)
def test_bad_thresholds_are_named(data, error, message):
    with pytest.raises(error, match=message):
        Thresholds.from_dict(data)


def test_bad_indicators_and_levels_are_named():
    with pytest.raises(ValueError, match="indicator volume must be a finite number >= 0"):
        Indicators(volume=-1)
    with pytest.raises(ValueError, match="indicator reach must be a finite number"):
        Indicators(reach=math.inf)
    with pytest.raises(ValueError, match="negative_share is a share"):
        Indicators(negative_share=1.5)
    with pytest.raises(TypeError, match="growth must be a number"):
        Indicators(growth="2")
    with pytest.raises(ValueError, match="current must be a level 1-4 or None"):
        assess(Indicators(), TH, current=5)
    with pytest.raises(ValueError, match="missing"):
        Thresholds(levels={}, weights={})
    assert Indicators(volume=3).as_dict() == {
        name: (3.0 if name == "volume" else 0.0) for name in INDICATORS
    }
    assert LEVEL_NAMES[1] == "I"
