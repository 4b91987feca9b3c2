"""The demo city's master index, as ``civicpulse demo`` builds it (the small city)."""

from __future__ import annotations

import pandas as pd
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


# ------------------------------------------------------------------ callers as a hotline hears them


def _pending_resident_pairs():
    from civicpulse.identity.models import ReviewPair

    return ReviewPair.objects.filter(kind=Kind.RESIDENT, status=ReviewPair.Status.PENDING)


def test_callers_are_heard_as_a_hotline_hears_them(demo_city):
    from civicpulse.identity.models import Resident

    callers = list(SourceRecord.objects.filter(source__name="hotline-reporters"))
    assert len(callers) >= 50
    only_surname = [r for r in callers if r.normalised["surname_only"] == "1"]
    whole = [r for r in callers if r.normalised["surname_only"] is None]
    # about 35 % gave only a surname and a title, and it reads as one (张先生 -> 张)
    assert 0.2 * len(callers) <= len(only_surname) <= 0.5 * len(callers)
    assert all(len(r.normalised["name"]) == 1 for r in only_surname)
    assert all(r.attributes["name"] != r.normalised["name"] for r in only_surname)
    # the visitors and the callers who gave another number are on no roll by that number
    registered = set(Resident.objects.values_list("phone", flat=True))
    strangers = [r for r in whole + only_surname if r.attributes["phone"] not in registered]
    assert 0.05 * len(callers) <= len(strangers) <= 0.3 * len(callers)
    for record in strangers:  # nothing to link them with: each its own entity
        assert record.entity.records.count() == 1, record.attributes


def test_the_resident_run_leaves_uncertain_pairs_for_review(demo_city):
    from civicpulse.identity import linking

    pending = list(_pending_resident_pairs().select_related("record_a__source", "run"))
    assert len(pending) > 0
    fields = linking.SPECS["resident"].comparison_names()
    for pair in pending:
        thresholds = pair.run.thresholds
        assert thresholds["review"] <= pair.match_probability < thresholds["link"]
        explained = pair.explanation["fields"]
        assert [f["field"] for f in explained] == fields
        assert all(f["level"] and isinstance(f["weight"], float) for f in explained)
    # the pairs are the callers who gave only a surname with their registered number
    callers = [p for p in pending if p.record_a.source.name == "hotline-reporters"]
    assert callers
    for pair in callers:
        name = next(f for f in pair.explanation["fields"] if f["field"] == "name")
        phone = next(f for f in pair.explanation["fields"] if f["field"] == "phone")
        assert name["level"] == "only a surname given, the same surname" and name["weight"] > 0
        assert phone["level"] == "phone equal"


def test_deciding_same_links_the_caller_to_the_resident(demo_city):
    from django.contrib.auth import get_user_model

    pair = next(
        p
        for p in _pending_resident_pairs().select_related("record_a__source", "record_b__source")
        if {p.record_a.source.name, p.record_b.source.name}
        == {"hotline-reporters", "population-register"}
    )
    caller, resident = sorted(
        (pair.record_a, pair.record_b), key=lambda r: r.source.name != "hotline-reporters"
    )
    assert caller.entity_id != resident.entity_id
    admin = get_user_model().objects.get(username="admin")
    master.decide(pair, "same", user=admin)
    caller.refresh_from_db()
    resident.refresh_from_db()
    entity = caller.entity
    while entity.merged_into_id:
        entity = entity.merged_into
    assert entity == resident.entity and entity.status == Entity.Status.ACTIVE
    assert caller.linked_by == "review"
    pair.refresh_from_db()
    assert pair.status == "same" and pair.decided_by == admin


@pytest.fixture
def scored(demo_city):
    """Score a new caller against every resident record with the demo run's own model."""
    from civicpulse.identity import linking, normalise

    run = master.latest_model_run(Kind.RESIDENT)
    existing = identity.frame(Kind.RESIDENT)
    gazetteer = normalise.Gazetteer.from_store()

    def score(name: str, phone: str) -> pd.DataFrame:
        attrs = {"name": name, "phone": phone}
        new = pd.DataFrame(
            [
                {"record_id": "caller", "source": "hotline-reporters"}
                | normalise.resident(attrs, gazetteer)
            ],  # fmt: skip
            dtype=object,
        )
        return linking.match_new(
            new, existing, Kind.RESIDENT, run.model, review_threshold=run.thresholds["review"]
        )

    score.thresholds = run.thresholds
    return score


def _a_man_called_zhang():
    from civicpulse.identity.models import Resident

    person = Resident.objects.filter(name__startswith="张", gender="M").exclude(phone="")
    person = person.order_by("pk").first()
    record = SourceRecord.objects.get(source__name="population-register", key=str(person.pk))
    return person, str(record.pk)


def test_a_surname_with_the_residents_phone_is_uncertain(scored):
    person, record = _a_man_called_zhang()
    pairs = scored("张先生", person.phone)
    mine = pairs[pairs["record_r"] == record]
    assert len(mine) == 1
    p = float(mine["match_probability"].iloc[0])
    assert scored.thresholds["review"] <= p < scored.thresholds["link"]


def test_a_surname_with_another_phone_is_not_paired(scored):
    held = {r.get("phone") for r in SourceRecord.objects.values_list("normalised", flat=True)}
    other = next(f"1990000{n:04d}" for n in range(10_000) if f"1990000{n:04d}" not in held)
    assert scored("张先生", other).empty


def test_a_whole_name_with_the_residents_phone_links(scored):
    person, record = _a_man_called_zhang()
    pairs = scored(person.name, person.phone)
    mine = pairs[pairs["record_r"] == record]
    assert len(mine) == 1
    assert float(mine["match_probability"].iloc[0]) >= scored.thresholds["link"]
