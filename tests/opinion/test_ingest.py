"""Posts from files and feeds: the readers on their own (what they yield for good and bad
input), then end to end through ``posts.store``, the command line, and a real HTTP feed server
on 127.0.0.1."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from civicpulse.opinion import ingest
from civicpulse.opinion.records import MAX_TEXT, RawPost, Refusal
from tests.support import REPO_ROOT, shared_data

FEEDS = Path(__file__).with_name("feeds")
WEIBO = "zh/covid19_weibo_unlabeled_daily_2020.csv.gz"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _square(lon: float, lat: float, half: float) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half]]
    return {"type": "Polygon", "coordinates": [[*ring, [lon - half, lat + half], ring[0]]]}


# A city with one district: scoring places posts in the city's area tree, so a store that takes
# posts has one (codes of their own, beside the demo city other tests may have built).
AREAS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {
                "code": "990000",
                "level": "city",
                "name_zh": "江城市",
                "name_en": "Jiang",
            },
            "geometry": _square(126.6, 45.75, 0.5),
        },
        {
            "type": "Feature",
            "properties": {
                "code": "990102",
                "level": "district",
                "name_zh": "松河区",
                "name_en": "Songhe",
                "parent_code": "990000",
            },
            "geometry": _square(126.6, 45.75, 0.1),
        },
    ],
}


def import_areas(tmp_path: Path) -> None:
    from civicpulse.core import areas

    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(AREAS, ensure_ascii=False), encoding="utf-8")
    areas.import_geojson(path)


@pytest.fixture
def city(db, tmp_path):
    import_areas(tmp_path)


def _unique(name: str) -> str:
    """A source name of this test's own: the lake outlives each test's database."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _split(items) -> tuple[list[RawPost], list[Refusal]]:
    items = list(items)
    posts = [i for i in items if isinstance(i, RawPost)]
    refusals = [i for i in items if isinstance(i, Refusal)]
    assert len(posts) + len(refusals) == len(items)
    return posts, refusals


def _read(path: Path, mapping: str | None = None, source: str = "test"):
    return _split(ingest.read_file(path, ingest.mapping(mapping), source=source))


def _weibo_csv(path: Path, rows: list[tuple[str, str, str]], encoding: str = "utf-8") -> Path:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(["date", "userid", "text"])
    writer.writerows(rows)
    data = text.getvalue().encode(encoding)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


ROWS = [
    ("2020-01-20", "1001", "武汉加油，口罩买不到了"),
    ("2020-01-20", "1002", "小区今天开始测体温，排队很长"),
    ("2020-02-03", "1001", "超市菜价涨了一倍，希望有人管管"),
]


# --------------------------------------------------------------------------- mappings


def test_the_built_in_mappings_load_and_say_what_they_read():
    known = ingest.mappings()
    assert {"generic", "weibo2020"} <= set(known)
    weibo = ingest.mapping("weibo2020")
    assert weibo.source == "weibo2020" and weibo.derive == ("date", "userid", "text")
    assert weibo.tz == SHANGHAI and weibo.time_formats[0] == "%Y-%m-%d"
    generic = ingest.mapping(None)
    assert generic.label == "generic" and generic.columns["time"] == ("created_at",)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[columns]\ntext='t'\n", r"\[columns\] time is required"),
        ("[columns]\ntext='t'\ntime='d'\n[time]\nformats=['iso']\n", r"or \[id\] derive"),
        (
            "[columns]\nid='i'\ntext='t'\ntime='d'\n[id]\nderive=['t']\n[time]\nformats=['iso']\n",
            "and not both",
        ),
        ("[columns]\nid='i'\ntext='t'\ntime='d'\n", r"\[time\] formats is required"),
        (
            "[columns]\nid='i'\ntext='t'\ntime='d'\n[time]\nformats=['yesterday']\n",
            "'yesterday' is neither",
        ),
        ("colums = 1\n", "colums is not a known key"),
        ("[columns]\nbody='b'\n", r"\[columns\] body is not a known key"),
        (
            "timezone='Mars/Olympus'\n[columns]\nid='i'\ntext='t'\ntime='d'\n[time]\nformats=['iso']\n",
            "'Mars/Olympus' is not a known time zone",
        ),
        ("[columns\n", "is not valid TOML"),
    ],
)
def test_a_mapping_that_cannot_work_is_refused_naming_the_key(tmp_path, toml, message):
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ingest.IngestFailed, match=message):
        ingest.mapping(path)


