"""The demo city's master index: each department's roll of residents and enterprises, linked.

``build(city, bar)`` runs after the data hub (demo/catalog.py). The rolls come from
:mod:`civicpulse.demo.people`: messy copies of the city's residents and enterprises as the
departments hold them (typos, old phones, an ID digit swapped...). Each roll is written to a file,
registered and loaded in the catalog by its department as any dataset, and becomes a record
source that reads that dataset; the platform's own three registers (population, market, hotline
callers) join them. Every source is synced and the linker makes the master index, one full run
per kind, through the same services the worker's jobs use.

The hotline's callers: the generated cases carry no reporter, so a small seeded share of the
hotline cases is given one, as a hotline hears them: mostly residents of the city, some visitors;
a full name or only a surname and a title (张先生, 王阿姨); the registered mobile or another
number. The callers who gave only a surname with their registered number leave the resident run
with uncertain pairs in the review queue.

"My space" gets three demo accounts: a disabled resident who receives the disability allowance
and has called the hotline, a second resident on another roll, and the legal representative of an
enterprise. Their logins are printed with the staff's.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from django.contrib.auth import get_user_model
from django.db import transaction

from civicpulse.cases.models import Case, Reporter
from civicpulse.catalog import services as catalog
from civicpulse.core.models import Department
from civicpulse.demo import people
from civicpulse.demo.generator import (
    _GIVEN,
    _MOBILE_PREFIXES,
    _SURNAMES,
    DemoCity,
    _years_before,
)
from civicpulse.identity import normalise
from civicpulse.identity import services as identity
from civicpulse.identity.models import Account, Entity, Kind, SourceRecord
from civicpulse.identity.models import Resident as RegisteredResident

__all__ = ["ACCOUNTS", "COLUMNS", "STEPS", "build", "login_lines", "roll_rows", "roll_table"]

# Stream number of this module's random generator, clear of the generator's and the hub's.
_HOTLINE_STREAM = 103
# Share of the hotline's cases whose caller left a name and mobile the index can use.
CALLER_SHARE = 0.01
# Of those callers: visitors on no roll of the city; of the residents, those who gave their full
# name (the others only a surname and a title), and those who gave a number other than the one
# the population register holds (a relative's, the office's).
VISITOR_SHARE = 0.05
FULL_NAME_SHARE = 0.55 / 0.90
OTHER_PHONE_SHARE = 0.10
# How a caller is addressed, by gender and age (under 30, 30-59, 60 on): (title, weight).
_TITLES = {
    ("M", "young"): (("先生", 0.9), ("师傅", 0.1)),
    ("M", "mid"): (("先生", 0.8), ("师傅", 0.15), ("老师", 0.05)),
    ("M", "old"): (("大爷", 0.5), ("先生", 0.35), ("师傅", 0.15)),
    ("F", "young"): (("女士", 0.85), ("小姐", 0.15)),
    ("F", "mid"): (("女士", 0.85), ("阿姨", 0.1), ("老师", 0.05)),
    ("F", "old"): (("阿姨", 0.5), ("女士", 0.3), ("大妈", 0.2)),
}

# The files' columns, in the departments' words: attribute -> column.
COLUMNS = {
    Kind.RESIDENT: {
        "key": "编号",
        "name": "姓名",
        "id_number": "公民身份号码",
        "gender": "性别",
        "birth_date": "出生日期",
        "phone": "联系电话",
        "address": "住址",
        "observed_at": "更新日期",
    },
    Kind.ENTERPRISE: {
        "key": "编号",
        "name": "单位名称",
        "uscc": "统一社会信用代码",
        "legal_representative": "法定代表人",
        "phone": "联系电话",
        "address": "地址",
        "industry_code": "行业代码",
        "observed_at": "更新日期",
    },
}

# (username, relation, what the account shows)
ACCOUNTS = (
    ("resident", Account.Relation.SELF, "a disabled resident on the allowance who called 12345"),
    ("resident2", Account.Relation.SELF, "a resident on another department's roll"),
    ("firm", Account.Relation.REPRESENTATIVE, "an enterprise's legal representative"),
)

# One progress step per roll; then callers, sync, one link per kind, and the accounts.
STEPS = len(people.ROLLS) + 5


# ============================================================================================
# The rolls' files
# ============================================================================================


def _residents(city: DemoCity) -> Iterator:
    return chain.from_iterable(city.residents())


def _enterprises(city: DemoCity) -> Iterator:
    return chain.from_iterable(city.enterprises())


def roll_rows(city: DemoCity) -> dict[str, list[dict]]:
    """Each roll's rows as its department holds them (the truth is not in them)."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for batch in chain(
        people.messy_residents(_residents(city), seed=city.seed, as_of=city.end),
        people.messy_enterprises(_enterprises(city), seed=city.seed, as_of=city.end),
    ):
        for row in batch:
            rows[row["roll"]].append(row)
    return rows


