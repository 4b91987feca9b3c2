"""The demo city's data hub: a small, living catalog of 松河市's departments' datasets.

``build(city, bar)`` runs after the store is loaded. It writes a handful of files drawn from the
demo city itself (the store's enterprises, residents and cases; synthetic air readings and public
facilities from the seed) into a temporary directory, in the formats a city's departments really
hand over (CSV in UTF-8 and in GB18030, Excel, JSON, Parquet), and takes each through the
catalog's own services as its staff would: register, load, classify (the data admin applies the
proposed grade), map onto the data standards and check, define quality rules and measure each
version, share one dataset with another department and read it, publish two open-data releases
approved by a second person, and leave one refused draft. Nothing here reaches into the catalog's
internals: a demo that works only by shortcuts would show what the platform cannot do.

Every file is a function of the seed and the end date: the same pair gives the same rows, so the
same checksums in the catalog (:func:`write_files` is what a test compares).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from django.contrib.auth import get_user_model
from django.db.models import Avg, Count, Q
from django.db.models.functions import Substr, TruncMonth
from django.utils import timezone
from openpyxl import Workbook

from civicpulse.cases.models import Case
from civicpulse.catalog import services as catalog
from civicpulse.core import accounts
from civicpulse.core.models import Department, Role
from civicpulse.demo.generator import CITY_ZH, TZ, DemoCity, heating_season
from civicpulse.enterprise.models import Enterprise
from civicpulse.identity.models import Resident

__all__ = ["DATASETS", "STEPS", "build", "write_files"]

# The demo's staff beyond the loader's logins: a department's staff member is who asks for and
# reads another department's data (a data admin decides on sharing but reads nothing by office).
SHARING_STAFF = (
    ("housing_staff", "housing", "住建局数据专员"),
    ("transport_staff", "transport", "交通运输局数据专员"),
)
# Stream numbers of the demo's random generators, clear of the generator's own (1..5).
_AIR_STREAM = 101
_FACILITY_STREAM = 102

DIVISIONS = "division-codes"
ENTERPRISES = "enterprise-register"
ASSISTANCE = "disability-employment-assistance"
HOTLINE = "hotline-requests-monthly"
AIR = "air-quality-daily"
FACILITIES = "public-facilities"


@dataclass(frozen=True)
class DemoDataset:
    slug: str
    owner: str
    title: str
    title_en: str
    description: str
    frequency: str
    tags: tuple[str, ...]
    share_type: str
    filename: str
    encoding: str = "auto"


DATASETS = (
    DemoDataset(
        DIVISIONS, "urban", "行政区划与城市网格代码", "Division and community codes",
        "松河市的区、街道和社区代码（GB/T 2260 扩展编码），城市网格化管理的基础代码表。",
        "yearly", ("行政区划", "代码表", "网格化管理"), "unconditional",
        "division-codes-gb18030.csv", "gb18030",
    ),
    DemoDataset(
        ENTERPRISES, "market", "市场主体登记信息", "Enterprise register",
        "在本市登记的企业：统一社会信用代码、名称、法定代表人、行业（GB/T 4754-2017）、"
        "所属区和登记状态。",
        "monthly", ("企业", "信用代码", "市场监管"), "conditional", "enterprise-register.csv",
    ),
    DemoDataset(
        ASSISTANCE, "hrss", "残疾人就业援助对象名单", "Employment assistance for disabled people",
        "人社局就业援助对象中的持证残疾人：姓名、公民身份号码、手机号码、所属区和残疾类别。"
        "含个人信息，依申请有条件共享，共享时脱敏。",
        "monthly", ("就业援助", "残疾人", "个人信息"), "conditional",
        "disability-employment-assistance.xlsx",
    ),
    DemoDataset(
        HOTLINE, "urban", "12345热线诉求月度统计", "12345 hotline requests by month",
        "按月份、区和诉求类别统计的12345热线受理量、办结量和平均满意度。",
        "monthly", ("12345", "热线", "城市管理"), "unconditional", "hotline-requests-monthly",
    ),
    DemoDataset(
        AIR, "ecology", "各区空气质量日报", "Daily air quality by district",
        "各区国控点位的日均PM2.5、PM10、二氧化硫、二氧化氮浓度（微克/立方米）和空气质量指数。",
        "daily", ("空气质量", "AQI", "生态环境"), "unconditional", "air-quality-daily.json",
    ),
    DemoDataset(
        FACILITIES, "urban", "城市公共服务设施名录", "Public facilities",
        "公共厕所、垃圾转运站、公园广场和社区便民服务中心的名称、位置和开放时间。",
        "quarterly", ("公共设施", "便民服务"), "unconditional", "public-facilities.xlsx",
    ),
)  # fmt: skip
# One progress step per dataset, and one each for standards, sharing, open data and groups.
STEPS = len(DATASETS) + 4


# ============================================================================================
# The files
# ============================================================================================


def _districts(city: DemoCity) -> dict[str, str]:
    return {a.code: a.name_zh for a in city.areas if a.level == "district"}


def division_rows(city: DemoCity) -> tuple[list[str], list[list]]:
    levels = {"city": "市", "district": "区", "street": "街道", "community": "社区"}
    rows = [
        [a.code, a.name_zh, a.name_en, levels[a.level], a.parent_code or ""]
        for a in city.areas
        if a.level in levels
    ]
    return ["区划代码", "名称", "英文名称", "层级", "上级代码"], rows


def enterprise_rows(city: DemoCity) -> tuple[list[str], list[list]]:
    """The store's enterprises, the industry split into its section letter and its division
    (the industry code list holds both, not the two joined)."""
    status = {"active": "存续", "revoked": "吊销", "cancelled": "注销"}
    rows = [
        [
            e.uscc,
            e.name,
            e.legal_representative,
            e.industry_code[:1],
            e.industry_code[1:],
            e.area.code[:6],
            e.founded.isoformat(),
            round(float(e.registered_capital), 2),
            status.get(e.status, e.status),
        ]
        for e in Enterprise.objects.select_related("area").order_by("uscc")
    ]
    header = ["统一社会信用代码", "企业名称", "法定代表人", "行业门类", "行业代码", "所属区划",
              "成立日期", "注册资本（万元）", "登记状态"]  # fmt: skip
    return header, rows


def assistance_rows(city: DemoCity) -> tuple[list[str], list[list]]:
    """Residents holding a disability certificate, as the employment office lists them (a few
    never gave a mobile number: the list is not perfect, nor is its quality score)."""
    kinds = dict(Resident.Disability.choices)
    districts = _districts(city)
    rows = [
        [
            r.name,
            r.id_number,
            "" if zlib.crc32(r.id_number.encode()) % 30 == 0 else r.phone,  # never given
            districts.get(r.area.code[:6], ""),
            str(kinds.get(r.disability, r.disability)),
            r.disability_grade,
        ]
        for r in Resident.objects.exclude(disability="")
        .select_related("area")
        .order_by("id_number")
    ]
    return ["姓名", "公民身份号码", "手机号码", "所属区", "残疾类别", "残疾等级"], rows


def _months(first: dt.date, last: dt.date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def hotline_rows(city: DemoCity, *, through: dt.date | None = None) -> tuple[list[str], list[list]]:
    """Cases per month, district and service up to the month of ``through`` (default the demo's
    end), every combination listed (a month without cases counts 0)."""
    through = through or city.end
    counted = (
        Case.objects.annotate(
            month=TruncMonth("created_at", tzinfo=TZ), district=Substr("area__code", 1, 6)
        )
        .values("month", "district", "service__code")
        .annotate(
            received=Count("id"),
            closed=Count("id", filter=Q(status__in=["closed", "resolved"])),
            satisfaction=Avg("satisfaction"),
        )
    )
    found = {
        (c["month"].astimezone(TZ).strftime("%Y-%m"), c["district"], c["service__code"]): c
        for c in counted
    }
    districts = _districts(city)
    rows = []
    for month in _months(city.start, through):
        for code, name in districts.items():
            for service in city.services:
                c = found.get((month, code, service.code), {})
                satisfaction = c.get("satisfaction")
                rows.append([
                    month, code, name, service.code, service.name_zh,
                    c.get("received", 0), c.get("closed", 0),
                    None if satisfaction is None else round(float(satisfaction), 2),
                ])  # fmt: skip
    header = ["月份", "区划代码", "区名", "诉求类别代码", "诉求类别", "受理量", "办结量",
              "平均满意度"]  # fmt: skip
    return header, rows


# Breakpoints of the individual air quality index, HJ 633-2012 (24-hour means, µg/m³).
_IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
_PM25 = (0, 35, 75, 115, 150, 250, 350, 500)
_PM10 = (0, 50, 150, 250, 350, 420, 500, 600)


def _iaqi(value: float, breakpoints: tuple[int, ...]) -> int:
    for i in range(1, len(breakpoints)):
        if value <= breakpoints[i]:
            lo, hi = breakpoints[i - 1], breakpoints[i]
            return math.ceil(_IAQI[i - 1] + (_IAQI[i] - _IAQI[i - 1]) * (value - lo) / (hi - lo))
    return 500


def air_rows(city: DemoCity, days: int = 90) -> tuple[list[str], list[list]]:
    """Daily means per district: a shared weather factor each day, heating-season coal in the
    districts on the heating network, and each district's own noise."""
    rng = np.random.default_rng([city.seed, _AIR_STREAM])
    districts = _districts(city)
    heated = {a.code: a.heated for a in city.areas if a.level == "district"}
    rows = []
    for offset in range(days):
        day = city.end - dt.timedelta(days=days - 1 - offset)
        season_start, season_end = heating_season(day.year if day.month >= 7 else day.year - 1)
        heating = season_start <= day <= season_end
        weather = float(rng.lognormal(0.0, 0.45))
        for code, name in districts.items():
            coal = 30.0 if heating and heated[code] else 12.0 if heating else 0.0
            pm25 = (24.0 + coal) * weather * float(rng.lognormal(0.0, 0.2))
            pm10 = pm25 * float(rng.uniform(1.4, 1.9)) + 8.0
            so2 = (5.0 + coal * 0.6) * float(rng.lognormal(0.0, 0.25))
            no2 = 22.0 * weather**0.5 * float(rng.lognormal(0.0, 0.2))
            aqi = max(_iaqi(pm25, _PM25), _iaqi(pm10, _PM10))
            rows.append(
                [day.isoformat(), code, name, round(pm25), round(pm10), round(so2), round(no2), aqi]
            )
    for row, outage in zip(rows, rng.random(len(rows)) < 0.015, strict=True):
        if outage:  # a monitor was down that day: no particulate readings, so no index
            row[3] = row[4] = row[7] = None
    return ["日期", "区划代码", "区名", "PM2_5", "PM10", "SO2", "NO2", "AQI"], rows


