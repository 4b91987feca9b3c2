"""Loading the generated demo city into the store and the lake, with a progress bar."""

from __future__ import annotations

import time
import zlib
from datetime import date, datetime, timedelta

from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from civicpulse.cases import sla
from civicpulse.cases.models import Case, Service
from civicpulse.cases.sla import Calendar
from civicpulse.core import accounts, audit
from civicpulse.core.areas import AreaRecord, save_tree
from civicpulse.core.models import Area, Department, Role
from civicpulse.core.queue import StoreQueue, Worker
from civicpulse.demo import catalog as data_hub
from civicpulse.demo import identity as master_index
from civicpulse.demo.generator import SIZES, DemoCity
from civicpulse.enterprise.models import Enterprise
from civicpulse.identity.models import Resident
from civicpulse.opinion import services as opinion

DEMO_PASSWORD = "civicpulse-demo"


class DemoError(RuntimeError):
    """The demo could not be built; the message says which step failed."""




def _logins(city: Area) -> list[tuple[str, Role, str, str | None, str | None]]:
    """(user, role, full name, department code, area code) of the demo's staff."""
    district = city.children.order_by("code").first()
    street = district.children.order_by("code").first() if district else None
    grid = Area.objects.filter(path__startswith=street.path, level="grid").order_by("code").first()
    return [
        ("leader", Role.CITY_LEADER, "Mayor's office", None, None),
        ("admin", Role.DATA_ADMIN, "Data bureau", None, None),
        ("operator", Role.HOTLINE_OPERATOR, "12345 hotline", None, None),
        ("district", Role.DEPARTMENT_STAFF, "District office", None, district.code),
        ("grid", Role.GRID_WORKER, "Grid worker", None, grid.code if grid else None),
        ("pr", Role.PR_OFFICER, "Press office", None, None),
        ("analyst", Role.ANALYST, "Analyst", None, None),
        ("auditor", Role.AUDITOR, "Auditor", None, None),
    ]


def _staff(city: Area) -> None:
    for username, role, name, dept, area_code in _logins(city):
        areas = [Area.objects.get(code=area_code)] if area_code else []
        department = Department.objects.filter(code=dept).first() if dept else None
        accounts.create_staff(
            username,
            DEMO_PASSWORD,
            role,
            department=department,
            areas=areas,
            full_name=name,
            is_staff=role == Role.DATA_ADMIN,
            is_superuser=role == Role.DATA_ADMIN,
        )


