"""The warning indicator system: from an event's indicators to a warning level, with reasons.

Levels follow the national standard: I (1, red, most severe), II (2, orange), III (3, yellow),
IV (4, blue); ``None`` is no warning.

How a level is reached (:class:`Thresholds`):

* Each indicator has a threshold per level (IV, III, II, I; rising; ``None`` where it cannot
  speak for that level) and a weight. At a level, every indicator at or above its threshold
  adds its weight in points.
* A level is reached when the points reach ``points_needed`` *and* the volume passes the
  level's gate. With the defaults two ordinary indicators must agree (weights 1, two points
  needed; sensitive terms and a burst weigh 1.5), because any single number misleads on its
  own: growth is huge on tiny counts, reach is one celebrity's repost, negativity is the normal
  tone of complaints. The gate is separate from volume's own thresholds: three angry posts
  with a famous reposter may make a blue warning, never a red one.
* The warning's level is the most severe level reached. More of any indicator never lowers it
  (thresholds, weights and gates only ever add).

Hysteresis: a warning is raised or moved up at once (a late warning costs more than an early
one), but moved down only when the indicators no longer hold the current level even with every
threshold and gate lowered by ``downgrade_margin`` (20 % by default), and then by one level per
assessment, so that an event hovering at a threshold does not flap between levels and a calm
hour does not close a warning that the next hour reopens. Closing is the last step down, from
IV.

:func:`assess` explains itself: a :class:`Reason` for every indicator (its value, its threshold
at the level decided, the level it reaches alone, whether it counted) and a one-line summary, in
plain English for a page to show (and translate).

Thresholds are stored as JSON in the database and edited by administrators:
:meth:`Thresholds.from_dict` validates with errors that name the indicator and the level.

Plain Python, no Django.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields

__all__ = [
    "INDICATORS",
    "LEVELS",
    "LEVEL_COLOURS",
    "LEVEL_NAMES",
    "Assessment",
    "Indicators",
    "Reason",
    "Thresholds",
    "assess",
]

LEVELS = (4, 3, 2, 1)  # from the mildest up; thresholds are listed in this order
LEVEL_NAMES = {1: "I", 2: "II", 3: "III", 4: "IV"}
LEVEL_COLOURS = {1: "red", 2: "orange", 3: "yellow", 4: "blue"}


@dataclass
class Indicators:
    """An event's numbers over the caller's window (all >= 0)."""

    volume: float = 0.0  # posts and requests in the window
    growth: float = 0.0  # volume against the previous window, smoothed: (v + 1) / (prev + 1)
    negative_share: float = 0.0  # 0..1
    reach: float = 0.0  # followers and views
    spread_speed: float = 0.0  # posts (or reposts) per hour, last hour
    sensitive: float = 0.0  # weighted hits of sensitive terms
    breadth: float = 0.0  # districts or areas touched
    open_cases: float = 0.0  # open citizen requests linked to the event
    burst_score: float = 0.0  # z score from civicpulse.signals.burst, 0 without a burst

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"indicator {f.name} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"indicator {f.name} must be a finite number >= 0, got {value}")
            setattr(self, f.name, value)
        if self.negative_share > 1:
            raise ValueError(
                f"indicator negative_share is a share (0..1), got {self.negative_share}"
            )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


INDICATORS = tuple(f.name for f in fields(Indicators))

# How each indicator is named and its values written in reasons.
_LABELS = {
    "volume": "Volume (posts and requests)",
    "growth": "Growth on the previous window",
    "negative_share": "Share of negative posts",
    "reach": "Reach (followers and views)",
    "spread_speed": "Spread speed (posts per hour)",
    "sensitive": "Sensitive terms (weighted hits)",
    "breadth": "Breadth (districts touched)",
    "open_cases": "Open citizen requests",
    "burst_score": "Burst score (z)",
}


_SHORT = {
    "volume": "volume",
    "growth": "growth",
    "negative_share": "negative share",
    "reach": "reach",
    "spread_speed": "spread speed",
    "sensitive": "sensitive terms",
    "breadth": "breadth",
    "open_cases": "open requests",
    "burst_score": "burst score",
}


def _show(indicator: str, value: float) -> str:
    if indicator == "negative_share":
        return f"{value * 100:.0f}%"
    if indicator == "growth":
        return f"x{value:.1f}"
    if indicator == "burst_score":
        return f"{value:.1f}"
    if value >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.0f}" if value == round(value) else f"{value:.1f}"


_DEFAULT = {
    # name: ((IV, III, II, I), weight)
    "volume": ((20, 50, 150, 500), 1.0),
    "growth": ((2, 3, 5, 10), 1.0),
    "negative_share": ((0.4, 0.55, 0.7, 0.85), 1.0),
    "reach": ((10_000, 100_000, 1_000_000, 10_000_000), 1.0),
    "spread_speed": ((5, 15, 50, 150), 1.0),
    "sensitive": ((1, 3, 8, 20), 1.5),
    "breadth": ((2, 3, 4, 5), 0.5),
    "open_cases": ((5, 20, 50, 150), 1.0),
    "burst_score": ((3.5, 5, 8, 12), 1.5),
}
_DEFAULT_GATE = (3, 10, 30, 100)
_TOP_KEYS = ("indicators", "points_needed", "volume_gate", "downgrade_margin")


@dataclass(frozen=True)
class Thresholds:
    """What each level takes (see the module docstring). Build with :meth:`default` or
    :meth:`from_dict`; both validate."""

    # indicator -> thresholds for levels IV, III, II, I (None: cannot speak for that level)
    levels: dict[str, tuple[float | None, float | None, float | None, float | None]]
    weights: dict[str, float]
    points_needed: float = 2.0
    volume_gate: tuple[float, float, float, float] = _DEFAULT_GATE  # for IV, III, II, I
    downgrade_margin: float = 0.2

    def __post_init__(self) -> None:
        _validate(self.to_dict())  # the same checks as from_dict

    @classmethod
    def default(cls) -> Thresholds:
        return cls(
            levels={name: tuple(map(float, t)) for name, (t, _) in _DEFAULT.items()},
            weights={name: w for name, (_, w) in _DEFAULT.items()},
        )

    @classmethod
    def from_dict(cls, data: dict) -> Thresholds:
        """From the stored JSON. Indicators left out keep their default thresholds and weight,
        so a policy needs to name only what it changes."""
        clean = _validate(data)
        levels = {name: tuple(map(float, t)) for name, (t, _) in _DEFAULT.items()}
        weights = {name: w for name, (_, w) in _DEFAULT.items()}
        for name, entry in clean["indicators"].items():
            levels[name] = entry["thresholds"]
            weights[name] = entry["weight"]
        return cls(
            levels=levels,
            weights=weights,
            points_needed=clean["points_needed"],
            volume_gate=clean["volume_gate"],
            downgrade_margin=clean["downgrade_margin"],
        )

    def to_dict(self) -> dict:
        """JSON-safe: plain dicts, lists, floats and nulls."""
        if set(self.levels) != set(INDICATORS) or set(self.weights) != set(INDICATORS):
            missing = sorted(
                (set(INDICATORS) - set(self.levels)) | (set(INDICATORS) - set(self.weights))
            )
            extra = sorted((set(self.levels) | set(self.weights)) - set(INDICATORS))
            raise ValueError(
                f"thresholds need every indicator once: missing {missing}, unknown {extra}"
            )
        return {
            "indicators": {
                name: {
                    "thresholds": [_number(v) for v in self.levels[name]],
                    "weight": _number(self.weights[name]),
                }
                for name in INDICATORS
            },
            "points_needed": _number(self.points_needed),
            "volume_gate": [_number(v) for v in self.volume_gate],
            "downgrade_margin": _number(self.downgrade_margin),
        }

    def threshold(self, indicator: str, level: int, *, scale: float = 1.0) -> float | None:
        value = self.levels[indicator][LEVELS.index(level)]
        return None if value is None else value * scale


def _number(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _validate(data) -> dict:
    """Check stored thresholds; the same values, normalised (floats and tuples)."""
    if not isinstance(data, dict):
        raise TypeError(f"thresholds must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; expected some of {list(_TOP_KEYS)}")
    indicators = data.get("indicators", {})
    if not isinstance(indicators, dict):
        raise TypeError("'indicators' must be an object: indicator name -> settings")
    out: dict = {"indicators": {}}
    for name, entry in indicators.items():
        if name not in INDICATORS:
            raise ValueError(f"unknown indicator {name!r}; known: {', '.join(INDICATORS)}")
        if not isinstance(entry, dict):
            raise TypeError(f"indicator {name!r}: expected {{'thresholds': [...], 'weight': n}}")
        extra = sorted(set(entry) - {"thresholds", "weight"})
        if extra:
            raise ValueError(f"indicator {name!r}: unknown setting {extra[0]!r}")
        default_t, default_w = _DEFAULT[name]
        thresholds = _levels(f"indicator {name!r}", entry.get("thresholds", default_t), True)
        if name == "negative_share" and any(v is not None and v > 1 for v in thresholds):
            raise ValueError(f"indicator {name!r}: thresholds are shares, between 0 and 1")
        weight = _value(f"indicator {name!r}: weight", entry.get("weight", default_w))
        out["indicators"][name] = {"thresholds": thresholds, "weight": weight}
    out["points_needed"] = _value("points_needed", data.get("points_needed", 2.0))
    if out["points_needed"] <= 0:
        raise ValueError("points_needed must be above 0")
    out["volume_gate"] = _levels("volume_gate", data.get("volume_gate", _DEFAULT_GATE), False)
    out["downgrade_margin"] = _value("downgrade_margin", data.get("downgrade_margin", 0.2))
    if out["downgrade_margin"] >= 1:
        raise ValueError(f"downgrade_margin is a share below 1, got {out['downgrade_margin']}")
    # Could any level ever be reached? Count the points available at level IV.
    weights = {n: w for n, (_, w) in _DEFAULT.items()}
    firsts = {n: t[0] for n, (t, _) in _DEFAULT.items()}
    for name, entry in out["indicators"].items():
        weights[name], firsts[name] = entry["weight"], entry["thresholds"][0]
    available = sum(w for n, w in weights.items() if firsts[n] is not None)
    if available < out["points_needed"]:
        raise ValueError(
            f"the indicators that can reach level IV weigh {available:g} points in all, less "
            f"than points_needed ({out['points_needed']:g}): no warning could ever be raised"
        )
    return out


def _value(what: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    return float(value)


def _levels(what: str, values, nullable: bool) -> tuple:
    if not isinstance(values, list | tuple) or len(values) != 4:
        raise ValueError(f"{what}: expected 4 values, for levels IV, III, II and I; got {values!r}")
    out = []
    for level, value in zip(LEVELS, values, strict=True):
        name = LEVEL_NAMES[level]
        if value is None:
            if not nullable:
                raise ValueError(f"{what}: level {name} needs a number")
            out.append(None)
            continue
        if out and out[-1] is None:
            raise ValueError(
                f"{what}: level {name} has a threshold but the milder level "
                f"{LEVEL_NAMES[level + 1]} has none"
            )
        number = _value(f"{what}: level {name}", value)
        if out and number <= out[-1]:
            raise ValueError(
                f"{what}: thresholds must rise from level IV to I, but level {name} "
                f"({number:g}) is not above level {LEVEL_NAMES[level + 1]} ({out[-1]:g})"
            )
        out.append(number)
    return tuple(out)


@dataclass(frozen=True)
class Reason:
    """One indicator's part in a verdict. ``threshold`` is its threshold at the level decided
    (or at level IV when there is no warning), ``level`` the most severe level it reaches on its
    own, ``met`` whether it counted toward the level decided."""

    indicator: str
    value: float
    threshold: float | None
    level: int | None
    met: bool
    text: str


@dataclass(frozen=True)
class Assessment:
    level: int | None
    reasons: list[Reason] = field(default_factory=list)
    summary: str = ""

    @property
    def name(self) -> str:
        """``"II"``, or ``""`` without a warning."""
        return LEVEL_NAMES.get(self.level, "")


def assess(ind: Indicators, th: Thresholds, current: int | None = None) -> Assessment:
    """The level an event warrants now, given the level of its warning (``current``; None when
    it has none), with a reason for every indicator."""
    if not isinstance(ind, Indicators):
        raise TypeError(f"expected Indicators, got {type(ind).__name__}")
    if not isinstance(th, Thresholds):
        raise TypeError(f"expected Thresholds, got {type(th).__name__}")
    if current is not None and current not in LEVEL_NAMES:
        raise ValueError(f"current must be a level 1-4 or None, got {current!r}")
    reached = _reached(ind, th, 1.0)
    hold = 1.0 - th.downgrade_margin
    if current is None or (reached is not None and reached <= current):
        level, scale = reached, 1.0
        if current is None:
            how = "raised" if level else "none"
        else:
            how = "kept" if level == current else "raised"
    elif _reaches(ind, th, current, hold):
        level, scale, how = current, hold, "held"
    else:
        level, scale, how = (current + 1 if current < 4 else None), 1.0, "lowered"
    reasons = [_reason(ind, th, name, level, scale) for name in INDICATORS]
    return Assessment(level, reasons, _summary(ind, th, level, current, how, reasons, scale))


def _points(ind: Indicators, th: Thresholds, level: int, scale: float) -> float:
    total = 0.0
    for name in INDICATORS:
        threshold = th.threshold(name, level, scale=scale)
        if threshold is not None and getattr(ind, name) >= threshold:
            total += th.weights[name]
    return total


def _gate(th: Thresholds, level: int, scale: float) -> float:
    return th.volume_gate[LEVELS.index(level)] * scale


def _reaches(ind: Indicators, th: Thresholds, level: int, scale: float) -> bool:
    return ind.volume >= _gate(th, level, scale) and _points(ind, th, level, scale) >= (
        th.points_needed
    )


def _reached(ind: Indicators, th: Thresholds, scale: float) -> int | None:
    for level in (1, 2, 3, 4):
        if _reaches(ind, th, level, scale):
            return level
    return None


def _alone(ind: Indicators, th: Thresholds, name: str) -> int | None:
    """The most severe level this indicator's value reaches on its own thresholds."""
    value = getattr(ind, name)
    for level in (1, 2, 3, 4):
        threshold = th.threshold(name, level)
        if threshold is not None and value >= threshold:
            return level
    return None