_FACILITY_KINDS = (
    ("公共厕所", "全天开放", 2),
    ("垃圾转运站", "05:00-21:00", 1),
    ("公园广场", "06:00-22:00", 1),
    ("社区便民服务中心", "08:30-17:00（周一至周五）", 1),
)
_ROADS = ("路", "街", "大街", "大道")


def facility_rows(city: DemoCity) -> tuple[list[str], list[list]]:
    """A few facilities per street, placed inside the street's rectangle."""
    rng = np.random.default_rng([city.seed, _FACILITY_STREAM])
    districts = _districts(city)
    rows = []
    for street in (a for a in city.areas if a.level == "street"):
        ring = street.polygon["coordinates"][0]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        word = street.name_zh.removesuffix("街道")
        for kind, hours, count in _FACILITY_KINDS:
            for n in range(1, count + 1):
                road = f"{word}{_ROADS[int(rng.integers(len(_ROADS)))]}"
                number = int(rng.integers(1, 400))
                name = f"{word}{kind}" + (f"（{n}号）" if count > 1 else "")
                rows.append([
                    name, kind, districts[street.parent_code], street.name_zh,
                    f"{CITY_ZH}{districts[street.parent_code]}{road}{number}号",
                    round(float(rng.uniform(min(lons), max(lons))), 6),
                    round(float(rng.uniform(min(lats), max(lats))), 6),
                    hours,
                ])  # fmt: skip
    return ["设施名称", "设施类型", "所属区", "街道", "地址", "经度", "纬度", "开放时间"], rows