def test_an_unknown_mapping_name_lists_the_built_in_ones():
    with pytest.raises(ingest.IngestFailed, match=r"unknown mapping 'tweets'.*generic.*weibo2020"):
        ingest.mapping("tweets")


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    ("name", "encoding", "detected"),
    [
        ("plain.csv", "utf-8", "utf-8"),
        ("bom.csv", "utf-8-sig", "utf-8"),
        ("gbk.csv", "gb18030", "gb18030"),
        ("packed.csv.gz", "utf-8", "utf-8"),
        ("packed-gbk.csv.gz", "gb18030", "gb18030"),
    ],
)
def test_csv_in_each_encoding_and_gzip_reads_the_same(tmp_path, name, encoding, detected):
    path = _weibo_csv(tmp_path / name, ROWS, encoding)
    reader = ingest.PostFile(path, ingest.mapping("weibo2020"), "weibo2020")
    assert reader.encoding == detected and reader.format == "csv"
    posts, refusals = _split(reader)
    assert refusals == []
    assert [p.text for p in posts] == [r[2] for r in ROWS]
    assert [p.author for p in posts] == [r[1] for r in ROWS]
    assert [p.line for p in posts] == [2, 3, 4]
    assert posts[0].created_at == datetime(2020, 1, 20, tzinfo=SHANGHAI)
    assert posts[2].created_at.utcoffset().total_seconds() == 8 * 3600


def test_a_derived_id_is_the_same_on_every_run_and_differs_with_the_row(tmp_path):
    first, _ = _read(_weibo_csv(tmp_path / "a.csv", ROWS), "weibo2020")
    again, _ = _read(_weibo_csv(tmp_path / "b.csv.gz", list(reversed(ROWS))), "weibo2020")
    assert [p.external_id for p in first] == [p.external_id for p in reversed(again)]
    assert len({p.external_id for p in first}) == 3
    edited, _ = _read(
        _weibo_csv(tmp_path / "c.csv", [(ROWS[0][0], ROWS[0][1], ROWS[0][2] + "！")]), "weibo2020"
    )
    assert edited[0].external_id != first[0].external_id
    assert first[0].external_id == ingest.derived_id(*ROWS[0])


def test_bad_csv_rows_are_refused_with_line_and_column_and_the_rest_read(tmp_path):
    good = "交通拥堵，公交晚点"
    lines = [
        b"date,userid,text\r\n",
        f"2020-01-21,2001,{good}\r\n".encode(),  # line 2
        b"2020-13-45,2002,bad date\r\n",  # 3
        b"2020-01-21,2003,\r\n",  # 4: no text
        b"2020-01-21,2004,too,many\r\n",  # 5
        b"2020-01-21,2005,\xff\xfe broken bytes\r\n",  # 6: not UTF-8
        f'2020-01-21,2006,"{"长" * (MAX_TEXT + 1)}"\r\n'.encode(),  # 7
        b'2020-01-21,2007,"two\r\nlines"\r\n',  # 8-9: one record
        b"\r\n",  # 10: blank, skipped
        f"2020-01-22,2008,{good}\r\n".encode(),  # 11
        b",2009,no date\r\n",  # 12
    ]
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"".join(lines))
    posts, refusals = _read(path, "weibo2020")
    assert [(r.line, r.field) for r in refusals] == [
        (3, "date"),
        (4, "text"),
        (5, ""),
        (6, ""),
        (7, "text"),
        (12, "date"),
    ]
    by_line = {r.line: r for r in refusals}
    assert "'2020-13-45' is not a time in %Y-%m-%d or iso" in by_line[3].reason
    assert by_line[4].reason == "is empty: a post needs its text"
    assert by_line[5].reason == "has 4 fields where the header has 3"
    assert by_line[6].reason.startswith("line 6 is not utf-8 text (byte 0xff")
    assert f"is longer than {MAX_TEXT:,} characters" in by_line[7].reason
    assert by_line[12].reason == "is empty: a post needs its time"
    assert json.loads(by_line[3].raw) == {
        "date": "2020-13-45",
        "userid": "2002",
        "text": "bad date",
    }
    assert [(p.line, p.text) for p in posts] == [(2, good), (8, "two\r\nlines"), (11, good)]