def print_logins() -> None:
    print(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
    for username, role, name, _dept, _area in _logins(Area.objects.get(level="city")):
        print(f"  {username:10} {role.label} ({name})")
    for line in master_index.login_lines():  # residents' and enterprises' "my space"
        print(line)
    print()


def _store_city(city: DemoCity, bar: tqdm) -> dict[str, int]:
    """Areas, departments and services; returns grid code -> area id."""
    save_tree(
        AreaRecord(a.code, a.level, a.name_zh, a.name_en, a.parent_code, a.polygon, a.heated)
        for a in city.areas
    )
    bar.update(len(city.areas))
    Department.objects.bulk_create(
        [Department(code=d.code, name_zh=d.name_zh, name_en=d.name_en) for d in city.departments]
    )
    departments = {d.code: d for d in Department.objects.all()}
    Service.objects.bulk_create(
        [
            Service(
                code=s.code,
                name_zh=s.name_zh,
                name_en=s.name_en,
                group=s.group,
                department=departments[s.department_code],
                sla_working_days=s.sla_working_days,
            )
            for s in city.services
        ]
    )
    return dict(Area.objects.values_list("code", "id"))


def _store_people(city: DemoCity, areas: dict[str, int], bar: tqdm) -> None:
    for batch in city.residents():
        Resident.objects.bulk_create(
            [
                Resident(
                    id_number=r.id_number,
                    name=r.name,
                    gender=r.gender,
                    birth_date=r.birth_date,
                    disability=r.disability or "",
                    disability_grade=r.disability_grade,
                    phone=r.phone,
                    area_id=areas[r.grid_code],
                    address=r.address,
                )
                for r in batch
            ],
            batch_size=2000,
        )
        bar.update(len(batch))
    for batch in city.enterprises():
        Enterprise.objects.bulk_create(
            [
                Enterprise(
                    uscc=e.uscc,
                    name=e.name,
                    industry_code=e.industry_code,
                    area_id=areas[e.grid_code],
                    founded=e.founded,
                    registered_capital=e.registered_capital_10k_yuan,
                    legal_representative=e.legal_representative,
                    status=e.status,
                )
                for e in batch
            ],
            batch_size=2000,
        )
        bar.update(len(batch))


def _timeline(c, sla_days: int, cal: Calendar, as_of) -> dict:
    """When a demo case was accepted, fell due and was resolved, varied per case but fixed by
    its tracking number (the generator gives arrival and closing times only). Every step lies
    between arrival and closing, and none after the demo's last moment."""
    spread = zlib.crc32(c.tracking_no.encode())
    last = c.closed_at or as_of
    times = {
        "due_at": cal.add_working_days(c.created_at, sla_days),
        "accepted_at": None,
        "resolved_at": None,
    }
    if c.status != "new":
        times["accepted_at"] = min(c.created_at + timedelta(minutes=10 + spread % (36 * 60)), last)
    if c.status == "closed" and c.closed_at is not None:
        resolved = c.closed_at - timedelta(hours=1 + spread % 48)
        times["resolved_at"] = max(resolved, times["accepted_at"])
    elif c.status == "resolved":
        times["resolved_at"] = min(times["accepted_at"] + timedelta(hours=4 + spread % 96), last)
    return times


def _store_cases(city: DemoCity, areas: dict[str, int], bar: tqdm) -> None:
    services = {s.code: (s.pk, s.department_id, s.sla_working_days) for s in Service.objects.all()}
    cal = sla.calendar()
    for batch in city.cases():
        Case.objects.bulk_create(
            [
                Case(
                    tracking_no=c.tracking_no,
                    channel=c.channel,
                    service_id=services[c.service_code][0],
                    department_id=services[c.service_code][1],
                    area_id=areas[c.grid_code],
                    title=c.title,
                    description=c.description,
                    lon=c.lon,
                    lat=c.lat,
                    status=c.status,
                    created_at=c.created_at,
                    closed_at=c.closed_at,
                    satisfaction=c.satisfaction,
                    **_timeline(c, services[c.service_code][2], cal, city.as_of),
                )
                for c in batch
            ],
            batch_size=2000,
        )
        bar.update(len(batch))


def _store_posts(city: DemoCity, bar: tqdm) -> None:
    """Posts come in as a city's would: through the opinion desk's intake, which scores them
    and writes them to the lake by day; then the watch is replayed over the crisis, so the demo
    shows a warning's whole life (raised, raised again, calmed down) and its plans."""
    opinion.seed_defaults()
    opinion.add_concern(
        "供水水质", category="water", department="water",
        description="Tap water that looks, smells or tastes wrong.",
        rules_=[
            ("自来水异常", "(自来水 OR 水质 OR 停水) AND (发黄 OR 异味 OR 浑浊 OR 有味 OR 变色)"),
        ],
    )
    opinion.add_concern(
        "供暖", category="heating", department="housing",
        rules_=[("暖气不热", "(暖气 OR 供暖 OR 供热) AND (不热 OR 冰凉 OR 温度低)")],
    )
    opinion.add_plan(
        "供水突发事件（III级）", level=3, category="water",
        steps=[("核查水质并公布检测结果", "water", 12), ("排查管网", "water", 24)],
    )
    opinion.add_plan(
        "供水突发事件（I/II级）", level=2, category="water",
        steps=[("启动应急供水", "water", 4), ("发布权威信息", "water", 6)],
    )
    sources = {}
    for batch in city.posts():
        by_source: dict[str, list] = {}
        for p in batch:
            by_source.setdefault(p.source, []).append(
                opinion.RawPost(
                    source=p.source, external_id=p.post_id, text=p.text,
                    created_at=p.created_at, author=p.author, reach=p.reach, reposts=p.reposts,
                )
            )
        for name, records in by_source.items():
            if name not in sources:
                sources[name] = opinion.ensure_source(name)
            opinion.store_posts(sources[name], records, name="demo city")
        bar.update(len(batch))
    _district, start, end, _topic = city.crisis
    tz = timezone.get_current_timezone()
    opinion.replay(
        datetime.combine(start - timedelta(days=1), datetime.min.time(), tz),
        datetime.combine(end + timedelta(days=3), datetime.min.time(), tz),
        step=timedelta(hours=2),
    )


def refresh_analytics() -> None:
    """Run the cockpit's analytics now, through the queue like any periodic job."""
    queue = StoreQueue()
    job_id = queue.enqueue("cockpit.refresh", key="demo-refresh")
    worker = Worker(queue, names=["cockpit.refresh"])
    while worker.run_one():
        pass
    state = queue.state(job_id) if job_id else {"state": "done"}
    if state["state"] != "done":
        raise DemoError(f"the cockpit's analytics failed: {state['error']}")


def build(
    *,
    size: str = "full",
    seed: int = 2260,
    end: date | None = None,
    rebuild: bool = False,
    quiet: bool = False,
) -> bool:
    """Build the demo city and its analytics; returns False when the city was already there
    (then only the analytics are run again)."""
    started = time.monotonic()
    if Area.objects.filter(level="city").exists() and not rebuild:
        if not quiet:
            print("The demo city is already built (--rebuild starts over); refreshing analytics.")
        refresh_analytics()
        return False
    if rebuild:
        call_command("flush", interactive=False, verbosity=0)
    city = DemoCity(seed=seed, size=size, end=end)
    n = SIZES[size]
    total = len(city.areas) + n.residents + n.enterprises + n.cases + n.posts + data_hub.STEPS
    total += master_index.STEPS
    with tqdm(
        total=total, desc=f"demo city ({size})", unit=" records", disable=quiet, smoothing=0.1
    ) as bar:
        with transaction.atomic():
            sla.seed_default_holidays()
            areas = _store_city(city, bar)
            _store_people(city, areas, bar)
            _store_cases(city, areas, bar)
            _staff(Area.objects.get(level="city"))
        _store_posts(city, bar)
        data_hub.build(city, bar)  # the departments' datasets in the catalog
        master_index.build(city, bar, password=DEMO_PASSWORD)  # who is who across them
    audit.record(
        "system",
        "demo.build",
        object_type="demo",
        object_id=str(seed),
        detail={"size": size, "seed": seed, "end": str(city.end)},
    )
    refresh_analytics()
    if not quiet:
        print(f"demo city built in {time.monotonic() - started:.0f} s")
    return True