def _csv(path: Path, header: list[str], rows: list[list], encoding: str) -> None:
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


def _xlsx(path: Path, header: list[str], rows: list[list]) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("数据")
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(path)


def _json(path: Path, header: list[str], rows: list[list]) -> None:
    records = [dict(zip(header, row, strict=True)) for row in rows]
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")


def _parquet(path: Path, header: list[str], rows: list[list]) -> None:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in header]
    pq.write_table(
        pa.table({name: list(col) for name, col in zip(header, columns, strict=True)}), path
    )


_SOURCES: dict[str, Callable[[DemoCity], tuple[list[str], list[list]]]] = {
    DIVISIONS: division_rows,
    ENTERPRISES: enterprise_rows,
    ASSISTANCE: assistance_rows,
    HOTLINE: hotline_rows,
    AIR: air_rows,
    FACILITIES: facility_rows,
}


def _write(spec: DemoDataset, header: list[str], rows: list[list], directory: Path) -> Path:
    path = directory / spec.filename
    if spec.filename.endswith(".csv"):
        _csv(path, header, rows, "gb18030" if spec.encoding == "gb18030" else "utf-8")
    elif spec.filename.endswith(".xlsx"):
        _xlsx(path, header, rows)
    elif spec.filename.endswith(".json"):
        _json(path, header, rows)
    else:
        path = path.with_suffix(".parquet")
        _parquet(path, header, rows)
    return path


