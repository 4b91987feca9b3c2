"""A small master index for the identity pages' tests: two districts, three departments, staff
of every kind, residents and an enterprise with their source records, a request with a notice,
a pending review pair and a merge in the history. Built per test through the ORM (the test's
transaction removes it)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

PASSWORD = "identity-pages-secret-1"
_numbers = itertools.count(1)


@pytest.fixture
def english(settings):
    """Pages are checked by their English text (zh-Hans readers get the same, translated)."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def _area(code, level, parent, name):
    from civicpulse.core.models import Area

    return Area.objects.create(code=code, level=level, parent=parent, name_zh=name, name_en=name)


@pytest.fixture
def world(db, settings):
    from django.contrib.auth import get_user_model

    from civicpulse.cases.models import Case, Notification, Reporter, Service
    from civicpulse.core import accounts
    from civicpulse.core.models import Department, Role
    from civicpulse.identity.identifiers import make_resident_id, make_uscc
    from civicpulse.identity.models import (
        Entity,
        EntityEvent,
        ReviewPair,
        Source,
        SourceRecord,
    )
    from civicpulse.identity.records import HOTLINE_REPORTERS

    # nine staff accounts per test: a quick hasher keeps the suite fast (the check is the same)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    n = next(_numbers)
    now = timezone.now()
    w = SimpleNamespace(now=now, n=n)
    # --- areas: a city with two districts; district A has a street, a community and a grid
    w.city = _area(f"7{n:02d}900", "city", None, "测试市")
    w.district_a = _area(f"7{n:02d}901", "district", w.city, "甲区")
    w.district_b = _area(f"7{n:02d}902", "district", w.city, "乙区")
    w.street_a = _area(f"7{n:02d}901001", "street", w.district_a, "甲街道")
    w.community_a = _area(f"7{n:02d}901001001", "community", w.street_a, "甲社区")
    w.grid_a = _area(f"7{n:02d}901001001001", "grid", w.community_a, "甲网格")
    # --- departments and their sources
    w.police = Department.objects.create(code=f"ID-POLICE-{n}", name_zh="公安局", name_en="Police")
    w.civil = Department.objects.create(
        code=f"ID-CIVIL-{n}", name_zh="民政局", name_en="Civil affairs"
    )
    w.urban = Department.objects.create(
        code=f"ID-URBAN-{n}", name_zh="城管局", name_en="Urban management"
    )
    w.population = Source.objects.create(
        name=f"population-{n}", title="人口信息登记", kind="resident", department=w.police, trust=90
    )
    w.allowance = Source.objects.create(
        name=f"elder-allowance-{n}",
        title="高龄津贴名册",
        kind="resident",
        department=w.civil,
        trust=60,
        service_title="高龄津贴",
    )
    w.hotline, _ = Source.objects.update_or_create(
        name=HOTLINE_REPORTERS,
        defaults={
            "title": "12345热线来电人",
            "kind": "resident",
            "department": w.urban,
            "trust": 20,
        },
    )
    w.market = Source.objects.create(
        name=f"market-{n}", title="市场主体登记", kind="enterprise", department=w.civil, trust=90
    )

    def entity(code, kind, attributes, *, area, identifier):
        return Entity.objects.create(
            code=code,
            kind=kind,
            attributes=attributes,
            provenance={
                k: {"source": w.population.name, "rule": "most trusted"} for k in attributes
            },
            identifier=identifier,
            area=area,
            created_at=now,
            updated_at=now,
        )

    def record(source, key, attributes, entity, *, problems=(), explanation=None, days=0):
        return SourceRecord.objects.create(
            source=source,
            key=key,
            kind=source.kind,
            attributes=attributes,
            normalised={},
            problems=list(problems),
            observed_at=now - timedelta(days=days),
            entity=entity,
            linked_by="model" if explanation else "alone",
            match_probability=0.99 if explanation else None,
            explanation=explanation or {},
            created_at=now,
            updated_at=now,
        )

    # --- Zhang Wei of district A: population register, an allowance, and a hotline call
    w.id_zhang = make_resident_id("330106", date(1948, 3, 9), 10 + n)
    w.id_zhang_bad = w.id_zhang[:17] + ("0" if w.id_zhang[17] != "0" else "1")
    w.phone_zhang = "13800138" + f"{n:03d}"
    w.zhang = entity(
        f"R9{n:07d}01",
        "resident",
        {
            "name": "张伟",
            "id_number": w.id_zhang,
            "gender": "M",
            "birth_date": "1948-03-09",
            "phone": w.phone_zhang,
            "address": "甲区幸福路12号3单元501室",
        },
        area=w.grid_a,
        identifier=w.id_zhang,
    )
    w.zhang_police = record(
        w.population,
        f"P{n}-1",
        {"name": "张伟", "id_number": w.id_zhang, "phone": w.phone_zhang, "address": "幸福路12号"},
        w.zhang,
        days=30,
    )
    w.zhang_allowance = record(
        w.allowance,
        f"A{n}-1",
        {"name": "张 伟", "id_number": w.id_zhang_bad, "address": "幸福路十二号民政专有"},
        w.zhang,
        problems=[
            {"field": "id_number", "code": "checksum", "reason": "check character should be X"}
        ],
        explanation={
            "prior": -9.5,
            "fields": [
                {"field": "name_sound", "level": "exact", "weight": 6.2},
                {"field": "id_number", "level": "one digit apart", "weight": 4.1},
                {"field": "phone", "level": "different", "weight": -1.3},
            ],
        },
        days=10,
    )
    w.reporter = Reporter.objects.create(name="张伟", phone=w.phone_zhang)
    w.zhang_hotline = record(
        w.hotline, str(w.reporter.pk), {"name": "张伟", "phone": w.phone_zhang}, w.zhang, days=5
    )
    service = Service.objects.create(
        code=f"id-lamp-{n}", group="市政", department=w.urban, name_zh="路灯", name_en="Lamps"
    )
    w.case = Case.objects.create(
        tracking_no=f"TST{n:04d}0001",
        channel="hotline",
        service=service,
        department=w.urban,
        area=w.grid_a,
        title="路灯不亮",
        description="幸福路路灯不亮",
        status="in_progress",
        created_at=now - timedelta(days=5),
    )
    w.case.reporters.add(w.reporter)
    Notification.objects.create(
        reporter=w.reporter, case=w.case, kind="accepted", body="您的诉求已受理", created_at=now
    )
    # --- Li Na of district B, with a request of her own
    w.id_li = make_resident_id("330106", date(1990, 7, 1), 20 + n)
    w.li = entity(
        f"R9{n:07d}02",
        "resident",
        {"name": "李娜", "id_number": w.id_li, "phone": "13900139000"},
        area=w.district_b,
        identifier=w.id_li,
    )
    w.li_police = record(w.population, f"P{n}-2", {"name": "李娜", "id_number": w.id_li}, w.li)
    other_reporter = Reporter.objects.create(name="李娜", phone="13900139000")
    w.li_hotline = record(w.hotline, str(other_reporter.pk), {"name": "李娜"}, w.li)
    w.other_case = Case.objects.create(
        tracking_no=f"TST{n:04d}0002",
        channel="hotline",
        service=service,
        department=w.urban,
        area=w.district_b,
        title="噪音扰民",
        description="夜间施工",
        created_at=now,
    )
    w.other_case.reporters.add(other_reporter)
    # --- a city-level entity (no area), and one merged into Zhang Wei
    w.nowhere = entity(f"R9{n:07d}03", "resident", {"name": "王芳"}, area=None, identifier="")
    w.merged = entity(
        f"R9{n:07d}04", "resident", {"name": "张伟"}, area=w.grid_a, identifier=w.id_zhang
    )
    w.merged.status, w.merged.merged_into = Entity.Status.MERGED, w.zhang
    w.merged.save()
    w.merge_event = EntityEvent.objects.create(
        entity=w.zhang,
        action="merged",
        at=now,
        actor="system",
        detail={"from": w.merged.code, "records": []},
    )
    # --- an enterprise in district A whose legal representative is Zhang Wei
    w.uscc = make_uscc("9", "1", "330106", f"{70000000 + n:08d}")
    w.firm = entity(
        f"E9{n:07d}01",
        "enterprise",
        {"name": "杭州测试科技有限公司", "uscc": w.uscc, "legal_representative": "张伟"},
        area=w.district_a,
        identifier=w.uscc,
    )
    w.firm_record = record(
        w.market, f"M{n}-1", {"name": "杭州测试科技有限公司", "uscc": w.uscc}, w.firm
    )
    # --- a pending pair: Zhang Wei's allowance record against a lone record of Li's
    a, b = sorted([w.zhang_allowance, w.li_police], key=lambda r: r.pk)
    w.pair = ReviewPair.objects.create(
        kind="resident",
        record_a=a,
        record_b=b,
        # above the demo city's uncertain callers (about 0.74), so it heads the queue's first
        # page even when the session built the demo in this store
        match_probability=0.93,
        match_weight=3.7,
        explanation={"prior": -9.5, "fields": [{"field": "name", "level": "else", "weight": -2}]},
        created_at=now,
    )
    # --- people
    made = {
        "admin": (Role.DATA_ADMIN, None, []),
        "leader": (Role.CITY_LEADER, None, []),
        "police": (Role.DEPARTMENT_STAFF, w.police, []),
        "civil": (Role.DEPARTMENT_STAFF, w.civil, []),
        "police_b": (Role.DEPARTMENT_STAFF, w.police, [w.district_b]),
        "grid_in": (Role.GRID_WORKER, None, [w.grid_a]),
        "grid_out": (Role.GRID_WORKER, None, [w.district_b]),
        "hotline_op": (Role.HOTLINE_OPERATOR, None, []),
        "analyst": (Role.ANALYST, None, []),
    }
    w.users = {
        key: accounts.create_staff(
            f"id-{key}-{n}", PASSWORD, role, department=department, areas=areas
        )
        for key, (role, department, areas) in made.items()
    }
    w.users["resident"] = get_user_model().objects.create_user(
        f"id-resident-{n}", password=PASSWORD
    )
    return w


