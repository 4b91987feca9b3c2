"""Scoring a post on its way in: language, sentiment, place, saved rules and sensitive terms.

Everything a post needs for the stream is computed once, here, and stored beside it in the lake,
so hot issues, warnings and history search read columns instead of re-reading text. The
:class:`Scorer` holds what is costly to build (the rule set, the gazetteer, the area boundaries)
and is rebuilt only when rules, terms or areas change.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from django.db.models import Count, Max

from civicpulse.core.areas import AreaLocator
from civicpulse.core.models import Area
from civicpulse.opinion.models import Rule, SensitiveTerm
from civicpulse.opinion.records import RawPost
from civicpulse.text import fingerprint, rules, sentiment
from civicpulse.text.gazetteer import Gazetteer
from civicpulse.text.tokenize import guess_language, normalize

# Suffixes a place is often named without: 松河区 is also said 松河.
_SHORT_SUFFIXES = ("街道", "社区", "区", "县", "镇", "乡", "村")
_DEPTH = {"district": 1, "street": 2, "community": 3, "grid": 4}


@dataclass(slots=True)
class Scores:
    """Columns for a batch of posts, in the order they were given."""

    lang: list[str] = field(default_factory=list)
    sentiment: np.ndarray | None = None
    simhash: list[int] = field(default_factory=list)
    content_hash: list[str] = field(default_factory=list)
    area_code: list[str] = field(default_factory=list)  # finest area named or located, or ""
    district_code: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)  # "|code|name|...|" with ancestors
    rules: list[str] = field(default_factory=list)  # "|3|7|"
    sensitive: list[float] = field(default_factory=list)


class Scorer:
    """What scoring needs, built from the store once and reused for every batch."""

    def __init__(self) -> None:
        self.rule_set = rules.RuleSet(
            [
                (r.pk, rules.parse(r.query))
                for r in Rule.objects.filter(is_active=True).only("pk", "query")
            ]
        )
        self.terms = [(normalize(t.term), t.weight) for t in SensitiveTerm.objects.all()]
        self._build_places()

    def _build_places(self) -> None:
        areas = list(Area.objects.values_list("code", "level", "name_zh", "name_en", "path"))
        by_code = {code: (level, zh, en, path) for code, level, zh, en, path in areas}
        entries = []
        for code, level, zh, _en, _path in areas:
            depth = _DEPTH.get(level)
            if depth is None:
                continue
            entries.append((zh, code, depth))
            short = _short_name(zh)
            if short and depth <= 2:  # short names of small places collide too often
                entries.append((short, code, depth))
        self.gazetteer = Gazetteer(entries) if entries else None  # no area tree yet
        self.locator = AreaLocator()
        self.tags: dict[str, str] = {}
        self.district: dict[str, str] = {}
        for code, (_level, _zh, _en, path) in by_code.items():
            chain = [c for c in path.strip("/").split("/") if c in by_code]
            parts = []
            for c in chain:
                parts.extend([c, by_code[c][1], by_code[c][2]])
            self.tags[code] = "|" + "|".join(parts) + "|"
            self.district[code] = next(
                (c for c in chain if by_code[c][0] == Area.Level.DISTRICT), ""
            )

    def score(self, posts: Sequence[RawPost]) -> Scores:
        out = Scores()
        texts = [p.text for p in posts]
        out.lang = [guess_language(t) for t in texts]
        out.sentiment = sentiment.polarities(texts, out.lang)
        # fingerprints as whole batches: one call per post was half the time of scoring
        out.simhash = [int(x) for x in fingerprint.simhashes(texts)]
        out.content_hash = fingerprint.content_hashes(texts)
        for post, text, lang in zip(posts, texts, out.lang, strict=True):
            code = ""
            if post.lon is not None and post.lat is not None:
                code = self.locator.locate(post.lon, post.lat) or ""
            if not code and self.gazetteer is not None:
                code = self.gazetteer.best(f"{post.place} {text}" if post.place else text) or ""
            out.area_code.append(code)
            out.district_code.append(self.district.get(code, ""))
            tags = self.tags.get(code, "")
            out.areas.append(tags)
            view = {"text": text, "lang": lang, "source": post.source, "areas": _tag_set(tags)}
            matched = self.rule_set.match(view)
            out.rules.append(f"|{'|'.join(str(i) for i in sorted(matched))}|" if matched else "")
            out.sensitive.append(self.sensitivity(text))
        return out

    def sensitivity(self, text: str) -> float:
        if not self.terms:
            return 0.0
        folded = normalize(text)
        return float(sum(weight for term, weight in self.terms if term in folded))


def _short_name(name: str) -> str:
    for suffix in _SHORT_SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return ""


def _tag_set(tags: str) -> frozenset[str]:
    return frozenset(t for t in tags.split("|") if t)


_lock = threading.Lock()
_cached: tuple[tuple, Scorer] | None = None


def _version() -> tuple:
    """Changes whenever a rule, a sensitive term or the area tree changes."""
    return (
        tuple(Rule.objects.aggregate(n=Count("pk"), t=Max("updated_at")).values()),
        tuple(SensitiveTerm.objects.aggregate(n=Count("pk"), t=Max("updated_at")).values()),
        tuple(Area.objects.aggregate(n=Count("pk"), m=Max("pk")).values()),
    )


def scorer() -> Scorer:
    """The process's scorer, rebuilt when what it was built from has changed."""
    global _cached
    version = _version()
    with _lock:
        if _cached is None or _cached[0] != version:
            _cached = (version, Scorer())
        return _cached[1]
