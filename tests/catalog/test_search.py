"""Catalog search in zh and en: datasets registered here with zh/en titles and descriptions,
columns from real shared CSVs loaded through the catalog, ranking as documented in
``catalog.search``, filters, pagination and the corpus cache."""

from __future__ import annotations

import itertools

import pytest

from civicpulse.catalog import search, services
from civicpulse.core.models import Department
from tests.support import shared_data

pytestmark = pytest.mark.shared_data

NYC_100 = "311/nyc_311_qsv_100.csv"
BOSTON_100 = "311/boston_311_qsv_100.csv"
MESSAGES = "zh/tipdm2020_gov_messages_labeled_part_a.csv"
TAXONOMY = "zh/tipdm2020_gov_message_taxonomy_3level.csv"

_numbers = itertools.count(1)


@pytest.fixture
def owner(db) -> Department:
    """A department of this test's own, so that filters count only datasets made here."""
    n = next(_numbers)
    return Department.objects.create(
        code=f"CAT-SEARCH-{n}", name_zh=f"检索测试处{n}", name_en=f"Search test unit {n}"
    )


def _register(owner, slug, **fields):
    return services.register_dataset(f"{slug}-{next(_numbers)}", owner=owner, **fields)


def _load(dataset, relative):
    return services.load_version(dataset, shared_data(relative), user=None, progress=False)


def _slugs(results) -> list[str]:
    return [hit.dataset.slug for hit in results.hits]


@pytest.fixture
def catalog(owner):
    """Five datasets as a city's departments describe them, three with real data loaded."""
    made = {
        "water": _register(
            owner,
            "water",
            title="城市供水管网数据",
            title_en="Urban water supply network",
            description="各区供水管网的管径、材质和建设年代。",
            tags=["基础设施"],
            grade="important",
            frequency="monthly",
        ),
        "outages": _register(
            owner,
            "outages",
            title="停水通知",
            title_en="Planned interruptions",
            description="因供水管道检修发布的停水通知。",
            tags=["公告"],
            frequency="daily",
        ),
        "messages": _register(
            owner,
            "messages",
            title="市民留言数据",
            title_en="Citizen messages",
            description="网络问政平台收到的市民来信。",
            tags=["政务服务"],
        ),
        "items": _register(
            owner,
            "items",
            title="政务服务事项目录",
            title_en="Service item directory",
            tags=["政务服务"],
        ),
        "nyc": _register(
            owner,
            "nyc",
            title="纽约热线服务请求",
            title_en="NYC 311 service requests",
            description="A sample of New York City's service requests, for comparison.",
            tags=["311", "hotline"],
            grade="general",
            frequency="daily",
        ),
    }
    _load(made["messages"], MESSAGES)  # 留言编号, 留言用户, 留言主题, 留言时间, 留言详情
    _load(made["items"], TAXONOMY)  # 一级分类, 二级分类, 三级分类
    _load(made["nyc"], NYC_100)  # Unique Key, Created Date, Agency, Complaint Type, ...
    return {k: services.find(v.slug) for k, v in made.items()}


def _mine(owner, query="", **filters):
    return search.search(query, department=owner.code, limit=50, **filters)


def test_a_chinese_word_finds_a_title_and_outranks_a_description(owner, catalog):
    found = _mine(owner, "供水")
    # jieba cuts the title as 城市/供水管/网/数据: the word is still found inside it
    assert _slugs(found) == [catalog["water"].slug, catalog["outages"].slug]
    assert found.hits[0].matched == {"title": ["供水"], "description": ["供水"]}
    assert found.hits[1].matched == {"description": ["供水"]}
    assert found.hits[0].score == search.WEIGHTS["title"]
    assert found.hits[1].score == search.WEIGHTS["description"]


def test_a_chinese_word_finds_the_column_names_of_the_current_version(owner, catalog):
    found = _mine(owner, "分类")
    assert _slugs(found) == [catalog["items"].slug]
    assert found.hits[0].matched == {"columns": ["分类"]}
    assert _slugs(_mine(owner, "留言主题")) == [catalog["messages"].slug]


