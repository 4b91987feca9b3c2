"""The demo city's people and enterprises as departments hold them: messy copies with the truth.

The generator's residents and enterprises are the clean truth. Every department keeps its own
roll (a register, an allowance list, a licence file), typed by its own clerks at its own time:
this module writes those rolls, each row carrying the ``truth`` (the clean ID number or credit
code) so that entity resolution can be scored. Same seed and same ``as_of`` -> same rows.

Who is on which roll (``Roll.share``): the household-register extract holds almost everyone,
the social-insurance roll most adults, the disability-allowance roll only disabled residents,
elderly health care only people aged 65 and over, the housing subsidy a few adults. For
enterprises: tax registration (almost every active one), employer social insurance, food
business licences (catering, retail, food industry) and pollutant discharge permits
(manufacturing, power and heat).

Typing errors and habits, at these base rates per row (a roll's ``error_scale`` multiplies
them: the police extract is the cleanest, the health roll the messiest):

* name: one character replaced by a homophone 2 % (of names that have a character with a
  homophone among the generator's own name characters; groups built with pypinyin), a space
  inside 1.5 %; a name in pinyin (``Zhang Wei``, ``ZHANG WEI``; full-width letters 1 in 10 of
  those) only on the social-insurance roll, 0.3 %;
* ID number: full-width digits 1 %, two adjacent digits swapped 0.8 % (the number then fails
  its check and stays as written), a final ``X`` written ``x`` 30 % of those ending in X;
  missing at the roll's rate;
* phone: an older number (the person has changed it since) 6 %, written ``138 0013 8000``
  5 %, written ``+86 138-0013-8000`` 4 %; missing at the roll's rate;
* address: without the city 25 %, ``号楼`` written ``栋`` 15 %, an older address (moved) 3 %;
* birth date: written ``1980/1/2`` 10 %, ``19800102`` 5 %; missing at the roll's rate;
* gender: ``男``/``女`` on the police extract, ``M``/``F`` elsewhere; missing at the roll's rate;
* enterprise name: region prefix dropped or added 30 %, ``有限公司`` <-> ``有限责任公司``
  15 %, a space inside 2 %; legal representative's name with a homophone 2 %; credit code in
  lower case 2 %, two adjacent characters swapped 0.5 % (fails its check), missing at the
  roll's rate (15 % on food licences); contact phone older 10 %, spaced 5 %; address without
  the city 30 %, an older address 5 %.

``observed_at`` is when the department last confirmed the row: within about two years of
``as_of``, one to five years back for rows holding an older phone or address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache

import numpy as np

from civicpulse.demo.generator import (
    _GIVEN,
    _MOBILE_PREFIXES,
    _SURNAMES,
    CITY_ZH,
    DemoCity,
    DepartmentSpec,
    EnterpriseSpec,
    ResidentSpec,
    Size,
)
from civicpulse.identity.normalise import pinyin

__all__ = [
    "ENTERPRISE_RATES",
    "RESIDENT_RATES",
    "ROLLS",
    "ROLL_DEPARTMENTS",
    "EnterpriseCohort",
    "ResidentCohort",
    "Roll",
    "homophones",
    "messy_enterprises",
    "messy_residents",
]

RESIDENT_RATES: dict[str, float] = {
    "homophone": 0.02,
    "name_space": 0.015,
    "id_fullwidth": 0.01,
    "id_swap": 0.008,
    "id_lower_x": 0.30,  # of IDs ending in X
    "phone_old": 0.06,
    "phone_spaced": 0.05,
    "phone_plus86": 0.04,
    "address_no_city": 0.25,
    "address_dong": 0.15,
    "address_old": 0.03,
    "birth_slash": 0.10,
    "birth_compact": 0.05,
}
ENTERPRISE_RATES: dict[str, float] = {
    "region_toggle": 0.30,
    "form_swap": 0.15,
    "name_space": 0.02,
    "rep_homophone": 0.02,
    "uscc_lower": 0.02,
    "uscc_swap": 0.005,
    "phone_old": 0.10,
    "phone_spaced": 0.05,
    "address_no_city": 0.30,
    "address_old": 0.05,
}
# Rates that describe a clerk's habit rather than an error: the roll's error_scale leaves them.
_HABITS = {"id_lower_x", "address_no_city", "birth_slash", "birth_compact", "region_toggle"}


@dataclass(frozen=True, slots=True)
class ResidentCohort:
    """One batch of residents as arrays, for the share rules of resident rolls."""

    age: np.ndarray  # whole years on as_of
    male: np.ndarray
    disabled: np.ndarray


@dataclass(frozen=True, slots=True)
class EnterpriseCohort:
    """One batch of enterprises as arrays, for the share rules of enterprise rolls."""

    active: np.ndarray
    form: np.ndarray  # "1" company, "2" sole trader, "3" cooperative (the credit code's type)
    section: np.ndarray  # GB/T 4754 section letter of the industry
    industry: np.ndarray  # the full industry code, e.g. "H62"


Share = float | Callable[[ResidentCohort], np.ndarray] | Callable[[EnterpriseCohort], np.ndarray]


@dataclass(frozen=True)
class Roll:
    """One department's register or roll. ``share`` is the chance that a person or enterprise
    is on it: a number, or a function of the cohort giving one chance per row."""

    name: str
    title: str
    kind: str  # "resident" | "enterprise"
    department_code: str
    trust: int  # 0..100, higher wins in survivorship
    service_title: str
    share: Share
    error_scale: float = 1.0
    missing: Mapping[str, float] = field(default_factory=dict)
    pinyin_names: float = 0.0
    key_prefix: str = ""


# Departments the rolls belong to that the demo city's own list does not have.
ROLL_DEPARTMENTS = (
    DepartmentSpec("civil", "民政局", "Civil Affairs Bureau"),
    DepartmentSpec("health", "卫生健康委员会", "Health Commission"),
    DepartmentSpec("tax", "税务局", "Taxation Bureau"),
)

ROLLS: tuple[Roll, ...] = (
    Roll(
        "police-household", "户籍人口信息摘录", "resident", "police", 90, "",
        share=0.92, error_scale=0.3, key_prefix="HJ",
        missing={"id_number": 0.001, "phone": 0.35, "address": 0.01},
    ),
    Roll(
        "hrss-social-insurance", "社会保险参保登记", "resident", "hrss", 70, "",
        share=lambda c: np.where(c.age >= 16, 0.80, 0.0), error_scale=0.8, key_prefix="SB",
        missing={"id_number": 0.01, "phone": 0.10, "birth_date": 0.05, "gender": 0.02,
                 "address": 0.10},
        pinyin_names=0.003,
    ),
    Roll(
        "civil-disability-allowance", "残疾人两项补贴发放名册", "resident", "civil", 60,
        "残疾人两项补贴", share=lambda c: np.where(c.disabled, 0.85, 0.0), error_scale=1.2,
        key_prefix="CJ",
        missing={"id_number": 0.03, "phone": 0.08, "birth_date": 0.20, "gender": 0.10,
                 "address": 0.02},
    ),
    Roll(
        "health-elderly-care", "65岁及以上老年人健康管理名册", "resident", "health", 50,
        "老年人健康管理", share=lambda c: np.where(c.age >= 65, 0.60, 0.0), error_scale=1.5,
        key_prefix="JK",
        missing={"id_number": 0.05, "phone": 0.15, "birth_date": 0.10, "gender": 0.05,
                 "address": 0.05},
    ),
    Roll(
        "housing-rent-subsidy", "公共租赁住房租赁补贴名册", "resident", "housing", 40,
        "公租房租赁补贴", share=lambda c: np.where(c.age >= 18, 0.03, 0.0), key_prefix="ZF",
        missing={"id_number": 0.02, "phone": 0.05, "birth_date": 0.30, "gender": 0.20},
    ),
    Roll(
        "tax-registration", "税务登记信息", "enterprise", "tax", 80, "",
        share=lambda c: np.where(c.active, 0.95, 0.50), error_scale=0.4, key_prefix="SW",
        missing={"uscc": 0.002, "legal_representative": 0.01, "phone": 0.10},
    ),
    Roll(
        "hrss-employer-insurance", "用人单位社会保险登记", "enterprise", "hrss", 60, "",
        share=lambda c: np.where(c.form == "1", 0.80, np.where(c.form == "3", 0.50, 0.25))
        * c.active,
        key_prefix="DW",
        missing={"uscc": 0.03, "legal_representative": 0.05, "phone": 0.15, "address": 0.05},
    ),
    Roll(
        "market-food-licence", "食品经营许可", "enterprise", "market", 70, "",
        share=lambda c: np.isin(c.industry, ("H62", "F52", "C13", "C14", "C15")) * 0.9,
        error_scale=1.2, key_prefix="JY",
        missing={"uscc": 0.15, "legal_representative": 0.02, "phone": 0.20,
                 "industry_code": 0.30},
    ),
    Roll(
        "ecology-discharge-permit", "排污许可登记", "enterprise", "ecology", 60, "",
        share=lambda c: np.where((c.section == "C") | (c.section == "D"), 0.70, 0.0) * c.active,
        key_prefix="PW",
        missing={"uscc": 0.05, "legal_representative": 0.05, "phone": 0.20},
    ),
)  # fmt: skip


# ============================================================================================
# Homophones among the generator's name characters
# ============================================================================================


@cache
def homophones() -> dict[str, str]:
    """Each name character that has homophones -> those other characters (same toneless
    pinyin; a surname read as a surname). Built from the generator's own characters."""
    surnames = {s for s, _ in _SURNAMES}
    chars = surnames | {ch for pool in _GIVEN.values() for ch in pool}
    groups: dict[str, list[str]] = {}
    for ch in sorted(chars):
        groups.setdefault(pinyin(ch, surname=ch in surnames), []).append(ch)
    out = {}
    for members in groups.values():
        for ch in members:
            others = "".join(m for m in members if m != ch)
            if others:
                out[ch] = others
    return out