def write_files(city: DemoCity, directory: Path) -> dict[str, Path]:
    """Each demo dataset's current file, written into ``directory``; slug -> path."""
    by_slug = {spec.slug: spec for spec in DATASETS}
    return {slug: _write(by_slug[slug], *rows(city), directory) for slug, rows in _SOURCES.items()}


# ============================================================================================
# Through the catalog's services
# ============================================================================================


def _people() -> dict[str, object]:
    User = get_user_model()
    people = {u.username: u for u in User.objects.filter(username__in=["admin", "leader"])}
    for username, department, name in SHARING_STAFF:
        people[username] = accounts.create_staff(
            username,
            _demo_password(),
            Role.DEPARTMENT_STAFF,
            department=Department.objects.get(code=department),
            full_name=name,
        )
    return people


def _demo_password() -> str:
    from civicpulse.demo.loader import DEMO_PASSWORD

    return DEMO_PASSWORD


def _rules(slug: str, admin) -> None:
    """A dataset's quality rules. Defined once its first version is classified: a measurement
    keeps examples of violations, masked only for columns already tagged as personal."""
    division = {"dataset": DIVISIONS, "column": "区划代码"}
    rules = {
        DIVISIONS: [
            ("completeness", ["区划代码", "名称", "层级"], {}, "代码和名称齐全"),
            ("uniqueness", ["区划代码"], {}, "区划代码不重复"),
        ],
        ENTERPRISES: [
            ("completeness", ["统一社会信用代码", "企业名称", "行业代码"], {}, "关键字段齐全"),
            ("validity", ["统一社会信用代码"], {"check": "credit_code"}, "信用代码校验位正确"),
            ("uniqueness", ["统一社会信用代码"], {}, "一企一码"),
            ("consistency", ["所属区划"], division, "所属区划在区划代码表中"),
            ("timeliness", [], {}, "按月更新"),
        ],
        ASSISTANCE: [
            ("completeness", ["姓名", "公民身份号码", "手机号码"], {}, "身份和联系方式齐全"),
            ("validity", ["公民身份号码"], {"check": "resident_id"}, "身份号码校验位正确"),
            ("validity", ["手机号码"], {"check": "mobile"}, "手机号码有效"),
            ("uniqueness", ["公民身份号码"], {}, "一人一条"),
        ],
        HOTLINE: [
            ("completeness", ["月份", "区划代码", "诉求类别代码", "受理量"], {}, "统计维度齐全"),
            ("validity", ["受理量"], {"min": 0}, "受理量非负"),
            ("uniqueness", ["月份", "区划代码", "诉求类别代码"], {}, "每月每区每类一行"),
            ("consistency", ["区划代码"], division, "区划代码在代码表中"),
            ("timeliness", [], {}, "按月更新"),
        ],
        AIR: [
            ("completeness", ["日期", "区划代码", "PM2_5", "AQI"], {}, "监测值齐全"),
            ("validity", ["AQI"], {"min": 0, "max": 500}, "AQI在0-500之间"),
            ("uniqueness", ["日期", "区划代码"], {}, "每区每天一条"),
            ("consistency", ["区划代码"], division, "区划代码在代码表中"),
            ("timeliness", ["日期"], {"max_age_days": 3}, "数据不超过3天"),
        ],
        FACILITIES: [
            ("completeness", ["设施名称", "设施类型", "地址"], {}, "名称、类型和地址齐全"),
            ("validity", ["纬度"], {"min": 45.6, "max": 45.95}, "坐标在市域内"),
        ],
    }
    for dimension, columns, parameters, name in rules[slug]:
        catalog.define_quality_rule(slug, dimension, columns, parameters, name=name, user=admin)


