"""Importing an area tree from GeoJSON: stored with paths, refused whole on a bad record."""

from __future__ import annotations

import json

import pytest

from civicpulse.core.areas import AreaError, import_geojson
from civicpulse.core.models import Area

pytestmark = pytest.mark.django_db

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def _feature(code: str, level: str, parent: str | None, **extra) -> dict:
    props = {
        "code": code,
        "level": level,
        "name_zh": f"区域{code}",
        "name_en": f"Area {code}",
        "parent_code": parent,
        **extra,
    }
    return {"type": "Feature", "properties": props, "geometry": SQUARE}


def _write(tmp_path, features: list[dict]):
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_tree_is_stored_with_paths_and_reimport_updates(tmp_path):
    features = [
        _feature("159900", "city", None),
        _feature("159901", "district", "159900", heated=True),
        _feature("159901001", "street", "159901"),
        _feature("159901001001", "community", "159901001"),
        _feature("159901001001001", "grid", "159901001001"),
    ]
    # children listed before their parents still land in order
    assert import_geojson(_write(tmp_path, features[::-1])) == (5, 0)
    grid = Area.objects.get(code="159901001001001")
    assert grid.path == "/159900/159901/159901001/159901001001/159901001001001/"
    assert [a.code for a in grid.ancestors()][:2] == ["159900", "159901"]
    assert Area.objects.get(code="159901").heated is True
    features[1]["properties"]["name_en"] = "Renamed District"
    assert import_geojson(_write(tmp_path, features)) == (0, 5)
    assert Area.objects.get(code="159901").name_en == "Renamed District"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_feature("15990", "district", "159900"), "is not a 6-digit district code"),
        (_feature("159902", "county", "159900"), "level 'county'"),
        (_feature("159902001", "street", "159999"), "parent_code '159999' is not a known area"),
        ({"type": "Feature", "properties": {"code": "159903", "level": "district"}}, "missing"),
    ],
)
def test_a_bad_record_is_named_and_nothing_is_stored(tmp_path, bad, message):
    before = Area.objects.count()
    path = _write(tmp_path, [_feature("159900", "city", None), bad])
    with pytest.raises(AreaError, match=message):
        import_geojson(path)
    assert Area.objects.count() == before


def test_a_file_that_is_not_geojson_is_refused(tmp_path):
    path = tmp_path / "broken.geojson"
    path.write_text("{not json")
    with pytest.raises(AreaError, match="not a readable GeoJSON"):
        import_geojson(path)
