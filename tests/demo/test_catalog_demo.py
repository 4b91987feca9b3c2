"""The demo city's data hub: what `civicpulse demo` leaves in the catalog, made through its
services (loads in several formats, classification, standards, quality, sharing, open data)."""

from __future__ import annotations

import hashlib

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from civicpulse.catalog import services
from civicpulse.catalog.models import (
    ConformanceReport,
    Dataset,
    DatasetRead,
    DatasetVersion,
    OpenRelease,
    QualityRun,
    ShareGrant,
    ShareRequest,
)
from civicpulse.demo import catalog as demo_catalog
from civicpulse.demo.generator import DemoCity
from civicpulse.identity import services as identity
from civicpulse.identity.models import Resident
from tests.conftest import DEMO_END, DEMO_SEED

pytestmark = pytest.mark.django_db

KINDS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json", "": "parquet"}


def _kind(filename: str) -> str:
    suffix = filename[filename.rfind(".") :] if "." in filename else ""
    return KINDS[suffix]


@pytest.fixture
def hub(demo_city):
    return {spec.slug: services.find(spec.slug) for spec in demo_catalog.DATASETS}


def test_the_hub_holds_each_departments_datasets_in_the_formats_they_came_in(hub):
    assert len(hub) >= 6
    kinds = set()
    for spec in demo_catalog.DATASETS:
        dataset = hub[spec.slug]
        current = dataset.current_version
        assert dataset.owner.code == spec.owner and dataset.title and dataset.title_en
        assert dataset.tags == list(spec.tags) and dataset.update_frequency == spec.frequency
        assert current is not None and current.status == DatasetVersion.Status.CURRENT
        assert current.row_count > 0
        assert current.source_kind == _kind(spec.filename)
        kinds.add(current.source_kind)
    assert kinds == {"csv", "xlsx", "json", "parquet"}
    assert hub[demo_catalog.DIVISIONS].current_version.encoding == "gb18030"
    assert hub[demo_catalog.ENTERPRISES].current_version.encoding == "utf-8"
    # the register holds the store's enterprises, the assistance list its certified residents
    assert hub[demo_catalog.ASSISTANCE].current_version.row_count == (
        Resident.objects.exclude(disability="").count()
    )


def test_the_hotline_statistics_have_a_later_month_as_a_second_version(hub):
    old, new = services.versions_of(demo_catalog.HOTLINE)
    assert (old.number, new.number) == (1, 2)
    assert old.status == DatasetVersion.Status.SUPERSEDED
    assert hub[demo_catalog.HOTLINE].current_version == new
    comparison = services.compare_versions(
        demo_catalog.HOTLINE, 1, 2, key=["月份", "区划代码", "诉求类别代码"]
    )
    city = DemoCity(seed=DEMO_SEED, size="small", end=DEMO_END)
    one_month = len(city.services) * 5  # every service in each of the five districts
    assert new.row_count - old.row_count == one_month
    assert (comparison.rows_added, comparison.rows_removed, comparison.rows_changed) == (
        one_month,
        0,
        0,
    )


def test_personal_columns_of_the_assistance_list_are_tagged_masked_and_graded(hub):
    dataset = hub[demo_catalog.ASSISTANCE]
    assert dataset.grade == Dataset.Grade.CORE  # the proposal, applied by the data admin
    columns = {c.name: c for c in dataset.current_version.columns.all()}
    assert columns["姓名"].personal_tags == ["name"]
    assert columns["公民身份号码"].personal_tags == ["resident_id"]
    assert columns["手机号码"].personal_tags == ["mobile"]
    assert columns["残疾类别"].personal_tags == []
    real_ids = set(Resident.objects.values_list("id_number", flat=True))
    for name in ("姓名", "公民身份号码", "手机号码"):
        shown = [*columns[name].samples, columns[name].min_value, columns[name].max_value]
        assert shown and all("*" in str(v) for v in shown), name
        assert not real_ids & set(map(str, shown))
    # the enterprise register: credit codes with their legal representatives
    assert hub[demo_catalog.ENTERPRISES].grade == Dataset.Grade.IMPORTANT
    assert hub[demo_catalog.AIR].grade == Dataset.Grade.GENERAL