def _homophone(name: str, u1: float, u2: float) -> str | None:
    """The name with one character swapped for a homophone, or None if none has one."""
    table = homophones()
    spots = [i for i, ch in enumerate(name) if ch in table]
    if not spots:
        return None
    i = spots[int(u1 * len(spots))]
    others = table[name[i]]
    return name[:i] + others[int(u2 * len(others))] + name[i + 1 :]


def _spaced(name: str, u: float) -> str:
    if len(name) < 2:
        return name
    i = 1 + int(u * (len(name) - 1))
    return name[:i] + " " + name[i:]


_FULLWIDTH = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}


def _fullwidth(text: str) -> str:
    return text.translate(_FULLWIDTH)


def _in_pinyin(name: str, upper: bool, wide: bool) -> str:
    surname = (pinyin(name[0], surname=True) or "").capitalize()
    given = (pinyin(name[1:]) or "").capitalize()
    text = f"{surname} {given}".strip()
    text = text.upper() if upper else text
    return _fullwidth(text) if wide else text


def _swap_adjacent(text: str, u: float, lo: int, hi: int) -> str:
    """Swap two adjacent, different characters at positions lo..hi (inclusive)."""
    spots = [i for i in range(lo, hi) if text[i] != text[i + 1]]
    if not spots:
        return text
    i = spots[int(u * len(spots))]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def _mobile(prefix: int, line: int) -> str:
    return f"{_MOBILE_PREFIXES[prefix]}{line:08d}"