def _reason(ind: Indicators, th: Thresholds, name: str, level: int | None, scale: float) -> Reason:
    value, weight = getattr(ind, name), th.weights[name]
    own = _alone(ind, th, name)
    at = level or 4
    threshold = th.threshold(name, at, scale=scale)
    met = threshold is not None and value >= threshold and level is not None and weight > 0
    label, shown = _LABELS[name], _show(name, value)
    if own is None:
        first = th.threshold(name, 4)
        where = "no threshold" if first is None else f"below level IV ({_show(name, first)})"
    else:
        where = f"at level {LEVEL_NAMES[own]} ({_show(name, th.threshold(name, own))} or more)"
    if weight == 0:
        part = "not counted (weight 0)"
    elif threshold is None:
        part = f"no threshold at level {LEVEL_NAMES[at]}"
    elif met:
        part = f"counts {weight:g} point{'s' if weight != 1 else ''} toward level {LEVEL_NAMES[at]}"
        if scale < 1:
            part += f" (held at {_show(name, threshold)}, the threshold less the margin)"
    elif level is None:
        part = "no warning"
    else:
        part = f"does not count toward level {LEVEL_NAMES[at]} ({_show(name, threshold)} needed)"
    return Reason(name, value, threshold, own, met, f"{label} is {shown}: {where}; {part}.")