def _classified(slug: str, admin) -> None:
    proposal = catalog.classify(slug, user=admin)
    catalog.set_grade(
        slug, proposal.grade, user=admin, reason="; ".join(map(str, proposal.reasons))
    )


def _load_all(city: DemoCity, directory: Path, admin, bar) -> None:
    """Register and load each dataset, classify it (the admin applies the proposed grade),
    define its quality rules and measure it; the hotline statistics get a second version (last
    month's, then this month's), measured as it loads."""
    for spec in DATASETS:
        catalog.register_dataset(
            spec.slug,
            title=spec.title,
            title_en=spec.title_en,
            owner=spec.owner,
            description=spec.description,
            frequency=spec.frequency,
            tags=spec.tags,
            share_type=spec.share_type,
            user=admin,
        )
    files = {spec.slug: spec for spec in DATASETS}
    last_month_end = city.end.replace(day=1) - dt.timedelta(days=1)
    for slug, rows in _SOURCES.items():
        spec = files[slug]
        if slug == HOTLINE:
            header, earlier = hotline_rows(city, through=last_month_end)
            (directory / "earlier").mkdir(exist_ok=True)
            first = _write(spec, header, earlier, directory / "earlier")
        else:
            first = _write(spec, *rows(city), directory)
        catalog.load_version(slug, first, encoding=spec.encoding, user=admin, progress=False)
        _classified(slug, admin)
        _rules(slug, admin)
        catalog.assess_quality(slug, user=admin)
        if slug == HOTLINE:
            path = _write(spec, *rows(city), directory)
            catalog.load_version(slug, path, user=admin, progress=False)
            _classified(slug, admin)
        bar.update(1)


def _standards(admin) -> None:
    catalog.seed_standards(user=admin)
    for slug, column, element, required in (
        (ENTERPRISES, "统一社会信用代码", "credit_code", True),
        (ENTERPRISES, "行业代码", "industry_code", False),
        (ENTERPRISES, "所属区划", "division_code", True),
        (ASSISTANCE, "公民身份号码", "resident_id", True),
        (ASSISTANCE, "手机号码", "mobile", False),
    ):
        catalog.map_column(slug, column, element, required, user=admin)
    for slug in (ENTERPRISES, ASSISTANCE):
        catalog.check_conformance(slug, user=admin)