def _phone_form(phone: str, style: int) -> str:
    if style == 1:
        return f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    if style == 2:
        return f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"
    return phone


def _flags(rng: np.random.Generator, n: int, rates: Mapping[str, float], scale: float) -> dict:
    return {
        key: (rng.random(n) < min(1.0, rate if key in _HABITS else rate * scale)).tolist()
        for key, rate in rates.items()
    }


def _missing(rng: np.random.Generator, n: int, roll: Roll, fields: Iterable[str]) -> dict:
    return {f: (rng.random(n) < roll.missing.get(f, 0.0)).tolist() for f in fields}


def _observed(rng: np.random.Generator, n: int, as_of: date, stale: np.ndarray) -> list[str]:
    recent = np.minimum(rng.exponential(240.0, n), 730).astype(np.int64)
    old = rng.integers(365, 5 * 365, n)
    back = np.where(stale, old, recent)
    start = as_of.toordinal()
    return [date.fromordinal(start - int(d)).isoformat() for d in back]


def _rolls_of(kind: str, rolls: Iterable[Roll]) -> list[tuple[int, Roll]]:
    return [(i, r) for i, r in enumerate(rolls) if r.kind == kind]


def _chance(share: Share, cohort, n: int) -> np.ndarray:
    if callable(share):
        return np.broadcast_to(np.asarray(share(cohort), dtype=float), (n,))
    return np.full(n, float(share))