def roll_table(kind: str, rows: list[dict]) -> pa.Table:
    """Every value as the text the department wrote (a blank is missing, not an empty text)."""
    columns = COLUMNS[kind]

    def text(value) -> str | None:
        return None if value in (None, "") else str(value)

    return pa.table(
        {column: [text(r.get(a)) for r in rows] for a, column in columns.items()},
        schema=pa.schema([(column, pa.string()) for column in columns.values()]),
    )


def _register(roll, path: Path, admin) -> None:
    """The roll into the catalog as its department would put it, and a source reading it."""
    catalog.register_dataset(
        roll.name,
        title=roll.title,
        owner=roll.department_code,
        description=f"{roll.title}：姓名、身份证件号码、联系方式和地址。含个人信息。",
        frequency="monthly",
        tags=("个人信息", "主数据"),
        user=admin,
    )
    catalog.load_version(roll.name, path, user=admin, progress=False)
    proposal = catalog.classify(roll.name, user=admin)
    catalog.set_grade(
        roll.name, proposal.grade, user=admin, reason="; ".join(map(str, proposal.reasons))
    )
    identity.ensure_source(
        roll.name,
        title=roll.title,
        kind=roll.kind,
        department=roll.department_code,
        dataset_slug=roll.name,
        trust=roll.trust,
        mapping=dict(COLUMNS[roll.kind]),
        service_title=roll.service_title,
    )


# ============================================================================================
# The hotline's callers
# ============================================================================================


def _age(born, on) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _title(rng: np.random.Generator, male: bool, age: int) -> str:
    """What a caller of this gender and age is called on the line."""
    titles = _TITLES[("M" if male else "F", "old" if age >= 60 else "young" if age < 30 else "mid")]
    words, weights = zip(*titles, strict=True)
    return words[int(rng.choice(len(words), p=np.array(weights) / sum(weights)))]


def _mobile(rng: np.random.Generator) -> str:
    prefix = _MOBILE_PREFIXES[int(rng.integers(len(_MOBILE_PREFIXES)))]
    return f"{prefix}{int(rng.integers(100_000_000)):08d}"


def _visitor(rng: np.random.Generator) -> tuple[str, bool, int]:
    """A name, gender and age for someone from out of town (on no roll of the city)."""
    male = bool(rng.random() < 0.5)
    age = int(rng.integers(20, 75))
    surnames, weights = zip(*_SURNAMES, strict=True)
    surname = surnames[int(rng.choice(len(surnames), p=np.array(weights) / sum(weights)))]
    era = "old" if age >= 60 else "mid" if age >= 35 else "young"
    pool = _GIVEN[(era, "M" if male else "F")]
    given = "".join(pool[int(i)] for i in rng.integers(len(pool), size=int(rng.integers(1, 3))))
    return surname + given, male, age


def _as_said(rng: np.random.Generator, name: str, phone: str, male: bool, age: int):
    """The name and number a caller gave: the full name or only surname and title, the
    registered number or another one (a relative's, the office's)."""
    if rng.random() >= FULL_NAME_SHARE:
        name = f"{normalise.parse_name(name).surname}{_title(rng, male, age)}"
    if rng.random() < OTHER_PHONE_SHARE:
        phone = _mobile(rng)
    return name, phone