def test_each_version_is_measured_and_the_registers_checked_against_the_standards(hub):
    for dataset in hub.values():
        assert dataset.quality_rules.filter(active=True).exists()
        for version in dataset.versions.all():
            runs = QualityRun.objects.filter(version=version)
            assert runs.count() == 1, version
            assert 0 <= runs.get().score <= 1
    dimensions = set(
        hub[demo_catalog.ENTERPRISES].quality_rules.values_list("dimension", flat=True)
    )
    assert dimensions == {"completeness", "validity", "uniqueness", "consistency", "timeliness"}
    consistency = hub[demo_catalog.ENTERPRISES].quality_rules.get(dimension="consistency")
    assert consistency.parameters == {"dataset": demo_catalog.DIVISIONS, "column": "区划代码"}
    # the monitors' outages show in the air readings' completeness
    air = QualityRun.objects.get(version=hub[demo_catalog.AIR].current_version)
    assert 0.9 < air.dimension_scores["completeness"] < 1
    for slug in (demo_catalog.ENTERPRISES, demo_catalog.ASSISTANCE):
        report = ConformanceReport.objects.get(version=hub[slug].current_version)
        assert report.violations == 0 and report.columns
    mapped = hub[demo_catalog.ENTERPRISES].mappings.values_list("column", "element__identifier")
    assert set(mapped) >= {("统一社会信用代码", "credit_code"), ("行业代码", "industry_code")}


def test_housing_holds_an_active_masked_grant_and_transport_waits(hub):
    dataset = hub[demo_catalog.ASSISTANCE]
    grant = ShareGrant.objects.get(dataset=dataset, department__code="housing")
    assert grant.is_active()
    assert grant.masking == {"姓名": "name", "公民身份号码": "resident_id"}
    assert "手机号码" not in grant.columns  # never asked for
    assert ShareRequest.objects.get(dataset=dataset, department__code="transport").status == (
        ShareRequest.Status.PENDING
    )
    assert DatasetRead.objects.filter(dataset=dataset, department__code="housing").exists()
    reader = get_user_model().objects.get(username="housing_staff")
    page = services.read_rows(dataset, user=reader, columns=["公民身份号码"], limit=5)
    stored = sorted(Resident.objects.exclude(disability="").values_list("id_number", flat=True))
    assert [row[0] for row in page.rows] == [identity.mask("resident_id", n) for n in stored[:5]]


def test_the_ckan_api_lists_the_two_published_releases_datasets(hub):
    response = Client().get("/api/3/action/package_list")
    assert response.status_code == 200
    names = response.json()["result"]
    assert {demo_catalog.HOTLINE, demo_catalog.FACILITIES} <= set(names)
    assert demo_catalog.ENTERPRISES not in names and demo_catalog.ASSISTANCE not in names
    for slug in (demo_catalog.HOTLINE, demo_catalog.FACILITIES):
        release = OpenRelease.objects.get(dataset=hub[slug], status=OpenRelease.Status.PUBLISHED)
        assert release.approved_by.username == "leader" and release.created_by.username == "admin"


def test_the_refused_draft_lists_the_combinations_that_single_enterprises_out(hub):
    refused = OpenRelease.objects.get(
        dataset=hub[demo_catalog.ENTERPRISES], status=OpenRelease.Status.REFUSED
    )
    k_anonymity = refused.check_report["k_anonymity"]
    assert k_anonymity["offending_groups"] > 0 and k_anonymity["combinations"]
    assert not refused.lake_path


def test_the_portal_groups_hold_the_themes(hub):
    groups = {g.name: g for g in hub[demo_catalog.FACILITIES].groups.all()}
    assert {"urban-management", "public-services"} <= set(groups)
    assert groups["urban-management"].title == "城市管理"
    assert hub[demo_catalog.ENTERPRISES].groups.filter(name="economy").exists()


def test_the_files_are_the_same_from_the_same_seed_and_load_to_the_same_checksum(hub, tmp_path):
    city = DemoCity(seed=DEMO_SEED, size="small", end=DEMO_END)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = demo_catalog.write_files(city, tmp_path / "a")
    second = demo_catalog.write_files(city, tmp_path / "b")
    for slug in (demo_catalog.DIVISIONS, demo_catalog.AIR, demo_catalog.HOTLINE):
        digest = [hashlib.sha256(p[slug].read_bytes()).hexdigest() for p in (first, second)]
        assert digest[0] == digest[1], slug
    # loaded afresh, the regenerated division list is the demo's, row for row
    scratch = services.register_dataset("demo-catalog-check", title="校验", owner="urban")
    again = services.load_version(
        scratch, first[demo_catalog.DIVISIONS], encoding="gb18030", progress=False
    )
    assert again.checksum == hub[demo_catalog.DIVISIONS].current_version.checksum
