"""Place tagging: longest match, whole words for Latin names, ambiguous names, the most
specific place, bad entries, and the demo city's posts tagged back to their districts."""

from __future__ import annotations

import pytest

from civicpulse.text.gazetteer import Gazetteer

CITY = [
    ("松河区", "239901", 1),
    ("松河", "239901", 1),
    ("东安区", "239902", 1),
    ("Heyang District", "239903", 1),
    ("Heyang", "239903", 1),
    ("新华街道", "239901001", 2),
    ("新华", "239901001", 2),
    ("和平街道", "239902001", 2),
    ("幸福社区", "239901001001", 3),  # a name two districts share
    ("幸福社区", "239902001001", 3),
    ("丽园社区", "239901001002", 3),
    ("丽园社区", "239901001003", 3),  # two in one street
    ("第1网格", "239901001001001", 4),
    ("第1网格", "239902001001001", 4),
    ("1号楼", "239901001002001", 4),
]


@pytest.fixture(scope="module")
def places():
    return Gazetteer(CITY)


def test_longest_name_wins_and_matches_do_not_overlap(places):
    assert places.find("松河区路灯不亮") == ["239901"]
    assert places.find("松河的风真大") == ["239901"]
    assert places.find("新华街道门口") == ["239901001"]  # not 新华 + a stray 街道
    assert places.find("松河区新华街道，又是松河区") == ["239901", "239901001"]  # each once
    assert places.find("今天天气不错") == []


def test_latin_names_and_numbers_match_as_whole_words_only(places):
    assert places.find("Pothole in HEYANG district, again") == ["239903"]
    assert places.find("heyangxyz") == []
    assert places.find("21号楼电梯坏了") == []
    assert places.find("1号楼电梯坏了") == ["239901001002001"]
    assert places.find("ＨＥＹＡＮＧ") == ["239903"]  # full width folded


def test_an_ambiguous_name_is_settled_by_a_place_named_beside_it(places):
    assert places.find("松河区幸福社区停水") == ["239901", "239901001001"]
    assert places.find("和平街道幸福社区停水") == ["239902001", "239902001001"]
    assert places.find("东安区第1网格") == ["239902", "239902001001001"]


def test_an_unsettled_ambiguous_name_says_what_is_certain_or_nothing(places):
    assert places.find("幸福社区停水") == []  # two districts: no guess
    assert places.find("丽园社区停水") == ["239901001"]  # both in 新华街道: say the street


def test_best_is_the_deepest_place_and_the_first_of_equals(places):
    assert places.best("松河区新华街道幸福社区第1网格") == "239901001001001"
    assert places.best("东安区和松河区") == "239902"
    assert places.best("没有地名") is None


def test_bad_entries_are_named():
    with pytest.raises(ValueError, match=r"entry 2 \(x\): depth must be 1"):
        Gazetteer([("a", "1", 1), ("x", "2", 5)])
    with pytest.raises(ValueError, match="entry 1: the name must be a non-empty string"):
        Gazetteer([("  ", "1", 1)])
    with pytest.raises(ValueError, match="entry 1: expected \\(name, code, depth\\)"):
        Gazetteer([("a", "1")])
    with pytest.raises(ValueError, match="area '1' given depth 2, but depth 1 before"):
        Gazetteer([("a", "1", 1), ("b", "1", 2)])
    with pytest.raises(ValueError, match="at least one"):
        Gazetteer([])
    with pytest.raises(TypeError, match="text is int"):
        Gazetteer(CITY).find(3)


def _demo_entries(areas):
    """As a city would pass them: full names in Chinese and English, districts without 区,
    streets without 街道 (the demo names its roads after them: 花园街道 → 花园街)."""
    depth = {"district": 1, "street": 2, "community": 3, "grid": 4}
    entries = []
    for area in areas:
        if area.level in depth:
            entries += [(area.name_zh, area.code, depth[area.level])]
            entries += [(area.name_en, area.code, depth[area.level])]
        if area.level == "district":
            entries.append((area.name_zh.removesuffix("区"), area.code, 1))
        if area.level == "street":
            entries.append((area.name_zh.removesuffix("街道"), area.code, 2))
    return entries


def test_demo_posts_are_tagged_back_to_their_districts():
    """docs/sentiment.md: precision 1.000, recall 0.637 (the misses are community names
    several districts share, named alone)."""
    from civicpulse.demo.generator import DemoCity

    city = DemoCity(seed=7, size="small")
    areas = {a.code: a for a in city.areas}
    gazetteer = Gazetteer(_demo_entries(city.areas))

    def district(code):
        while code is not None and areas[code].level != "district":
            code = areas[code].parent_code
        return code

    posts = [p for batch in city.posts() for p in batch]
    tagged = [(p, district(gazetteer.best(p.text))) for p in posts]
    said = [(p, got) for p, got in tagged if got is not None]
    precision = sum(got == p.area_code for p, got in said) / len(said)
    located = [(p, got) for p, got in tagged if p.area_code is not None]
    recall = sum(got == p.area_code for p, got in located) / len(located)
    assert precision >= 0.99 and recall >= 0.6, (precision, recall)
    # a post naming its district or street outright is always placed, and rightly
    plain = [a.name_zh for a in city.areas if a.level in ("district", "street")]
    named = [(p, got) for p, got in located if any(n in p.text for n in plain)]
    assert len(named) > 500
    assert all(got == p.area_code for p, got in named)