@pytest.fixture
def login(client):
    """Sign a user in with the real password check."""

    def sign_in(user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    return sign_in


# --- a city with no master index yet ---------------------------------------------------------
# The session may have built the demo city in this store (its master index included). Tests of
# a first link, of codes given from scratch or of counts over a whole kind start from an empty
# master index instead: the rows are deleted inside the test's transaction, which is rolled back
# with it, so the demo is back for the next test.


@pytest.fixture
def empty_master_index(db):
    from civicpulse.identity.models import (
        Account,
        BlockingKey,
        Entity,
        EntityEvent,
        LinkRun,
        ReviewPair,
        Source,
        SourceRecord,
    )

    Account.objects.all().delete()
    ReviewPair.objects.all().delete()
    EntityEvent.objects.exclude(undone_by=None).update(undone_by=None)
    EntityEvent.objects.all().delete()
    BlockingKey.objects.all().delete()
    SourceRecord.objects.all().delete()
    Entity.objects.exclude(merged_into=None).update(merged_into=None)
    Entity.objects.all().delete()
    LinkRun.objects.all().delete()
    Source.objects.all().delete()


@pytest.fixture
def empty_registers(empty_master_index):
    """Also no one in the city's own registers (population, market, hotline callers), whose
    rows the built-in sources read."""
    from civicpulse.cases.models import Reporter
    from civicpulse.enterprise.models import Enterprise
    from civicpulse.identity.models import Resident

    Reporter.objects.all().delete()
    Resident.objects.all().delete()
    Enterprise.objects.all().delete()