def test_a_field_beyond_the_csv_limit_is_one_refusal(tmp_path):
    huge = "x" * (csv.field_size_limit() + 10)
    path = tmp_path / "huge.csv"
    path.write_text(
        f'date,userid,text\n2020-01-21,1,"{huge}"\n2020-01-21,2,after\n', encoding="utf-8"
    )
    posts, refusals = _read(path, "weibo2020")
    assert [r.line for r in refusals] == [2]
    assert "a field is longer than" in refusals[0].reason
    assert [p.text for p in posts] == ["after"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02binary\x00", "NUL bytes"),
        (b"date,user,text\n2020-01-01,1,x\n", "has no column 'userid'"),
        (b"\xff\xfed\x00a\x00t\x00e\x00", "UTF-16"),
    ],
)
def test_a_file_that_cannot_be_read_fails_before_anything_is_yielded(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ingest.IngestFailed, match=message):
        list(ingest.read_file(path, ingest.mapping("weibo2020")))


def _cut_gzip(tmp_path: Path, rows: int, keep: float) -> Path:
    import random

    rng = random.Random(7)  # varied text, so the compressed size follows the rows
    words = ["口罩", "菜价", "社区", "封闭", "排队", "测温", "快递", "停课", "复工", "物业"]
    lines = [
        (f"2020-02-{1 + i % 28:02d}", str(i), "".join(rng.choices(words, k=12)) + str(i))
        for i in range(rows)
    ]
    whole = _weibo_csv(tmp_path / "whole.csv.gz", lines).read_bytes()
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[: int(len(whole) * keep)])
    return cut


def test_a_gzip_cut_after_the_first_mib_yields_what_it_holds_then_a_refusal(tmp_path):
    cut = _cut_gzip(tmp_path, 40_000, 0.8)
    posts, refusals = _read(cut, "weibo2020")
    assert 28_000 < len(posts) < 40_000
    assert len(refusals) <= 2  # the damage, and perhaps the row it cut in half
    assert "the file is damaged after line" in refusals[-1].reason
    assert "the rest was not read" in refusals[-1].reason


def test_a_gzip_cut_within_the_first_mib_is_refused_whole(tmp_path):
    cut = _cut_gzip(tmp_path, 3000, 0.5)
    with pytest.raises(ingest.IngestFailed, match="cut.csv.gz: the file is damaged"):
        list(ingest.read_file(cut, ingest.mapping("weibo2020")))


# --------------------------------------------------------------------------- JSONL