# ============================================================================================
# Residents
# ============================================================================================


def _age(births: list[date], as_of: date) -> np.ndarray:
    years = np.array([b.year for b in births])
    before = np.array([(b.month, b.day) > (as_of.month, as_of.day) for b in births], dtype=bool)
    return as_of.year - years - before


def messy_residents(
    residents: Iterable[list[ResidentSpec]] | Iterable[ResidentSpec],
    *,
    seed: int,
    rolls: Iterable[Roll] = ROLLS,
    as_of: date | None = None,
) -> Iterator[list[dict]]:
    """The rows of every resident roll, one list per batch of residents.

    ``residents`` is ``DemoCity.residents()`` (batches) or any iterable of ``ResidentSpec``.
    ``as_of`` (default today, like the generator's own end date) dates the rows and ages people
    for the share rules."""
    as_of = as_of or date.today()
    chosen = _rolls_of("resident", rolls)
    counters = {i: 0 for i, _ in chosen}
    for b, batch in enumerate(_batched(residents)):
        out: list[dict] = []
        cohort = ResidentCohort(
            age=_age([r.birth_date for r in batch], as_of),
            male=np.array([r.gender == "M" for r in batch], dtype=bool),
            disabled=np.array([r.disability is not None for r in batch], dtype=bool),
        )
        for i, roll in chosen:
            rng = np.random.default_rng([seed, 1, b, i])
            on = np.flatnonzero(rng.random(len(batch)) < _chance(roll.share, cohort, len(batch)))
            out.extend(_resident_rows(rng, roll, [batch[j] for j in on], batch, counters[i], as_of))
            counters[i] += len(on)
        yield out


def _batched(items) -> Iterator[list]:
    """Batches as given, or batches of 10 000 from a flat iterable of specs."""
    pending: list = []
    for item in items:
        if isinstance(item, list):
            yield item
            continue
        pending.append(item)
        if len(pending) == 10_000:
            yield pending
            pending = []
    if pending:
        yield pending