def _sharing(people: dict) -> None:
    """Housing asks for the assistance list to check housing-subsidy applicants (approved,
    masked by its core grade) and reads a page; transport's request waits for the owner."""
    today = timezone.localdate()
    granted = catalog.request_dataset(
        ASSISTANCE,
        user=people["housing_staff"],
        columns=["姓名", "公民身份号码", "所属区", "残疾类别", "残疾等级"],
        purpose="公共租赁住房申请人残疾状况核验（住房保障优先配租）",
        starts_on=today,
        ends_on=today + dt.timedelta(days=180),
    )
    catalog.approve_share_request(
        granted,
        user=people["admin"],
        columns=["姓名", "公民身份号码", "所属区", "残疾类别"],
        note="同意共享核验所需字段；残疾等级不在核验范围内。",
    )
    catalog.read_rows(ASSISTANCE, user=people["housing_staff"], limit=20)
    catalog.request_dataset(
        ASSISTANCE,
        user=people["transport_staff"],
        columns=["姓名", "公民身份号码", "手机号码", "所属区"],
        purpose="残疾人免费乘坐公交资格核验",
        starts_on=today,
        ends_on=today + dt.timedelta(days=365),
    )


def _open_data(people: dict) -> None:
    """Two releases prepared by the data admin and approved by the city leader; one refused
    draft whose quasi-identifiers single enterprises out."""
    admin, leader = people["admin"], people["leader"]
    hotline = catalog.draft_release(
        HOTLINE,
        columns=["月份", "区划代码", "区名", "诉求类别", "受理量", "办结量"],
        quasi_identifiers=["区划代码", "诉求类别"],
        k=5,
        title="12345热线诉求月度统计",
        title_en="12345 hotline requests by month, district and service",
        notes="每月更新。按区和诉求类别汇总，不含任何诉求人信息。",
        user=admin,
    )
    catalog.approve_and_publish_release(hotline, leader)
    facilities = catalog.draft_release(
        FACILITIES,
        columns=["设施名称", "设施类型", "所属区", "街道", "地址", "经度", "纬度", "开放时间"],
        quasi_identifiers=[],
        no_quasi_identifiers=True,
        title="城市公共服务设施名录",
        title_en="Public facilities",
        notes="设施的地址和坐标是公共场所的位置，不涉及个人。",
        user=admin,
    )
    catalog.approve_and_publish_release(facilities, leader)
    catalog.draft_release(
        ENTERPRISES,
        columns=["行业代码", "所属区划", "成立日期", "注册资本（万元）"],
        quasi_identifiers=["行业代码", "所属区划", "成立日期"],
        k=5,
        title="市场主体行业与成立日期分布",
        title_en="Enterprises by industry and founding date",
        user=admin,
    )


def _groups(admin) -> None:
    for name, title, title_en, members in (
        ("urban-management", "城市管理", "Urban management", [DIVISIONS, HOTLINE, FACILITIES]),
        ("public-services", "公共服务", "Public services", [FACILITIES, ASSISTANCE, HOTLINE]),
        ("economy", "经济", "Economy", [ENTERPRISES]),
        ("environment", "生态环境", "Environment", [AIR]),
    ):
        catalog.group_datasets(name, title=title, title_en=title_en, datasets=members, user=admin)


def build(city: DemoCity, bar) -> None:
    """The demo's data hub, after the store holds the city (see the module docstring)."""
    people = _people()
    with tempfile.TemporaryDirectory(prefix="civicpulse-demo-catalog-") as work:
        _load_all(city, Path(work), people["admin"], bar)
    _standards(people["admin"])
    bar.update(1)
    _sharing(people)
    bar.update(1)
    _open_data(people)
    bar.update(1)
    _groups(people["admin"])
    bar.update(1)
