"""Building the area tree from specs or from a GeoJSON file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from civicpulse.core.models import Area

CODE_LENGTH = {"city": 6, "district": 6, "street": 9, "community": 12, "grid": 15}
_CODE = re.compile(r"^\d{6}(\d{3}){0,3}$")


class AreaError(ValueError):
    """An area record that cannot be stored; names the record and field."""


@dataclass(frozen=True)
class AreaRecord:
    code: str
    level: str
    name_zh: str
    name_en: str
    parent_code: str | None
    polygon: dict | None = None
    heated: bool = False


def _check(record: AreaRecord, where: str, known: set[str]) -> None:
    if record.level not in CODE_LENGTH:
        raise AreaError(f"{where}: level {record.level!r} is not one of {', '.join(CODE_LENGTH)}")
    if not _CODE.match(record.code) or len(record.code) != CODE_LENGTH[record.level]:
        raise AreaError(
            f"{where}: code {record.code!r} is not a {CODE_LENGTH[record.level]}-digit "
            f"{record.level} code"
        )
    if record.level != "city" and record.parent_code not in known:
        raise AreaError(f"{where}: parent_code {record.parent_code!r} is not a known area")
    if not record.name_zh or not record.name_en:
        raise AreaError(f"{where}: name_zh and name_en are both required")
    if record.polygon is not None and record.polygon.get("type") not in ("Polygon", "MultiPolygon"):
        raise AreaError(f"{where}: geometry must be a Polygon or MultiPolygon")


@transaction.atomic
def save_tree(records: Iterable[AreaRecord], *, source: str = "areas") -> tuple[int, int]:
    """Create or update areas (parents before children); all or nothing. Returns counts."""
    order = list(CODE_LENGTH)
    records = sorted(
        records, key=lambda r: (order.index(r.level) if r.level in order else len(order), r.code)
    )
    for r in records:  # an unknown level would otherwise be skipped by the loop below
        if r.level not in CODE_LENGTH:
            raise AreaError(
                f"{source} record {r.code}: level {r.level!r} is not one of "
                f"{', '.join(CODE_LENGTH)}"
            )
    existing = {a.code: a for a in Area.objects.all()}
    known = set(existing)
    paths = {a.code: a.path for a in existing.values()}
    ids = {a.code: a.pk for a in existing.values()}
    created = updated = 0
    for level in order:
        batch_new, batch_old = [], []
        for i, r in enumerate(x for x in records if x.level == level):
            _check(r, f"{source} record {r.code or i}", known)
            fields = dict(
                level=r.level,
                name_zh=r.name_zh,
                name_en=r.name_en,
                polygon=r.polygon,
                heated=r.heated,
                parent_id=ids.get(r.parent_code) if r.parent_code else None,
                path=(paths[r.parent_code] if r.parent_code else "/") + f"{r.code}/",
            )
            paths[r.code] = fields["path"]
            known.add(r.code)
            if r.code in existing:
                area = existing[r.code]
                for k, v in fields.items():
                    setattr(area, k, v)
                batch_old.append(area)
            else:
                batch_new.append(Area(code=r.code, **fields))
        # bulk_create skips save(), so the paths computed above are what gets stored
        Area.objects.bulk_create(batch_new, batch_size=2000)
        Area.objects.bulk_update(
            batch_old,
            ["level", "name_zh", "name_en", "polygon", "heated", "parent_id", "path"],
            batch_size=2000,
        )
        for area in Area.objects.filter(level=level).only("id", "code"):
            ids[area.code] = area.pk
        created, updated = created + len(batch_new), updated + len(batch_old)
    return created, updated


def import_geojson(path: Path) -> tuple[int, int]:
    """Areas from a FeatureCollection whose properties hold code, level, name_zh, name_en and
    parent_code (and optionally heated)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AreaError(f"{path}: not a readable GeoJSON file ({exc})") from None
    if doc.get("type") != "FeatureCollection":
        raise AreaError(f"{path}: expected a FeatureCollection, found {doc.get('type')!r}")
    records = []
    for i, feature in enumerate(doc.get("features", []), start=1):
        props = feature.get("properties") or {}
        missing = [k for k in ("code", "level", "name_zh", "name_en") if not props.get(k)]
        if missing:
            raise AreaError(f"{path}: feature {i}: missing {', '.join(missing)}")
        records.append(
            AreaRecord(
                code=str(props["code"]),
                level=props["level"],
                name_zh=props["name_zh"],
                name_en=props["name_en"],
                parent_code=props.get("parent_code"),
                polygon=feature.get("geometry"),
                heated=bool(props.get("heated", False)),
            )
        )
    return save_tree(records, source=str(path))


def _inside(lon: float, lat: float, ring: list) -> bool:
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
        if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
            inside = not inside
    return inside


def holds(polygon: dict | None, lon: float, lat: float) -> bool:
    """Whether a GeoJSON Polygon or MultiPolygon (outer rings) holds the point."""
    poly = polygon or {}
    if poly.get("type") == "Polygon":
        rings = [poly["coordinates"][0]]
    elif poly.get("type") == "MultiPolygon":
        rings = [p[0] for p in poly["coordinates"]]
    else:
        return False
    return any(_inside(lon, lat, ring) for ring in rings)


class AreaLocator:
    """The area tree's boundaries held in memory, for placing many points without a query each
    (a feed of posts with coordinates); :func:`cases.workflow.locate` does the same for one."""

    def __init__(self) -> None:
        children: dict[str | None, list[tuple[str, dict]]] = {}
        for code, parent, polygon, level in Area.objects.values_list(
            "code", "parent__code", "polygon", "level"
        ):
            if level == Area.Level.CITY:
                code_parent = None
            else:
                code_parent = parent
            if polygon and level != Area.Level.CITY:
                children.setdefault(code_parent, []).append((code, polygon))
        cities = set(Area.objects.filter(level=Area.Level.CITY).values_list("code", flat=True))
        self._top = [c for p, kids in children.items() if p in cities for c in kids]
        self._children = children

    def locate(self, lon: float, lat: float) -> str | None:
        """The code of the finest area whose boundary holds the point, or None."""
        found, candidates = None, self._top
        while candidates:
            inside = next((code for code, poly in candidates if holds(poly, lon, lat)), None)
            if inside is None:
                break
            found, candidates = inside, self._children.get(inside, [])
        return found