def _callers(city: DemoCity, featured: list[RegisteredResident]) -> None:
    """Give a seeded share of the hotline cases a caller, as a hotline hears them.

    Most callers are adult residents of the city; some are visitors on no roll of the city
    (each stays an entity of their own). A caller gives the full name or only a surname and a
    title (张先生, 王阿姨), and the registered mobile or another number; the master index links
    the full names, queues the surnames with the registered number for review, and leaves the
    rest alone. The featured residents (the demo accounts) gave their full name and registered
    mobile, twice each, so "my space" has requests to show."""
    rng = np.random.default_rng([city.seed, _HOTLINE_STREAM])
    hotline = Case.objects.filter(channel=Case.Channel.HOTLINE).order_by("pk")
    cases = list(hotline.values_list("pk", flat=True))
    adult_born = _years_before(city.end, 18)
    residents = list(
        RegisteredResident.objects.filter(birth_date__lte=adult_born)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not cases or not residents:
        return
    n = max(len(featured) * 2, int(len(cases) * CALLER_SHARE))
    chosen_cases = rng.choice(len(cases), size=min(n, len(cases)), replace=False)
    callers: list[object] = [r.pk for r in featured for _ in range(2)]  # two calls each
    for _ in range(len(chosen_cases) - len(callers)):
        if rng.random() < VISITOR_SHARE:
            callers.append(("visitor", len(callers)))
        else:
            callers.append(residents[int(rng.integers(len(residents)))])
    by_pk = RegisteredResident.objects.in_bulk({c for c in callers if isinstance(c, int)})
    said, as_registered = {}, {r.pk for r in featured}
    for caller in dict.fromkeys(callers):
        if caller in as_registered:
            said[caller] = (by_pk[caller].name, by_pk[caller].phone)
        elif isinstance(caller, int):
            person = by_pk[caller]
            male = person.gender == RegisteredResident.Gender.MALE
            said[caller] = _as_said(
                rng, person.name, person.phone, male, _age(person.birth_date, city.end)
            )
        else:
            name, male, age = _visitor(rng)
            said[caller] = _as_said(rng, name, _mobile(rng), male, age)
    with transaction.atomic():
        reporters = {
            caller: Reporter.objects.create(name=name, phone=phone)
            for caller, (name, phone) in said.items()
        }
        links = [
            Case.reporters.through(case_id=cases[int(i)], reporter_id=reporters[caller].pk)
            for i, caller in zip(chosen_cases, callers, strict=True)
        ]
        Case.reporters.through.objects.bulk_create(links)


# ============================================================================================
# My space
# ============================================================================================


def _service_roll(kind_hint: str):
    """The roll whose service title mentions ``kind_hint`` (e.g. 残疾 for the allowance)."""
    for roll in people.ROLLS:
        if roll.kind == Kind.RESIDENT and roll.service_title and kind_hint in roll.service_title:
            return roll
    return None


def _featured(rows: dict[str, list[dict]]) -> list[RegisteredResident]:
    """The two demo residents: the first disabled resident on the disability allowance roll,
    and the first resident of another service roll (by ID number: the same city, the same
    people)."""
    allowance = _service_roll("残疾")
    others = [r for r in people.ROLLS if r.kind == Kind.RESIDENT and r.service_title]
    chosen = []
    for roll in [allowance, *[r for r in others if r is not allowance]]:
        if roll is None:
            continue
        truths = sorted({row["truth"] for row in rows.get(roll.name, [])})
        for truth in truths:
            person = RegisteredResident.objects.filter(id_number=truth).first()
            if person is None or person in chosen:
                continue
            if roll is allowance and not person.disability:
                continue
            chosen.append(person)
            break
        if len(chosen) == 2:
            break
    return chosen


def _entity_of(source_name: str, key: str) -> Entity:
    record = SourceRecord.objects.select_related("entity").get(source__name=source_name, key=key)
    entity = record.entity
    while entity.merged_into_id:
        entity = entity.merged_into
    return entity


def _accounts(featured: list[RegisteredResident], password: str, admin) -> None:
    """The demo's my-space accounts, issued by the data bureau as the service hall would
    after checking each person (the residents could also have registered themselves)."""
    from civicpulse.enterprise.models import Enterprise

    User = get_user_model()
    entities = [_entity_of("population-register", str(person.pk)) for person in featured]
    firm = Enterprise.objects.filter(status="active").order_by("uscc").first()
    if firm is not None:
        entities.append(_entity_of("market-register", str(firm.pk)))
    for (username, relation, _what), entity in zip(ACCOUNTS, entities, strict=False):
        user = User.objects.create_user(username, password=password)
        identity.issue_account(entity, user, relation, actor=admin)


def login_lines() -> list[str]:
    """The "my space" demo logins, for the loader to print with the staff's."""
    lines = []
    for account in Account.objects.select_related("user", "entity").filter(
        user__username__in=[a[0] for a in ACCOUNTS]
    ):
        what = {a[0]: a[2] for a in ACCOUNTS}[account.user.username]
        lines.append(f"  {account.user.username:10} my space /my/ ({what}, {account.entity.code})")
    return lines


# ============================================================================================
# The step
# ============================================================================================


def build(city: DemoCity, bar, *, password: str) -> None:
    """The master index of the demo city (see the module docstring)."""
    admin = get_user_model().objects.get(username="admin")
    for spec in people.ROLL_DEPARTMENTS:  # the rolls' departments the city's list lacks
        Department.objects.get_or_create(
            code=spec.code, defaults={"name_zh": spec.name_zh, "name_en": spec.name_en}
        )
    rows = roll_rows(city)
    with tempfile.TemporaryDirectory(prefix="civicpulse-demo-identity-") as work:
        for roll in people.ROLLS:
            if rows.get(roll.name):  # a roll nobody is on (a tiny city) has no file to load
                path = Path(work) / f"{roll.name}.parquet"
                pq.write_table(roll_table(roll.kind, rows[roll.name]), path)
                _register(roll, path, admin)
            bar.update(1)
    featured = _featured(rows)
    _callers(city, featured)
    bar.update(1)
    from civicpulse.demo.loader import DemoError

    for name, report in identity.sync_all(actor=admin).items():
        if isinstance(report, str):
            raise DemoError(f"the demo's record source {name} did not sync: {report}")
    bar.update(1)
    for kind in Kind.values:
        try:
            identity.run_full(kind, actor=admin)
        except Exception as exc:
            raise DemoError(f"the demo's {kind} link failed: {exc}") from exc
        bar.update(1)
    _accounts(featured, password, admin)
    bar.update(1)