def test_jsonl_in_our_own_field_names(tmp_path):
    records = [
        {
            "id": 9001,
            "text": "  Heating off in block 4  ",
            "created_at": "2026-11-20T07:30:00+08:00",
            "author": "ann",
            "url": "https://example.invalid/9001",
            "reach": "1,250",
            "reposts": 3,
            "lon": 126.61,
            "lat": 45.76,
            "place": "Songhe",
        },
        {"id": "9002", "text": "No offset given", "created_at": "2026-11-20 08:00"},
        {"id": "9003", "text": "Seconds since 1970", "created_at": 1795000000},
        "not an object",
        {"id": "9004", "created_at": "2026-11-20T08:00:00Z"},
        {"id": "9005", "text": "when?", "created_at": "soon"},
        {"id": "9006", "text": "many", "created_at": "2026-11-20T08:00:00Z", "reach": "lots"},
        {"id": "9007", "text": "where", "created_at": "2026-11-20T08:00:00Z", "lat": "north"},
        {"id": "", "text": "nameless", "created_at": "2026-11-20T08:00:00Z"},
        {"id": "9008", "text": {"nested": 1}, "created_at": "2026-11-20T08:00:00Z"},
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    lines.insert(3, '{"id": "broken", "text": ')  # line 4
    lines.insert(5, "")  # line 6: blank, skipped
    lines.append('{"id": "nan", "text": "x", "created_at": "2026-11-20T08:00:00Z", "lon": NaN}')
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    posts, refusals = _read(path)
    first = posts[0]
    assert (first.external_id, first.text, first.author, first.reach, first.reposts) == (
        "9001",
        "Heating off in block 4",
        "ann",
        1250,
        3,
    )
    assert (first.lon, first.lat, first.place, first.line) == (126.61, 45.76, "Songhe", 1)
    assert first.created_at == datetime(2026, 11, 19, 23, 30, tzinfo=UTC)
    naive = posts[1]
    assert naive.created_at.tzinfo is not None  # read in the platform's zone
    assert posts[2].created_at == datetime.fromtimestamp(1795000000, UTC)
    assert [p.external_id for p in posts] == ["9001", "9002", "9003"]
    assert [(r.line, r.field) for r in refusals] == [
        (4, ""),
        (5, ""),
        (7, "text"),
        (8, "created_at"),
        (9, "reach"),
        (10, "lat"),
        (11, "id"),
        (12, "text"),
        (13, ""),
    ]
    reasons = {r.line: r.reason for r in refusals}
    assert reasons[4].startswith("is not valid JSON")
    assert reasons[5] == "is not a JSON object"
    assert reasons[9] == "'lots' is not a whole number"
    assert reasons[10] == "'north' is not a number"
    assert reasons[12] == "holds a list or an object, not a single value"
    assert reasons[13] == "is not valid JSON (NaN is not a JSON number)"


def test_a_mapping_reaches_into_nested_json(tmp_path):
    mapping = tmp_path / "nested.toml"
    mapping.write_text(
        'source = "vendor"\n'
        "[columns]\n"
        'id = "mid"\ntext = ["title", "body"]\ntime = "ts"\nauthor = "user.handle"\n'
        'reach = "user.followers"\n'
        "[time]\n"
        'formats = ["epoch_ms"]\n',
        encoding="utf-8",
    )
    path = tmp_path / "vendor.ndjson"
    record = {
        "mid": "m1",
        "title": "停水通知",
        "body": "明天9点到17点停水",
        "ts": 1795000000000,
        "user": {"handle": "water-co", "followers": 5200},
    }
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    posts, refusals = _split(ingest.read_file(path, ingest.mapping(mapping)))
    assert refusals == []
    assert posts[0].source == "vendor" and posts[0].text == "停水通知\n明天9点到17点停水"
    assert (posts[0].author, posts[0].reach) == ("water-co", 5200)
    assert posts[0].created_at == datetime.fromtimestamp(1795000000, UTC)


# --------------------------------------------------------------------------- the real Weibo file


@pytest.mark.shared_data
def test_the_whole_weibo_file_reads_with_one_id_per_distinct_row():
    path = shared_data(WEIBO)
    reader = ingest.PostFile(path, ingest.mapping("weibo2020"), "weibo2020")
    assert (reader.encoding, reader.format) == ("utf-8", "csv")
    ids, refusals, rows = set(), [], 0
    first = last = None
    for item in reader:
        if isinstance(item, Refusal):
            refusals.append(item)
            continue
        rows += 1
        ids.add(item.external_id)
        first = first or item
        last = item
    # read again independently: the distinct (date, user, text) rows of the file
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        records = csv.reader(handle)
        next(records)
        distinct = {tuple(r) for r in records}
    assert refusals == [] and rows == 620_783
    assert len(ids) == len(distinct)  # exact repeats share an id; nothing else does
    assert first.created_at == datetime(2020, 1, 19, tzinfo=SHANGHAI)
    assert last.created_at.date().isoformat() <= "2020-04-07"


# --------------------------------------------------------------------------- feeds, parsed


def test_an_rss_feed_becomes_posts_and_refusals_per_entry():
    body = (FEEDS / "city_rss.xml").read_bytes()
    posts, refusals = _split(ingest.read_feed(body, source="forum", name="songhe"))
    assert [p.external_id for p in posts] == [
        "songhe-msg-1001",
        "http://forum.example.invalid/songhe/1002",  # no guid: the link
        "songhe-msg-1005",
    ]
    heating = posts[0]
    assert heating.text.splitlines() == [
        "幸福小区暖气不热",
        "幸福小区3号楼暖气连续三天不热，室温只有14度。",
        "老人孩子都冻感冒了 & 物业不接电话。",
    ]
    assert "alert" not in heating.text and "color" not in heating.text
    assert heating.created_at == datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    assert (heating.lon, heating.lat) == (126.6103, 45.7612)
    assert heating.author == "resident-88"
    assert heating.url == "http://forum.example.invalid/songhe/1001"
    assert posts[2].text == "路灯不亮\n江畔路的路灯坏了一周，晚上很危险。"
    assert [(r.line, r.field) for r in refusals] == [(3, "published"), (4, "summary")]
    assert "no published or updated date" in refusals[0].reason
    assert "no title or text" in refusals[1].reason
    assert json.loads(refusals[0].raw)["id"] == "songhe-msg-1003"


def test_an_atom_feed_takes_published_else_updated_and_strips_html():
    body = (FEEDS / "city_atom.xml").read_bytes()
    posts, refusals = _split(ingest.read_feed(body, source="news", name="atom"))
    water, market = posts
    assert water.text == (
        "Water main burst on Harbour Road\n"
        "Residents of three blocks have had no water since 6 am.\n"
        "The utility promises repairs by evening."
    )
    assert water.created_at == datetime(2026, 11, 20, 23, 10, tzinfo=UTC)  # published
    assert market.created_at == datetime(2026, 11, 21, 11, 30, tzinfo=UTC)  # only updated
    assert market.text.endswith("stays loud past midnight.")
    assert water.author == "City desk" and (water.lon, water.lat) == (126.6622, 45.7401)
    assert len(refusals) == 1 and refusals[0].line == 3
    assert "'sometime last week' is not a date" in refusals[0].reason


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("not_a_feed.html", "feed test is not an RSS or Atom feed"),
        ("not_xml.json", "feed test cannot be read: <unknown>:"),
    ],
)
def test_a_document_that_is_no_feed_is_one_refusal_naming_it(fixture, reason):
    items = list(ingest.read_feed((FEEDS / fixture).read_bytes(), source="s", name="test"))
    assert len(items) == 1 and isinstance(items[0], Refusal)
    assert items[0].line == 0 and items[0].reason.startswith(reason)