def _resident_rows(
    rng: np.random.Generator,
    roll: Roll,
    people: list[ResidentSpec],
    batch: list[ResidentSpec],
    start: int,
    as_of: date,
) -> list[dict]:
    n = len(people)
    if not n:
        return []
    f = _flags(rng, n, RESIDENT_RATES, roll.error_scale)
    miss = _missing(rng, n, roll, ("id_number", "phone", "birth_date", "gender", "address"))
    u = rng.random((n, 4)).tolist()
    in_pinyin = (rng.random(n) < roll.pinyin_names).tolist()
    old_prefix = rng.integers(0, len(_MOBILE_PREFIXES), n).tolist()
    old_line = rng.integers(0, 100_000_000, n).tolist()
    elsewhere = rng.integers(0, len(batch), n).tolist()
    stale = np.array(f["phone_old"]) & ~np.array(miss["phone"]) | np.array(f["address_old"])
    observed = _observed(rng, n, as_of, stale)
    police = roll.department_code == "police"
    rows = []
    for k, person in enumerate(people):
        name = person.name
        if in_pinyin[k]:
            name = _in_pinyin(name, upper=u[k][0] < 0.4, wide=u[k][1] < 0.1)
        else:
            if f["homophone"][k]:
                name = _homophone(name, u[k][0], u[k][1]) or name
            if f["name_space"][k]:
                name = _spaced(name, u[k][2])

        id_number = person.id_number
        if f["id_swap"][k]:
            id_number = _swap_adjacent(id_number, u[k][3], 0, 16)
        if f["id_lower_x"][k] and id_number.endswith("X"):
            id_number = id_number[:-1] + "x"
        if f["id_fullwidth"][k]:
            id_number = _fullwidth(id_number)

        phone = person.phone
        if f["phone_old"][k]:
            phone = _mobile(old_prefix[k], old_line[k])
        phone = _phone_form(phone, 1 if f["phone_spaced"][k] else 2 if f["phone_plus86"][k] else 0)

        address = person.address
        if f["address_old"][k]:
            address = batch[elsewhere[k]].address
        if f["address_no_city"][k] and address.startswith(CITY_ZH):
            address = address[len(CITY_ZH) :]
        if f["address_dong"][k]:
            address = address.replace("号楼", "栋")

        born = person.birth_date
        if f["birth_slash"][k]:
            birth = f"{born.year}/{born.month}/{born.day}"
        elif f["birth_compact"][k]:
            birth = born.strftime("%Y%m%d")
        else:
            birth = born.isoformat()
        gender = ("男" if person.gender == "M" else "女") if police else person.gender

        rows.append(
            {
                "roll": roll.name,
                "key": f"{roll.key_prefix}{start + k + 1:08d}",
                "truth": person.id_number,
                "observed_at": observed[k],
                "name": name,
                "id_number": None if miss["id_number"][k] else id_number,
                "gender": None if miss["gender"][k] else gender,
                "birth_date": None if miss["birth_date"][k] else birth,
                "phone": None if miss["phone"][k] else phone,
                "address": None if miss["address"][k] else address,
            }
        )
    return rows


# ============================================================================================
# Enterprises
# ============================================================================================


@cache
def _demo_places() -> tuple[dict[str, str], tuple[str, ...]]:
    """Grid code -> the place part of an address, and the region prefixes of enterprise names.
    The demo's area tree does not depend on the seed, so an empty city gives it."""
    city = DemoCity(size=Size(0, 0, 0, 0), end=date(2026, 1, 1))
    by_code = {a.code: a for a in city.areas}
    places = {}
    for a in city.areas:
        if a.level == "grid":
            community = by_code[a.parent_code]
            street = by_code[community.parent_code]
            district = by_code[street.parent_code]
            places[a.code] = f"{CITY_ZH}{district.name_zh}{street.name_zh}{community.name_zh}"
    districts = [a.name_zh for a in city.areas if a.level == "district"]
    prefixes = (CITY_ZH, CITY_ZH[:-1], *districts)
    return places, tuple(sorted(prefixes, key=len, reverse=True))