def test_english_words_find_titles_and_columns_whatever_the_case_or_plural(owner, catalog):
    assert _slugs(_mine(owner, "Water SUPPLY")) == [catalog["water"].slug]
    found = _mine(owner, "Complaints")  # the column is "Complaint Type"
    assert _slugs(found) == [catalog["nyc"].slug]
    assert found.hits[0].matched == {"columns": ["complaint"]}
    assert _slugs(_mine(owner, "311")) == [catalog["nyc"].slug]  # a number, kept as written
    assert _slugs(_mine(owner, "interruption")) == [catalog["outages"].slug]


def test_every_word_of_a_query_must_match(owner, catalog):
    assert _slugs(_mine(owner, "供水 complaint")) == []
    assert _slugs(_mine(owner, "service complaint")) == [catalog["nyc"].slug]
    assert _slugs(_mine(owner, "政务服务 分类")) == [catalog["items"].slug]


def test_ranking_puts_title_above_tag_above_column_above_description(owner):
    nyc = _register(owner, "ranked-column", title="纽约服务请求样本")
    _load(nyc, NYC_100)  # columns Agency and Agency Name
    described = _register(
        owner, "ranked-description", title="预算", description="Each agency's yearly budget."
    )
    tagged = _register(owner, "ranked-tag", title="机构名录", tags=["agency"])
    titled = _register(owner, "ranked-title", title="机构", title_en="Agency directory")
    found = _mine(owner, "agencies")
    assert _slugs(found) == [titled.slug, tagged.slug, nyc.slug, described.slug]
    assert [h.score for h in found.hits] == [8, 4, 2, 1]


def test_equal_scores_list_the_most_recently_updated_first(owner):
    first = _register(owner, "same-a", title="道路养护")
    second = _register(owner, "same-b", title="道路照明")
    assert _slugs(_mine(owner, "道路")) == [second.slug, first.slug]
    first.description = "更新"
    first.save()
    assert _slugs(_mine(owner, "道路")) == [first.slug, second.slug]


def test_filters_narrow_the_results(owner, catalog):
    everything = _mine(owner)
    assert everything.total == len(catalog)
    assert _slugs(_mine(owner, grade="important")) == [catalog["water"].slug]
    daily = {catalog["outages"].slug, catalog["nyc"].slug}
    assert set(_slugs(_mine(owner, frequency="daily"))) == daily
    assert set(_slugs(_mine(owner, tag="政务服务"))) == {
        catalog["messages"].slug,
        catalog["items"].slug,
    }
    assert _slugs(_mine(owner, "服务", tag="政务服务", frequency="daily")) == []
    assert search.search("", department="NO-SUCH-DEPT").total == 0
    with pytest.raises(search.SearchError, match="unknown grade 'secret'"):
        search.search("", grade="secret")


def test_pages_of_results_cover_every_match_once(owner, catalog):
    total = _mine(owner).total
    seen = []
    for offset in range(0, total, 2):
        page = search.search("", department=owner.code, limit=2, offset=offset)
        assert page.total == total
        assert len(page.hits) == min(2, total - offset)
        seen += _slugs(page)
    assert sorted(seen) == sorted(d.slug for d in catalog.values())
    assert search.search("", department=owner.code, limit=2, offset=total).hits == []
    with pytest.raises(search.SearchError):
        search.search("", limit=-1)


def test_the_corpus_is_rebuilt_only_when_the_catalog_changes(owner, catalog):
    _mine(owner, "供水")
    builds = search.builds
    _mine(owner, "分类")
    _mine(owner, "water")
    assert search.builds == builds  # nothing changed: the cached corpus served both

    new = _register(owner, "boston", title="波士顿热线", title_en="Boston requests")
    assert _slugs(_mine(owner, "boston")) == [new.slug]
    assert search.builds == builds + 1

    assert _slugs(_mine(owner, "neighborhood")) == []  # its columns come with its first load
    _load(new, BOSTON_100)
    assert _slugs(_mine(owner, "neighborhood")) == [new.slug]
    assert search.builds == builds + 2