def test_a_feed_body_that_names_a_local_file_is_not_opened():
    """feedparser opens a bytes value as a file name when it can; the reader never lets it."""
    body = str(FEEDS / "city_rss.xml").encode()
    items = list(ingest.read_feed(body, source="s", name="trick"))
    assert len(items) == 1 and isinstance(items[0], Refusal)


def test_a_relative_entry_link_is_read_against_the_feed_address():
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        b"<title>Bins not emptied</title><link>/posts/77</link>"
        b"<pubDate>Fri, 20 Nov 2026 08:00:00 +0000</pubDate></item></channel></rss>"
    )
    (post,) = ingest.read_feed(body, source="s", name="f", base="http://forum.example.invalid/rss")
    assert post.url == "http://forum.example.invalid/posts/77"
    assert post.external_id == post.url


def test_strip_html_keeps_text_and_drops_what_runs():
    html = (
        "<div>One &amp; two<br>three<script>steal()</script>"
        "<style>x{}</style><p>four&nbsp;five</p></div>"
    )
    assert ingest.strip_html(html) == "One & two\nthree\nfour five"
    assert ingest.strip_html("no markup < at all") == "no markup < at all"


# --------------------------------------------------------------------------- a real feed server


class _FeedServer:
    """Feeds served over HTTP on 127.0.0.1 from a thread: ETag and 304, a slow path,
    redirects to ftp:// and file://; it records the headers each request came with."""

    def __init__(self):
        self.routes: dict[str, tuple[bytes, str, str]] = {}  # path -> body, etag, type
        self.seen: list[dict] = []
        self.redirects = {"/to-file": "file:///etc/passwd", "/to-ftp": "ftp://127.0.0.1/feed"}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.seen.append({"path": self.path, **headers})
                if self.path == "/slow":
                    time.sleep(1.5)
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.end_headers()
                    return
                if self.path not in server.routes:
                    self.send_response(404)
                    self.end_headers()
                    return
                body, etag, kind = server.routes[self.path]
                if etag and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", "Fri, 20 Nov 2026 12:00:00 GMT")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def serve(self, path: str, fixture: str, etag: str = "", kind="application/rss+xml"):
        self.routes[path] = ((FEEDS / fixture).read_bytes(), etag, kind)
        return self.url + path


