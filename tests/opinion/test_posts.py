"""Posts into the lake: validation, quarantine, de-duplication, scoring, partitions by day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from civicpulse.core.models import Area
from civicpulse.opinion import posts
from civicpulse.opinion.models import QuarantinedPost, Rule
from civicpulse.opinion.records import RawPost, Refusal
from civicpulse.opinion.services import add_concern, ensure_source

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 3, 9, 30, tzinfo=UTC)


def _post(n: int, text: str, **kw) -> RawPost:
    return RawPost(
        source="", external_id=str(n), text=text, created_at=kw.pop("at", T0), line=n, **kw
    )


def _rows(source: str, columns: str = "*") -> list[dict]:
    files = posts.day_files([(T0.date() + timedelta(days=k)).isoformat() for k in range(-2, 3)])
    con = duckdb.connect()
    cur = con.execute(
        f"SELECT {columns} FROM read_parquet(?, hive_partitioning = true) WHERE source = ? "
        "ORDER BY post_key",
        [files, source],
    )
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_good_posts_are_stored_by_day_and_bad_ones_quarantined(demo_city):
    source = ensure_source("test-store")
    items = [
        _post(1, "松河区的路灯坏了好几天了"),
        _post(2, "   "),  # no text
        _post(3, "明天的帖子", at=datetime.now(UTC) + timedelta(days=1)),
        _post(4, "无时区", at=datetime(2025, 6, 3, 9, 30)),
        _post(5, "只有经度", lon=116.4),
        _post(6, "负的阅读数", reach=-3),
        _post(7, "x" * 10_001),
        Refusal(8, "the time '2025-13-01' is not a date", "created_at", "raw row"),
        _post(9, "An English post about the bus timetable", at=T0 + timedelta(days=1)),
    ]
    batch = posts.store(source, items, name="unit")
    assert (batch.rows_read, batch.accepted, batch.quarantined) == (9, 2, 7)
    reasons = dict(QuarantinedPost.objects.filter(batch=batch).values_list("line", "field"))
    assert reasons == {
        2: "text",
        3: "created_at",
        4: "created_at",
        5: "lat",
        6: "reach",
        7: "text",
        8: "created_at",
    }
    rows = _rows("test-store", "post_key, lang, day, text")
    assert [(r["post_key"], r["lang"], str(r["day"])) for r in rows] == [
        ("test-store:1", "zh", "2025-06-03"),
        ("test-store:9", "en", "2025-06-04"),
    ]
    assert batch.committed


def test_running_the_same_input_again_stores_nothing_twice(demo_city):
    source = ensure_source("test-rerun")
    items = [_post(n, f"第{n}条：小区门口的垃圾桶满了没人清理，第{n}次反映") for n in range(5)]
    first = posts.store(source, items, name="once")
    again = posts.store(source, items + [_post(5, "新的一条：公交站牌被撞歪了")], name="twice")
    assert (first.accepted, first.duplicates) == (5, 0)
    assert (again.accepted, again.duplicates) == (1, 5)
    assert len(_rows("test-rerun", "post_key")) == 6


def test_a_repost_is_stored_but_marked_as_a_copy_of_the_original(demo_city):
    source = ensure_source("test-near")
    original = (
        "松河区滨江路自来水发黄还有一股怪味，已经连续三天了，物业说不归他们管，希望有关部门尽快处理"
    )
    batch = posts.store(
        source,
        [
            _post(1, original),
            _post(2, "转发微博 //@路人甲: " + original + "！！", at=T0 + timedelta(hours=5)),
            _post(3, "今天公园里的菊花开得正好，周末带孩子去看看", at=T0 + timedelta(hours=6)),
        ],
        name="near",
    )
    assert batch.near_duplicates == 1
    copies = {
        r["post_key"]: r["duplicate_of"] for r in _rows("test-near", "post_key, duplicate_of")
    }
    assert copies == {"test-near:1": "", "test-near:2": "test-near:1", "test-near:3": ""}


def test_authors_are_kept_only_as_a_keyed_hash(demo_city):
    source = ensure_source("test-author")
    posts.store(source, [_post(1, "路面塌陷了一个坑", author="张三的微博")], name="author")
    (row,) = _rows("test-author")
    assert "张三" not in str(row)
    assert row["author_hash"] == posts.author_hash("test-author", "张三的微博")
    assert len(row["author_hash"]) == 32


def test_places_come_from_the_text_or_from_coordinates(demo_city):
    district = Area.objects.filter(level="district").order_by("code").first()
    other = Area.objects.filter(level="district").order_by("code").last()
    ring = other.polygon["coordinates"][0]
    lon = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
    lat = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
    source = ensure_source("test-place")
    posts.store(
        source,
        [
            _post(1, f"{district.name_zh}这边下水道堵了"),
            _post(2, "这里的下水道堵了", lon=lon, lat=lat),
            _post(3, "下水道又堵了"),
        ],
        name="place",
    )
    rows = {r["post_key"]: r for r in _rows("test-place", "post_key, district_code, areas")}
    assert rows["test-place:1"]["district_code"] == district.code
    assert f"|{district.name_zh}|" in rows["test-place:1"]["areas"]
    assert rows["test-place:2"]["district_code"] == other.code
    assert rows["test-place:3"]["district_code"] == ""


def test_saved_rules_are_applied_as_posts_come_in(demo_city):
    concern = add_concern(
        "测试：燃气", category="gas", rules_=[("燃气泄漏", "(燃气 OR 煤气) AND (泄漏 OR 漏气)")]
    )
    rule = Rule.objects.get(concern=concern)
    source = ensure_source("test-rules")
    posts.store(
        source,
        [_post(1, "楼道里煤气漏气味道很大"), _post(2, "燃气费又涨价了")],
        name="rules",
    )
    rows = {r["post_key"]: r["rules"] for r in _rows("test-rules", "post_key, rules")}
    assert f"|{rule.pk}|" in rows["test-rules:1"]
    assert f"|{rule.pk}|" not in rows["test-rules:2"]