def _toggle_region(name: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return CITY_ZH + name


def _swap_form(name: str) -> str:
    if "股份有限公司" in name:
        return name
    if name.endswith("有限责任公司"):
        return name[: -len("有限责任公司")] + "有限公司"
    if name.endswith("有限公司"):
        return name[: -len("有限公司")] + "有限责任公司"
    return name


def messy_enterprises(
    enterprises: Iterable[list[EnterpriseSpec]] | Iterable[EnterpriseSpec],
    *,
    seed: int,
    rolls: Iterable[Roll] = ROLLS,
    as_of: date | None = None,
) -> Iterator[list[dict]]:
    """The rows of every enterprise roll, one list per batch of enterprises.

    The generator gives enterprises no phone or street address: each gets a contact mobile
    (drawn from ``seed``, the same on every roll unless a roll holds an older one) and an
    address in its grid's community."""
    as_of = as_of or date.today()
    chosen = _rolls_of("enterprise", rolls)
    counters = {i: 0 for i, _ in chosen}
    places, prefixes = _demo_places()
    for b, batch in enumerate(_batched(enterprises)):
        n = len(batch)
        base = np.random.default_rng([seed, 2, b])
        phones = [
            _mobile(p, line)
            for p, line in zip(
                base.integers(0, len(_MOBILE_PREFIXES), n).tolist(),
                base.integers(0, 100_000_000, n).tolist(),
                strict=True,
            )
        ]
        numbers = base.integers(1, 300, n).tolist()
        addresses = [
            f"{places.get(e.grid_code, CITY_ZH)}{no}号"
            for e, no in zip(batch, numbers, strict=True)
        ]
        cohort = EnterpriseCohort(
            active=np.array([e.status == "active" for e in batch], dtype=bool),
            form=np.array([e.uscc[1] for e in batch]),
            section=np.array([e.industry_code[:1] for e in batch]),
            industry=np.array([e.industry_code for e in batch]),
        )
        out: list[dict] = []
        for i, roll in chosen:
            rng = np.random.default_rng([seed, 3, b, i])
            on = np.flatnonzero(rng.random(n) < _chance(roll.share, cohort, n)).tolist()
            out.extend(
                _enterprise_rows(
                    rng, roll, on, batch, phones, addresses, prefixes, counters[i], as_of
                )
            )
            counters[i] += len(on)
        yield out


def _enterprise_rows(
    rng: np.random.Generator,
    roll: Roll,
    on: list[int],
    batch: list[EnterpriseSpec],
    phones: list[str],
    addresses: list[str],
    prefixes: tuple[str, ...],
    start: int,
    as_of: date,
) -> list[dict]:
    n = len(on)
    if not n:
        return []
    f = _flags(rng, n, ENTERPRISE_RATES, roll.error_scale)
    miss = _missing(
        rng, n, roll, ("uscc", "legal_representative", "phone", "address", "industry_code")
    )
    u = rng.random((n, 4)).tolist()
    old_prefix = rng.integers(0, len(_MOBILE_PREFIXES), n).tolist()
    old_line = rng.integers(0, 100_000_000, n).tolist()
    elsewhere = rng.integers(0, len(batch), n).tolist()
    stale = np.array(f["phone_old"]) | np.array(f["address_old"])
    observed = _observed(rng, n, as_of, stale)
    rows = []
    for k, j in enumerate(on):
        e = batch[j]
        name = e.name
        if f["region_toggle"][k]:
            name = _toggle_region(name, prefixes)
        if f["form_swap"][k]:
            name = _swap_form(name)
        if f["name_space"][k]:
            name = _spaced(name, u[k][0])

        rep = e.legal_representative
        if f["rep_homophone"][k]:
            rep = _homophone(rep, u[k][1], u[k][2]) or rep

        uscc = e.uscc
        if f["uscc_swap"][k]:
            uscc = _swap_adjacent(uscc, u[k][3], 2, 16)
        if f["uscc_lower"][k]:
            uscc = uscc.lower()

        phone = _mobile(old_prefix[k], old_line[k]) if f["phone_old"][k] else phones[j]
        phone = _phone_form(phone, 1 if f["phone_spaced"][k] else 0)

        address = addresses[elsewhere[k]] if f["address_old"][k] else addresses[j]
        if f["address_no_city"][k] and address.startswith(CITY_ZH):
            address = address[len(CITY_ZH) :]

        rows.append(
            {
                "roll": roll.name,
                "key": f"{roll.key_prefix}{start + k + 1:08d}",
                "truth": e.uscc,
                "observed_at": observed[k],
                "name": name,
                "uscc": None if miss["uscc"][k] else uscc,
                "legal_representative": None if miss["legal_representative"][k] else rep,
                "phone": None if miss["phone"][k] else phone,
                "address": None if miss["address"][k] else address,
                "industry_code": None if miss["industry_code"][k] else e.industry_code,
            }
        )
    return rows