@pytest.fixture
def feed_server():
    server = _FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_fetch_sends_our_user_agent_and_asks_conditionally(feed_server):
    url = feed_server.serve("/rss", "city_rss.xml", etag='"v1"')
    first = ingest.fetch(url)
    assert first.status == 200 and first.etag == '"v1"'
    assert first.body == (FEEDS / "city_rss.xml").read_bytes()
    again = ingest.fetch(url, etag=first.etag, modified=first.modified)
    assert again.status == 304 and again.body == b""
    asked = feed_server.seen[-1]
    assert asked["user-agent"] == ingest.USER_AGENT
    assert asked["if-none-match"] == '"v1"'
    assert asked["if-modified-since"] == "Fri, 20 Nov 2026 12:00:00 GMT"


def test_fetch_refuses_what_is_too_big_too_slow_missing_or_elsewhere(feed_server):
    url = feed_server.serve("/rss", "city_rss.xml")
    with pytest.raises(ingest.FeedUnavailable, match="is larger than 100 bytes"):
        ingest.fetch(url, max_bytes=100)
    with pytest.raises(ingest.FeedUnavailable, match="did not answer within 0.3 s"):
        ingest.fetch(feed_server.url + "/slow", timeout=0.3)
    with pytest.raises(ingest.FeedUnavailable, match="answered HTTP 404"):
        ingest.fetch(feed_server.url + "/gone")
    with pytest.raises(ingest.FeedUnavailable, match="redirect to a non-web address"):
        ingest.fetch(feed_server.url + "/to-ftp")
    with pytest.raises(ingest.FeedUnavailable, match="'file:///etc/passwd' is not allowed"):
        ingest.fetch(feed_server.url + "/to-file")
    with pytest.raises(ingest.FeedUnavailable, match="is not an http"):
        ingest.fetch("file:///etc/passwd")


# --------------------------------------------------------------------------- end to end (store)


def test_sources_are_added_checked_and_audited(db):
    from civicpulse.core.models import AuditEntry
    from civicpulse.opinion.models import Source

    push, token = ingest.add_source("partner-a", "push")
    assert token.startswith("cpp_") and push.token_prefix == token[:8]
    assert Source.objects.get(name="partner-a").token_hash != token  # only the hash is kept
    forum = _unique("forum")  # the demo city has a source called forum
    feed, none = ingest.add_source(forum, "feed", url="https://forum.example.invalid/rss")
    assert none is None and feed.kind == "feed"
    with pytest.raises(ingest.SourceError, match="exists already"):
        ingest.add_source(forum, "file")
    with pytest.raises(ingest.SourceError, match="needs an http"):
        ingest.add_source("ftp-feed", "feed", url="ftp://example.invalid/feed")
    with pytest.raises(ingest.SourceError, match="must be 1-64 letters"):
        ingest.add_source("has space", "file")
    with pytest.raises(ingest.SourceError, match="only push sources have tokens"):
        ingest.new_token(forum)
    renewed = ingest.new_token("partner-a")
    assert renewed != token
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    added = AuditEntry.objects.filter(action="opinion.source_added")
    assert set(added.values_list("object_id", flat=True)) >= {str(push.pk), str(feed.pk)}
    assert "opinion.token_issued" in actions


