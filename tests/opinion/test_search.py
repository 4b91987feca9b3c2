"""History search of the posts lake with a saved or typed rule: the service against a brute-force
``matches`` over every post of the period read straight from the lake (pyarrow, not DuckDB), so
the superset filter is shown never to lose a hit; the staff page (scoping, errors, audit, escaping,
paging); and ``civicpulse search posts`` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext

from civicpulse.core.models import Area, AuditEntry
from civicpulse.demo.generator import DemoCity
from civicpulse.lake import parquet
from civicpulse.opinion import search
from civicpulse.opinion.models import Rule
from civicpulse.text import rules
from tests.conftest import DEMO_END, DEMO_SEED
from tests.support import REPO_ROOT

pytestmark = pytest.mark.django_db

SINCE = DEMO_END - timedelta(days=89)  # the demo's posts cover its last ninety days
HOSTILE = "<script>alert(1)</script>"
QUERIES = [
    "(自来水 OR 水质 OR 停水) AND (发黄 OR 异味 OR 浑浊 OR 有味 OR 变色)",  # the saved rule
    "水质 NOT 发黄",
    "自来水 NEAR/3 异味",
    '"自来水 发黄" OR 浑浊',
    "暖气 -不热",
    "NOT 水",  # nothing SQL can narrow: every post is a candidate
]


def _user(name: str):
    return get_user_model().objects.get(username=name)


def _lake(since: date = SINCE, until: date = DEMO_END) -> list[dict]:
    """Every post of the local days [since, until], read with pyarrow."""
    root = parquet.current_path(settings.CONFIG.lake_dir, "posts")
    assert root is not None, "the demo stored no posts"
    days = [(since + timedelta(days=k)).isoformat() for k in range((until - since).days + 1)]
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table(
        columns=[
            "post_key",
            "text",
            "source",
            "lang",
            "areas",
            "created_at",
            "duplicate_of",
            "rules",
            "day",
        ],
        filter=ds.field("day").isin(days),
    )
    return table.to_pylist()


def _brute(query: str, frame: list[dict], codes: list[str] | None = None) -> dict[str, dict]:
    rule = rules.parse(query)
    return {
        p["post_key"]: p
        for p in frame
        if rule.matches(p) and (codes is None or any(f"|{c}|" in p["areas"] for c in codes))
    }


def _all_keys(query, **kwargs) -> tuple[list[str], search.SearchResult]:
    keys, offset = [], 0
    while True:
        found = search.search(query, limit=search.MAX_LIMIT, offset=offset, **kwargs)
        keys += [h.post_key for h in found.hits]
        offset += search.MAX_LIMIT
        if offset >= found.total:
            return keys, found


# --- the service -------------------------------------------------------------------------------


@pytest.mark.parametrize("query", QUERIES)
def test_search_equals_a_brute_force_match_over_the_lake(demo_city, query):
    frame = _lake()
    expected = _brute(query, frame)
    keys, result = _all_keys(query, since=SINCE, until=DEMO_END)
    assert set(keys) == set(expected) and len(keys) == len(expected)
    assert result.matched == result.total == len(expected)
    assert result.copies == sum(1 for p in expected.values() if p["duplicate_of"])
    assert result.matched <= result.candidates <= len(frame)
    if rules.parse(query).required():  # a rule needing words narrows the scan
        assert result.candidates < len(frame)
    times = {p["post_key"]: p["created_at"] for p in expected.values()}
    ordered = [times[k] for k in keys]
    assert ordered == sorted(ordered, reverse=True)  # newest first
    per_day = {d: 0 for d in result.days}
    for p in expected.values():
        per_day[p["day"]] += 1
    assert result.per_day == [per_day[d] for d in result.days]
    assert len(result.days) == 90 and result.days[-1] == DEMO_END.isoformat()


def test_the_saved_rule_finds_the_water_crisis_and_what_ingest_tagged(demo_city):
    rule = Rule.objects.get(concern__name="供水水质")
    frame = _lake()
    result = search.search(rule, since=SINCE, until=DEMO_END, limit=search.MAX_LIMIT)
    keys, _ = _all_keys(rule, since=SINCE, until=DEMO_END)
    tagged = {p["post_key"] for p in frame if f"|{rule.pk}|" in (p["rules"] or "")}
    assert set(keys) == tagged  # the rule is unchanged since ingest: the same posts
    # the demo's crisis (three days in one district) holds most of the matches
    district, first, last, _topic = DemoCity(seed=DEMO_SEED, size="small", end=DEMO_END).crisis
    crisis = [(first + timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
    in_crisis = sum(n for d, n in zip(result.days, result.per_day, strict=True) if d in crisis)
    assert in_crisis > 0.8 * result.matched > 0
    in_district = search.search(rule, since=first, until=last, area_codes=[district])
    assert in_district.matched == len(_brute(rule.query, _lake(first, last), [district])) > 0


def test_a_rule_edited_after_ingest_is_searched_as_it_reads_now(demo_city):
    rule = Rule.objects.get(concern__name="供水水质")
    original = rule.query
    rule.query = "(自来水 OR 水质) AND 发黄"
    rule.save()
    try:
        frame = _lake()
        keys, result = _all_keys(rule, since=SINCE, until=DEMO_END)
        expected = _brute(rule.query, frame)
        tagged = {p["post_key"] for p in frame if f"|{rule.pk}|" in (p["rules"] or "")}
        assert set(keys) == set(expected) and result.matched == len(expected) > 0
        assert set(keys) < tagged  # narrower than at ingest: the tags are not what counts
    finally:
        rule.query = original
        rule.save()


def test_area_codes_limit_the_search_to_those_areas(demo_city):
    district = Area.objects.filter(level=Area.Level.DISTRICT).order_by("code").first()
    query = "水 OR 暖气 OR 小区"
    frame = _lake()
    keys, result = _all_keys(query, since=SINCE, until=DEMO_END, area_codes=[district.code])
    expected = _brute(query, frame, [district.code])
    assert set(keys) == set(expected) and 0 < len(expected) < len(_brute(query, frame))
    nothing = search.search(query, since=SINCE, until=DEMO_END, area_codes=[])
    assert nothing.matched == nothing.candidates == 0 and nothing.hits == []


def test_a_source_filter_and_hidden_copies(demo_city):
    frame = _lake()
    query = "水 OR 暖气"
    everything = _brute(query, frame)
    source = max(
        {p["source"] for p in everything.values()},
        key=lambda s: sum(p["source"] == s for p in everything.values()),
    )
    keys, result = _all_keys(query, since=SINCE, until=DEMO_END, source=source)
    assert set(keys) == {k for k, p in everything.items() if p["source"] == source}
    assert 0 < result.matched < len(everything)

    keys, result = _all_keys(query, since=SINCE, until=DEMO_END, copies=False)
    copies = {k for k, p in everything.items() if p["duplicate_of"]}
    assert copies, "the demo's crisis is reposted: there are copies to hide"
    assert set(keys) == set(everything) - copies
    assert result.total == result.matched - result.copies and result.copies == len(copies)


def test_a_hostile_query_is_only_ever_a_parameter(demo_city):
    before = len(_lake())
    for query in (
        '"x\'); DROP TABLE posts; --" OR 水质',
        "'||(SELECT 1)||' 水质",
        'area:"\') OR 1=1 --"',
        "100% OR a_b",
    ):
        result = search.search(query, since=SINCE, until=DEMO_END, limit=search.MAX_LIMIT)
        assert result.matched == len(_brute(query, _lake()))
    assert len(_lake()) == before


def test_a_query_that_does_not_parse_raises_its_syntax_error_unchanged(demo_city):
    with pytest.raises(rules.RuleSyntaxError) as caught:
        search.search("停水 AND (断水 OR", since=SINCE, until=DEMO_END)
    assert caught.value.position == len("停水 AND (断水 OR")
    assert "^" in str(caught.value)


def test_the_period_is_bounded(demo_city):
    with pytest.raises(search.SearchError, match="at most 366 days"):
        search.search("水质", since=DEMO_END - timedelta(days=366), until=DEMO_END)
    assert search.search("水质", since=DEMO_END - timedelta(days=365), until=DEMO_END).days
    with pytest.raises(search.SearchError, match="ends before it starts"):
        search.search("水质", since=DEMO_END, until=DEMO_END - timedelta(days=1))
    with pytest.raises(search.SearchError, match="time zone"):
        search.search("水质", since=datetime(2026, 1, 1), until=DEMO_END)
    with pytest.raises(search.SearchError, match="page holds"):
        search.search("水质", since=SINCE, until=DEMO_END, limit=search.MAX_LIMIT + 1)


def test_times_bound_the_period_to_the_instant(demo_city):
    frame = _lake()
    expected = _brute(QUERIES[0], frame)
    times = sorted(p["created_at"] for p in expected.values())
    middle = times[len(times) // 2]
    keys, _ = _all_keys(QUERIES[0], since=middle, until=middle + timedelta(hours=6))
    inside = {
        k for k, p in expected.items() if middle <= p["created_at"] < middle + timedelta(hours=6)
    }
    assert set(keys) == inside and inside


# --- the page ----------------------------------------------------------------------------------


def _get(client, **params):
    query = {"since": SINCE.isoformat(), "until": DEMO_END.isoformat(), **params}
    return client.get("/opinion/search/", query)


def test_the_page_shows_hits_a_chart_and_pages(client, demo_city):
    client.force_login(_user("analyst"))
    empty = client.get("/opinion/search/")
    assert empty.status_code == 200 and empty.context["result"] is None
    assert 'href="/opinion/search/"' in empty.content.decode()  # in the desk's navigation
    response = _get(client, q="水 OR 暖气")
    assert response.status_code == 200
    result = response.context["result"]
    assert result.total > 50 and len(response.context["hits"]) == 50
    page = response.content.decode()
    assert page.count('data-post="') == 50 and 'id="chart-trend"' in page
    chart = response.context["chart"]
    assert chart["posts"] == result.per_day and sum(chart["posts"]) == result.matched
    assert response.context["next_link"] and not response.context["previous_link"]
    second = client.get("/opinion/search/" + response.context["next_link"])
    assert second.status_code == 200 and second.context["page"] == 2
    first_keys = [h["hit"].post_key for h in response.context["hits"]]
    second_keys = [h["hit"].post_key for h in second.context["hits"]]
    assert not set(first_keys) & set(second_keys)
    assert (
        second.context["hits"][0]["hit"].created_at
        <= response.context["hits"][-1]["hit"].created_at
    )


def test_a_saved_rule_is_chosen_from_the_active_rules(client, demo_city):
    rule = Rule.objects.get(concern__name="供水水质")
    client.force_login(_user("leader"))
    response = _get(client, rule=rule.pk)
    assert response.status_code == 200
    assert response.context["result"].query == rule.query
    assert f'<option value="{rule.pk}" selected>' in response.content.decode()
    expected = _brute(rule.query, _lake())
    assert response.context["result"].matched == len(expected)
    entry = AuditEntry.objects.filter(actor="leader", action="opinion.search").latest("seq")
    assert entry.detail["query"] == rule.query and entry.detail["rule"] == rule.pk


def test_department_staff_see_only_the_posts_of_their_areas(client, demo_city):
    staff = _user("district")  # the demo's department staff, given the first district
    codes = [a.code for a in staff.staff_profile.areas.all()]
    assert codes
    query = "水 OR 暖气 OR 小区"
    frame = _lake()
    mine = _brute(query, frame, codes)
    client.force_login(staff)
    response = _get(client, q=query)
    assert response.status_code == 200
    assert response.context["result"].matched == len(mine) < len(_brute(query, frame))
    shown = [h["hit"].post_key for h in response.context["hits"]]
    assert shown and set(shown) <= set(mine)
    others = set(_brute(query, frame)) - set(mine)
    page = response.content.decode()
    assert not any(f'data-post="{k}"' in page for k in others)
    entry = AuditEntry.objects.filter(actor="district", action="opinion.search").latest("seq")
    assert entry.detail["query"] == query and entry.detail["areas"] == codes


@pytest.mark.parametrize("username", ["operator", "grid"])
def test_roles_without_the_desk_are_refused(client, demo_city, username):
    client.force_login(_user(username))
    assert _get(client, q="水质").status_code == 403


def test_a_visitor_is_sent_to_sign_in(client, demo_city):
    response = client.get("/opinion/search/", {"q": "水质"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_query_that_does_not_parse_shows_where_and_keeps_the_text(client, demo_city):
    client.force_login(_user("analyst"))
    typed = f"水质 AND ({HOSTILE}"
    response = _get(client, q=typed)
    assert response.status_code == 400
    page = response.content.decode()
    error = response.context["syntax_error"]
    assert error["position"] == typed.index("(") and "unclosed" in error["message"]
    assert "<pre>" in page and error["pointer"].splitlines()[-1].strip() == "^"
    assert HOSTILE not in page  # escaped in the message, the pointer and the box
    assert "水质 AND (&lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in page
    assert not AuditEntry.objects.filter(actor="analyst", detail__query=typed).exists()


def test_a_too_long_period_or_an_empty_query_is_a_clear_error(client, demo_city):
    client.force_login(_user("analyst"))
    response = _get(client, q="水质", since=(DEMO_END - timedelta(days=400)).isoformat())
    assert response.status_code == 400
    assert "search at most 366 days at a time" in response.content.decode()
    response = _get(client, q="   ")
    assert response.status_code == 400
    assert gettext("Type a query or choose a saved rule.") in response.content.decode()
    response = _get(client, q="水质", rule="999999")
    assert response.status_code == 400


def test_hostile_post_text_and_queries_are_escaped(client, demo_city):
    client.force_login(_user("analyst"))
    response = _get(client, q=f'"{HOSTILE}" OR 水质')
    assert response.status_code == 200
    page = response.content.decode()
    assert HOSTILE not in page and "&lt;script&gt;" in page


# --- the command line --------------------------------------------------------------------------


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


POSTS = [  # (id, text, hours before the last post)
    ("a1", "小区自来水发黄，已经三天了", 0),
    ("a2", "Tap water is brown again in our block", 5),
    ("a3", "今天天气不错，去公园散步", 9),
    ("a4", "水质检测结果什么时候公布？自来水有异味", 30),
    ("a5", "停水通知：明天上午检修管道", 50),
    ("a6", "自来水浑浊，孩子不敢喝", 80),
]


def test_the_command_line_searches_posts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    last = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    lines = [
        json.dumps(
            {"id": i, "text": t, "created_at": (last - timedelta(hours=h)).isoformat()},
            ensure_ascii=False,
        )
        for i, t, h in POSTS
    ]
    feed = tmp_path / "posts.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = _cli(data, "import", "posts", str(feed), "--source", "forum")
    assert imported.returncode == 0, imported.stderr[-2000:]

    query = "(自来水 OR 水质 OR water) AND (发黄 OR 异味 OR 浑浊 OR brown)"
    rule = rules.parse(query)
    expected = [i for i, t, _ in POSTS if rule.matches({"text": t})]  # newest first
    assert expected == ["a1", "a2", "a4", "a6"]

    found = _cli(data, "search", "posts", query, "--format", "jsonl")
    assert found.returncode == 0, found.stderr[-2000:]
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert [r["post_key"].split(":")[-1] for r in rows] == expected
    assert {r["source"] for r in rows} == {"forum"} and "author_hash" not in rows[0]
    assert found.stderr.startswith("4 posts match")

    text = _cli(data, "search", "posts", query, "--limit", "2")
    assert text.returncode == 0, text.stderr[-2000:]
    shown = text.stdout.splitlines()
    assert shown[0].startswith("4 posts match") and "showing 2" in shown[0]
    assert len(shown) == 3 and "小区自来水发黄" in shown[1] and "brown" in shown[2]

    made = _cli(
        data,
        "manage",
        "shell",
        "-c",
        "from civicpulse.opinion.models import Concern, Rule; "
        "c = Concern.objects.create(name='water'); "
        "print(Rule.objects.create(concern=c, name='stop', query='停水 OR 断水').pk)",
    )
    assert made.returncode == 0, made.stderr[-2000:]
    rule_id = made.stdout.split()[-1]
    saved = _cli(data, "search", "posts", "--rule", rule_id, "--format", "jsonl")
    assert saved.returncode == 0, saved.stderr[-2000:]
    assert [json.loads(line)["post_key"].split(":")[-1] for line in saved.stdout.splitlines()] == [
        "a5"
    ]

    broken = _cli(data, "search", "posts", "自来水 AND (发黄")
    assert broken.returncode == 2 and broken.stdout == ""
    lines = broken.stderr.splitlines()
    assert lines[0].startswith("civicpulse: ") and "position" in lines[0]
    assert lines[-1].strip() == "^" and "自来水 AND (发黄" in lines[-2]

    today = timezone.localdate()
    long = _cli(
        data,
        "search",
        "posts",
        "水",
        "--since",
        str(today - timedelta(days=400)),
        "--until",
        str(today),
    )
    assert long.returncode == 2 and "search at most 366 days at a time" in long.stderr
    neither = _cli(data, "search", "posts")
    assert neither.returncode == 2 and "give a query or --rule" in neither.stderr
    missing = _cli(data, "search", "posts", "--rule", "999999")
    assert missing.returncode == 2 and "no saved rule has the id 999999" in missing.stderr
