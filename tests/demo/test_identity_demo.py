"""The demo city's master index, as ``civicpulse demo`` builds it (the small city)."""

from __future__ import annotations

import pytest

from civicpulse.demo import people
from civicpulse.identity import master
from civicpulse.identity import services as identity
from civicpulse.identity.models import Account, Entity, Kind, Source, SourceRecord

pytestmark = pytest.mark.django_db


def _allowance_roll():
    return next(r for r in people.ROLLS if r.kind == Kind.RESIDENT and "残疾" in r.service_title)


def test_every_roll_and_register_is_a_source_and_every_record_is_linked(demo_city):
    from civicpulse.catalog.models import Dataset

    names = set(Source.objects.values_list("name", flat=True))
    assert {r.name for r in people.ROLLS} | {
        "population-register",
        "market-register",
        "hotline-reporters",
    } <= names
    for roll in people.ROLLS:
        source = Source.objects.get(name=roll.name)
        assert source.dataset_slug == roll.name and source.trust == roll.trust
        assert source.department.code == roll.department_code
        assert Dataset.objects.get(slug=roll.name).current_version is not None
        assert source.records.exists(), roll.name
    assert SourceRecord.objects.count() > 0
    assert not SourceRecord.objects.filter(entity__isnull=True).exists()
    assert not SourceRecord.objects.filter(linked_by="").exists()
    assert not SourceRecord.objects.filter(entity__status=Entity.Status.MERGED).exists()
    # a person held by several departments is one entity: far fewer entities than records
    residents = SourceRecord.objects.filter(kind=Kind.RESIDENT)
    assert Entity.objects.filter(kind=Kind.RESIDENT, status="active").count() < residents.count()


def test_the_disabled_demo_resident_is_known_across_the_departments(demo_city, client):
    account = Account.objects.select_related("entity", "user").get(user__username="resident")
    assert account.relation == Account.Relation.SELF
    held = set(account.entity.records.values_list("source__name", flat=True))
    assert {"population-register", _allowance_roll().name, "hotline-reporters"} <= held
    from civicpulse.identity.models import Resident

    key = account.entity.records.get(source__name="population-register").key
    assert Resident.objects.get(pk=int(key)).disability

    firm = Account.objects.get(user__username="firm")
    assert firm.relation == Account.Relation.REPRESENTATIVE and firm.entity.kind == "enterprise"
    second = Account.objects.get(user__username="resident2")
    assert second.entity != account.entity and second.entity.kind == "resident"
    assert client.login(username="resident", password=demo_city.DEMO_PASSWORD)
    from civicpulse.demo.identity import login_lines

    assert len(login_lines()) == 3 and account.entity.code in "".join(login_lines())


def test_codes_are_stable_when_the_identity_step_runs_again(demo_city):
    before = dict(SourceRecord.objects.values_list("pk", "entity__code"))
    entities = Entity.objects.count()
    for name, report in identity.sync_all().items():
        assert not isinstance(report, str), (name, report)
        assert report.to_link == [], name
    for kind in Kind.values:
        assert master.run_full(kind).status == "done"
    assert dict(SourceRecord.objects.values_list("pk", "entity__code")) == before
    assert Entity.objects.count() == entities