def _jsonl(path: Path, n: int, *, start: int = 0, bad: int = 0) -> Path:
    lines = [
        json.dumps(
            {
                "id": f"p{i}",
                "text": f"第{i}号楼电梯又坏了，已经报修{i % 5 + 1}次 (post {i})",
                "created_at": f"2026-11-{10 + i % 5:02d}T{8 + i % 10:02d}:15:00+08:00",
                "reach": i,
            },
            ensure_ascii=False,
        )
        for i in range(start, start + n)
    ]
    lines += ['{"id": "x", "text": "no time"}'] * bad
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_file_stores_once_and_a_rerun_stores_nothing_twice(city, tmp_path):
    from civicpulse.opinion.models import Source

    name = _unique("drop-box")
    path = _jsonl(tmp_path / "posts.jsonl", 40, bad=2)
    batch = ingest.import_file(path, source=name)
    assert Source.objects.get(name=name).kind == "file"
    assert (batch.rows_read, batch.accepted, batch.quarantined) == (42, 40, 2)
    assert list(batch.quarantine.values_list("line", "field")) == [
        (41, "created_at"),
        (42, "created_at"),
    ]
    again = ingest.import_file(path, source=name)
    assert (again.accepted, again.duplicates, again.quarantined) == (0, 40, 2)
    more = ingest.import_file(_jsonl(tmp_path / "more.jsonl", 30, start=20), source=name)
    assert (more.accepted, more.duplicates) == (10, 20)
    assert f"batch {more.pk} into source {name} from " in ingest.summary(more)


def test_a_file_that_does_not_fit_stores_nothing_and_creates_no_source(city, tmp_path):
    from civicpulse.opinion.models import IngestBatch, Source

    path = tmp_path / "other.csv"
    path.write_text("when,who\n2020-01-01,x\n", encoding="utf-8")
    batches = IngestBatch.objects.count()  # the demo city's own posts came in batches too
    with pytest.raises(ingest.IngestFailed, match="has no column 'text'"):
        ingest.import_file(path, source="nowhere", mapping_name="weibo2020")
    with pytest.raises(ingest.IngestFailed, match="names no source: give --source"):
        ingest.import_file(path)
    assert not Source.objects.filter(name="nowhere").exists()
    assert IngestBatch.objects.count() == batches


def test_polling_stores_new_entries_then_asks_only_for_changes(city, feed_server):
    from civicpulse.opinion.models import Source

    forum, news, broken = _unique("forum"), _unique("news"), _unique("broken")
    rss, _ = ingest.add_source(
        forum, "feed", url=feed_server.serve("/rss", "city_rss.xml", etag='"r1"')
    )
    ingest.add_source(
        news,
        "feed",
        url=feed_server.serve("/atom", "city_atom.xml", etag='"a1"', kind="application/atom+xml"),
    )
    ingest.add_source(broken, "feed", url=feed_server.url + "/gone")
    quiet, _ = ingest.add_source(
        _unique("quiet"), "feed", url=feed_server.serve("/q", "city_rss.xml")
    )
    Source.objects.filter(pk=quiet.pk).update(is_active=False)
    ingest.add_source(_unique("partner"), "push")  # not a feed: never polled

    batches = {b.source.name: b for b in ingest.poll_feeds()}
    assert set(batches) == {forum, news, broken}
    assert (batches[forum].accepted, batches[forum].quarantined) == (3, 2)
    assert (batches[news].accepted, batches[news].quarantined) == (2, 1)
    assert batches[broken].accepted == 0
    (why,) = batches[broken].quarantine.values_list("reason", flat=True)
    assert why == f"feed {feed_server.url}/gone answered HTTP 404 (Not Found)"
    rss.refresh_from_db()
    assert rss.etag == '"r1"' and rss.modified == "Fri, 20 Nov 2026 12:00:00 GMT"
    assert rss.last_polled_at is not None
    assert "/q" not in [s["path"] for s in feed_server.seen]

    asked = len(feed_server.seen)
    again = {b.source.name for b in ingest.poll_feeds()}
    assert again == {broken}  # the two feeds answered 304: nothing to store
    conditional = feed_server.seen[asked:]
    assert {s["path"]: s.get("if-none-match") for s in conditional} == {
        "/rss": '"r1"',
        "/atom": '"a1"',
        "/gone": None,
    }

    feed_server.serve("/rss", "city_rss.xml", etag='"r2"')  # changed: same entries again
    (batch,) = [b for b in ingest.poll_feeds() if b.source.name == forum]
    assert (batch.accepted, batch.duplicates) == (0, 3)