def _summary(
    ind: Indicators,
    th: Thresholds,
    level: int | None,
    current: int | None,
    how: str,
    reasons: list[Reason],
    scale: float,
) -> str:
    def counted() -> str:
        names = [_SHORT[r.indicator] for r in reasons if r.met]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        points = _points(ind, th, level, scale)
        gate = _show("volume", _gate(th, level, scale))
        return (
            f"{points:g} points ({th.points_needed:g} needed) from {listed}, and the volume "
            f"passes the level's gate ({gate})"
        )

    margin = f"{th.downgrade_margin * 100:.0f}%"
    if how == "none":
        if ind.volume < _gate(th, 4, 1.0):
            return (
                f"No warning: the volume ({_show('volume', ind.volume)}) is below the "
                f"{_show('volume', _gate(th, 4, 1.0))} any warning needs."
            )
        points = _points(ind, th, 4, 1.0)
        return f"No warning: {points:g} of the {th.points_needed:g} points level IV needs."
    name = LEVEL_NAMES[level] if level else ""
    if how == "raised":
        start = (
            f"Raised from level {LEVEL_NAMES[current]} to {name}" if current else (f"Level {name}")
        )
        return f"{start}: {counted()}."
    if how == "kept":
        return f"Level {name} kept: {counted()}."
    if how == "held":
        return (
            f"Level {name} held: the indicators fell below it, but not by the {margin} margin "
            f"a step down needs; {counted()}."
        )
    if level is None:
        return f"Closed: the indicators are below level IV by more than the {margin} margin."
    return (
        f"Lowered from level {LEVEL_NAMES[current]} to {name}: the indicators are below level "
        f"{LEVEL_NAMES[current]} by more than the {margin} margin (one level per assessment)."
    )
