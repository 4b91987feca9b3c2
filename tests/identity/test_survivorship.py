"""Survivorship: each attribute's rule, ties, invalid identifiers, and the saved golden record."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from civicpulse.core.models import Area
from civicpulse.identity.models import Entity, EntityEvent, Source, SourceRecord
from civicpulse.identity.survivorship import Candidate, golden, refresh, rules_for, survive

VALID_ID = "110101199003077774"  # checked below, not assumed
INVALID_ID = "110101199003077775"
SPACED_ID = "110101 19900307 7774"
JAN = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
JUN = dt.datetime(2026, 6, 5, tzinfo=dt.UTC)


def candidate(record, source, trust, at, invalid=(), **attributes) -> Candidate:
    return Candidate(
        record=record,
        source=source,
        trust=trust,
        observed_at=at,
        attributes=attributes,
        normalised={k: (v.upper() if isinstance(v, str) else v) for k, v in attributes.items()},
        invalid=frozenset(invalid),
    )


def test_the_fixtures_id_numbers_are_what_they_claim():
    from civicpulse.identity.checks import check_resident_id

    assert check_resident_id(VALID_ID).valid
    assert not check_resident_id(INVALID_ID).valid


def test_resident_name_comes_from_the_most_trusted_source_even_if_older():
    police = candidate(1, "police", 90, JAN, name="张伟")
    hotline = candidate(2, "hotline", 20, JUN, name="张玮")
    attributes, provenance = survive("resident", [hotline, police])
    assert attributes["name"] == "张伟"
    assert provenance["name"] == {
        "record": 1,
        "source": "police",
        "rule": "trusted > recent",
        "by": "trusted",
        "at": JAN.isoformat(),
    }


def test_equal_trust_falls_to_the_most_recent_value():
    older = candidate(1, "civil", 60, JAN, name="李娜")
    newer = candidate(2, "health", 60, JUN, name="李 娜 ")
    attributes, provenance = survive("resident", [older, newer])
    assert attributes["name"] == "李 娜"  # stripped, never otherwise changed
    assert provenance["name"]["by"] == "recent"


def test_a_valid_id_number_beats_a_more_trusted_invalid_one():
    trusted_but_wrong = candidate(1, "police", 90, JUN, invalid=["id_number"], id_number=INVALID_ID)
    right = candidate(2, "hotline", 20, JAN, id_number=VALID_ID)
    chosen = golden("resident", [trusted_but_wrong, right])
    assert chosen.attributes["id_number"] == VALID_ID
    assert chosen.provenance["id_number"]["by"] == "valid"
    assert chosen.identifier == VALID_ID


def test_an_invalid_id_number_is_kept_as_given_but_never_becomes_the_identifier():
    only = candidate(1, "police", 90, JAN, invalid=["id_number"], id_number=INVALID_ID)
    chosen = golden("resident", [only])
    assert chosen.attributes["id_number"] == INVALID_ID
    assert chosen.provenance["id_number"]["by"] == "only"
    assert chosen.identifier == ""


def test_phone_and_address_come_from_the_most_recent_record_whatever_the_trust():
    police = candidate(1, "police", 90, JAN, phone="13800000001", address="老地址")
    roll = candidate(2, "civil", 30, JUN, phone="13900000002", address="新地址")
    attributes, provenance = survive("resident", [police, roll])
    assert attributes["phone"] == "13900000002"
    assert attributes["address"] == "新地址"
    assert provenance["address"]["by"] == "recent"


def test_birth_date_and_gender_come_from_the_most_trusted_source():
    police = candidate(1, "police", 90, JAN, gender="F", birth_date="1990-03-07")
    roll = candidate(2, "civil", 30, JUN, gender="M", birth_date="1990-07-03")
    attributes, _ = survive("resident", [police, roll])
    assert attributes["gender"] == "F"
    assert attributes["birth_date"] == "1990-03-07"


def test_missing_values_never_win_and_an_attribute_nobody_gives_is_left_out():
    police = candidate(1, "police", 90, JUN, name="王芳", phone="  ")
    roll = candidate(2, "civil", 30, JAN, name=None, phone="13700000003")
    attributes, provenance = survive("resident", [police, roll])
    assert attributes == {"name": "王芳", "phone": "13700000003"}
    assert set(provenance) == {"name", "phone"}


def test_a_full_tie_goes_to_the_record_taken_in_first_whatever_the_order():
    a = candidate(7, "civil", 50, JAN, name="赵敏")
    b = candidate(3, "health", 50, JAN, name="赵 敏")
    for offered in ([a, b], [b, a]):
        attributes, provenance = survive("resident", offered)
        assert (attributes["name"], provenance["name"]["record"]) == ("赵 敏", 3)
        assert provenance["name"]["by"] == "first taken in"


def test_enterprise_rules_name_trusted_legal_representative_recent():
    market = candidate(1, "market", 90, JAN, name="甲公司", legal_representative="刘一")
    tax = candidate(2, "tax", 40, JUN, name="甲有限公司", legal_representative="陈二")
    attributes, _ = survive("enterprise", [market, tax])
    assert attributes["name"] == "甲公司"
    assert attributes["legal_representative"] == "陈二"


@override_settings(CIVICPULSE_SURVIVORSHIP={"resident": {"address": ["trusted", "recent"]}})
def test_a_city_can_change_a_rule_and_unknown_criteria_are_refused():
    assert rules_for("resident")["address"] == ("trusted", "recent")
    police = candidate(1, "police", 90, JAN, address="老地址")
    roll = candidate(2, "civil", 30, JUN, address="新地址")
    assert survive("resident", [police, roll])[0]["address"] == "老地址"
    with override_settings(CIVICPULSE_SURVIVORSHIP={"resident": {"name": ["loudest"]}}):
        with pytest.raises(ValueError, match="loudest"):
            rules_for("resident")
    with pytest.raises(ValueError, match="unknown kind"):
        rules_for("vehicle")


@pytest.mark.django_db
def test_refresh_saves_the_golden_record_identifier_area_and_a_survived_event():
    # codes and names clear of the demo city's, which the session may have built in this store
    now = timezone.now()
    city = Area.objects.create(code="989900", level="city", name_zh="市", name_en="City")
    district = Area.objects.create(
        code="989901", level="district", parent=city, name_zh="区", name_en="District"
    )
    police = Source.objects.create(
        name="survivorship-police", title="人口", kind="resident", trust=90
    )
    civil = Source.objects.create(
        name="survivorship-civil", title="民政", kind="resident", trust=40
    )
    entity = Entity.objects.create(
        code="R9999999901", kind="resident", created_at=now, updated_at=now
    )

    def record(source, key, at, attributes, normalised, problems=()):
        return SourceRecord.objects.create(
            source=source,
            key=key,
            kind="resident",
            attributes=attributes,
            normalised=normalised,
            problems=list(problems),
            observed_at=at,
            entity=entity,
            created_at=now,
            updated_at=now,
        )

    first = record(
        police,
        "1",
        JAN,
        {"name": "张伟", "id_number": INVALID_ID},
        {"id_number": INVALID_ID},
        [{"field": "id_number", "code": "checksum", "reason": "bad check digit"}],
    )
    second = record(
        civil,
        "9",
        JUN,
        {"name": "张玮", "id_number": SPACED_ID, "address": "某区某路1号"},
        {"id_number": VALID_ID, "area_code": "989901"},
    )
    assert refresh(entity) is True
    entity.refresh_from_db()
    assert entity.attributes["name"] == "张伟"
    assert entity.provenance["name"]["record"] == first.pk
    assert entity.attributes["id_number"] == SPACED_ID  # as given
    assert entity.identifier == VALID_ID  # the normalised, valid form
    assert entity.provenance["id_number"]["record"] == second.pk
    assert entity.area == district
    event = EntityEvent.objects.get(entity=entity, action="survived")
    assert event.detail["changed"] == ["address", "id_number", "name"]
    assert event.detail["records"] == sorted([first.pk, second.pk])
    # nothing new: nothing saved, no second event
    assert refresh(entity) is False
    assert EntityEvent.objects.filter(entity=entity).count() == 1