# --------------------------------------------------------------------------- the command line


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CIVICPULSE_DATABASE_URL"}
    env["CIVICPULSE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _store_with_areas(tmp_path: Path) -> Path:
    """A data dir whose store has the area tree (imported through the CLI)."""
    data = tmp_path / "data"
    data.mkdir()
    areas = tmp_path / "areas.geojson"
    areas.write_text(json.dumps(AREAS, ensure_ascii=False), encoding="utf-8")
    made = _cli(data, "import", "areas", str(areas))
    assert made.returncode == 0, made.stderr
    return data


@pytest.mark.shared_data
def test_the_command_line_imports_weibo_rows_once(tmp_path):
    """The first rows of the real Weibo file, through ``civicpulse import posts`` twice."""
    rows = 1500
    with gzip.open(shared_data(WEIBO), "rb") as whole:
        head = b"".join(whole.readline() for _ in range(rows + 1))
    sample = tmp_path / "weibo_head.csv.gz"
    sample.write_bytes(gzip.compress(head))
    data = _store_with_areas(tmp_path)
    args = ("import", "posts", str(sample), "--source", "weibo2020", "--mapping", "weibo2020")
    done = _cli(data, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[1:6]}
    accepted = int(figures["accepted"].replace(",", ""))
    duplicates = int(figures["duplicates"].replace(",", ""))
    assert figures["read"] == f"{rows:,}" and figures["quarantined"] == "0"
    assert accepted + duplicates == rows and accepted > rows * 0.9
    again = _cli(data, *args)
    assert again.returncode == 0, again.stderr[-2000:]
    figures = {line.split()[0]: line.split()[1] for line in again.stdout.splitlines()[1:6]}
    assert figures["accepted"] == "0" and figures["duplicates"] == f"{rows:,}"

    missing = _cli(data, "import", "posts", str(tmp_path / "nope.csv"), "--source", "x")
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"civicpulse: {tmp_path / 'nope.csv'}: no such file"


def test_the_command_line_adds_sources_and_polls_feeds(tmp_path, feed_server):
    data = _store_with_areas(tmp_path)
    push = _cli(data, "sources", "add", "partner", "--kind", "push")
    assert push.returncode == 0, push.stderr
    assert push.stdout.splitlines()[0] == "source partner (push) added"
    token = push.stdout.splitlines()[-1]
    assert token.startswith("cpp_") and len(token) > 40
    url = feed_server.serve("/rss", "city_rss.xml", etag='"c1"')
    assert _cli(data, "sources", "add", "forum", "--kind", "feed", "--url", url).returncode == 0
    listed = _cli(data, "sources", "list").stdout
    assert f"{'partner':24} {'push':5} {'active':8} token {token[:8]}..." in listed
    assert token not in listed
    polled = _cli(data, "poll", "feeds")
    assert polled.returncode == 0, polled.stderr[-2000:]
    assert re.search(r"^accepted +3$", polled.stdout, re.M), polled.stdout
    assert "line 3, published: entry 3: the entry has no published or updated date" in polled.stdout
    assert _cli(data, "poll", "feeds").stdout.strip() == "no feed had anything new"
