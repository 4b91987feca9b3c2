"""Department rolls of the demo city: seeded, true to their share rules, messy at the stated
rates, and every mess still traceable to a real resident or enterprise."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from datetime import date

import pytest

from civicpulse.demo import people
from civicpulse.demo.generator import DemoCity, Size
from civicpulse.identity import normalise
from civicpulse.identity.checks import check_credit_code, check_resident_id, to_halfwidth

END = date(2026, 11, 26)
SEED = 11


@pytest.fixture(scope="module")
def city():
    return DemoCity(seed=7, size=Size(30_000, 3_000, 0, 0), end=END)


@pytest.fixture(scope="module")
def residents(city):
    return {r.id_number: r for batch in city.residents() for r in batch}


@pytest.fixture(scope="module")
def enterprises(city):
    return {e.uscc: e for batch in city.enterprises() for e in batch}


@pytest.fixture(scope="module")
def resident_rows(residents):
    return _flat(people.messy_residents(list(residents.values()), seed=SEED, as_of=END))


@pytest.fixture(scope="module")
def enterprise_rows(enterprises):
    return _flat(people.messy_enterprises(list(enterprises.values()), seed=SEED, as_of=END))


def _flat(batches) -> list[dict]:
    return [row for batch in batches for row in batch]


def _roll(name: str) -> people.Roll:
    return next(r for r in people.ROLLS if r.name == name)


def _within(observed: int, trials: int, rate: float) -> None:
    """Observed count within 4.5 binomial standard deviations of the stated rate."""
    expected = trials * rate
    sigma = math.sqrt(trials * rate * (1 - rate))
    assert abs(observed - expected) <= 4.5 * sigma + 1, (observed, expected, sigma)


def _compact(value: str) -> str:
    return to_halfwidth(value).replace(" ", "").upper()


# ------------------------------------------------------------------ determinism and truth


def test_same_seed_same_rows_and_another_seed_others():
    city = DemoCity(seed=3, size=Size(2_000, 300, 0, 0), end=END)
    first = _flat(people.messy_residents(city.residents(), seed=5, as_of=END))
    again = _flat(people.messy_residents(city.residents(), seed=5, as_of=END))
    other = _flat(people.messy_residents(city.residents(), seed=6, as_of=END))
    assert first == again and first != other
    e1 = _flat(people.messy_enterprises(city.enterprises(), seed=5, as_of=END))
    e2 = _flat(people.messy_enterprises(city.enterprises(), seed=5, as_of=END))
    assert e1 == e2 and e1


def test_every_row_names_a_real_resident_with_a_unique_key(resident_rows, residents):
    assert resident_rows
    assert all(row["truth"] in residents for row in resident_rows)
    keys = Counter((row["roll"], row["key"]) for row in resident_rows)
    assert max(keys.values()) == 1
    on_roll = Counter((row["roll"], row["truth"]) for row in resident_rows)
    assert max(on_roll.values()) == 1  # a person is on a roll once
    expected = {"roll", "key", "truth", "observed_at", "name", "id_number", "gender"}
    expected |= {"birth_date", "phone", "address"}
    assert all(set(row) == expected for row in resident_rows)
    assert all(row["observed_at"] <= END.isoformat() for row in resident_rows)


def test_every_row_names_a_real_enterprise(enterprise_rows, enterprises):
    assert enterprise_rows
    assert all(row["truth"] in enterprises for row in enterprise_rows)
    assert max(Counter((r["roll"], r["key"]) for r in enterprise_rows).values()) == 1
    assert {r["roll"] for r in enterprise_rows} == {
        r.name for r in people.ROLLS if r.kind == "enterprise"
    }


# ------------------------------------------------------------------ share rules


def _age(born: date) -> int:
    return END.year - born.year - ((born.month, born.day) > (END.month, END.day))


def test_only_disabled_residents_are_on_the_disability_roll(resident_rows, residents):
    on = [residents[r["truth"]] for r in resident_rows if r["roll"] == "civil-disability-allowance"]
    assert on and all(p.disability is not None for p in on)
    disabled = sum(p.disability is not None for p in residents.values())
    _within(len(on), disabled, 0.85)


def test_age_rules_hold(resident_rows, residents):
    by_roll = defaultdict(list)
    for row in resident_rows:
        by_roll[row["roll"]].append(_age(residents[row["truth"]].birth_date))
    assert by_roll["health-elderly-care"] and min(by_roll["health-elderly-care"]) >= 65
    assert min(by_roll["hrss-social-insurance"]) >= 16
    assert min(by_roll["housing-rent-subsidy"]) >= 18
    _within(len(by_roll["police-household"]), len(residents), 0.92)


def test_enterprise_share_rules_hold(enterprise_rows, enterprises):
    for row in enterprise_rows:
        e = enterprises[row["truth"]]
        if row["roll"] == "ecology-discharge-permit":
            assert e.industry_code[0] in "CD" and e.status == "active"
        if row["roll"] == "market-food-licence":
            assert e.industry_code in {"H62", "F52", "C13", "C14", "C15"}
        if row["roll"] == "hrss-employer-insurance":
            assert e.status == "active"


# ------------------------------------------------------------------ the mess, at its rates


def test_swapped_id_digits_fail_their_check_and_stay_as_written(resident_rows):
    changed = [
        r for r in resident_rows if r["id_number"] and _compact(r["id_number"]) != r["truth"]
    ]
    assert changed
    for row in changed:
        result = check_resident_id(row["id_number"])
        assert not result.valid and result.code
        assert sorted(_compact(row["id_number"])) == sorted(row["truth"])  # same digits
    # full width and a lower-case x are forms, not errors: those IDs still pass
    forms = [
        r
        for r in resident_rows
        if r["id_number"]
        and r["id_number"] != r["truth"]
        and _compact(r["id_number"]) == r["truth"]
    ]
    assert forms and all(check_resident_id(r["id_number"]).valid for r in forms)
    assert any(r["id_number"].endswith("x") for r in forms)
    assert any(r["id_number"][0] == "\uff12" for r in forms)


@pytest.mark.parametrize("roll", ["police-household", "hrss-social-insurance"])
def test_typing_errors_come_at_their_stated_rates(resident_rows, residents, roll):
    rows = [r for r in resident_rows if r["roll"] == roll]
    scale = _roll(roll).error_scale
    with_id = [r for r in rows if r["id_number"]]
    swapped = sum(_compact(r["id_number"]) != r["truth"] for r in with_id)
    _within(swapped, len(with_id), people.RESIDENT_RATES["id_swap"] * scale)

    table = people.homophones()
    chinese = [r for r in rows if not r["name"].replace(" ", "").isascii()]
    possible = [r for r in chinese if any(ch in table for ch in residents[r["truth"]].name)]
    homophone = sum(r["name"].replace(" ", "") != residents[r["truth"]].name for r in possible)
    _within(homophone, len(possible), people.RESIDENT_RATES["homophone"] * scale)

    missing = sum(r["id_number"] is None for r in rows)
    _within(missing, len(rows), _roll(roll).missing.get("id_number", 0.0))
    no_city = sum(bool(r["address"]) and not r["address"].startswith("松河市") for r in rows)
    with_address = sum(bool(r["address"]) for r in rows)
    _within(no_city, with_address, people.RESIDENT_RATES["address_no_city"])


def test_homophones_share_pinyin_and_only_a_few_names_are_in_pinyin(resident_rows, residents):
    table = people.homophones()
    assert len(table) > 20

    def readings(ch: str) -> set:
        return {normalise.pinyin(ch), normalise.pinyin(ch, surname=True)}

    for ch, others in table.items():
        assert ch not in others
        assert all(readings(o) & readings(ch) for o in others), (ch, others)
    latin = [r for r in resident_rows if r["name"].replace(" ", "").isascii()]
    assert all(r["roll"] == "hrss-social-insurance" for r in latin)
    social = sum(r["roll"] == "hrss-social-insurance" for r in resident_rows)
    _within(len(latin), social, _roll("hrss-social-insurance").pinyin_names)
    # a pinyin name still has the true name's pinyin (surname read as a surname)
    for row in latin:
        true = residents[row["truth"]].name
        assert normalise.pinyin(row["name"]) == normalise.pinyin(true, surname=True)


def test_older_phones_and_addresses_are_dated_earlier(resident_rows, residents):
    stale, fresh = [], []
    for row in resident_rows:
        if row["phone"] is None:
            continue
        same = normalise.phone(row["phone"]) == residents[row["truth"]].phone
        (fresh if same else stale).append(row["observed_at"])
    assert stale and fresh
    assert sorted(stale)[len(stale) // 2] < sorted(fresh)[len(fresh) // 2]


def test_credit_code_errors_fail_their_check(enterprise_rows):
    changed = [r for r in enterprise_rows if r["uscc"] and r["uscc"].upper() != r["truth"]]
    assert changed
    assert all(not check_credit_code(r["uscc"]).valid for r in changed)
    lower = [r for r in enterprise_rows if r["uscc"] and r["uscc"] != r["uscc"].upper()]
    assert lower and all(check_credit_code(r["uscc"]).valid for r in lower if r not in changed)
    food = [r for r in enterprise_rows if r["roll"] == "market-food-licence"]
    _within(sum(r["uscc"] is None for r in food), len(food), 0.15)


def test_enterprise_name_variants_keep_their_core(enterprise_rows, enterprises, city):
    gazetteer = normalise.Gazetteer(
        (a.code, a.name_zh, a.name_en, a.level, a.parent_code) for a in city.areas
    )
    varied = [r for r in enterprise_rows if r["name"] != enterprises[r["truth"]].name]
    rates, chances = people.ENTERPRISE_RATES, []
    for row in enterprise_rows:
        scale = _roll(row["roll"]).error_scale
        has_form = enterprises[row["truth"]].name.endswith(("有限公司", "有限责任公司"))
        kept = (1 - rates["region_toggle"]) * (1 - rates["name_space"] * scale)
        kept *= 1 - rates["form_swap"] * scale * has_form
        chances.append(1 - kept)
    expected = sum(chances)
    sigma = math.sqrt(sum(p * (1 - p) for p in chances))
    assert abs(len(varied) - expected) <= 4.5 * sigma, (len(varied), expected)
    assert varied
    for row in varied:
        true = enterprises[row["truth"]].name
        assert normalise.enterprise_core(row["name"], gazetteer) == normalise.enterprise_core(
            true, gazetteer
        ), (row["name"], true)


def test_normalised_rows_find_their_truth_and_their_area(resident_rows, residents, city):
    gazetteer = normalise.Gazetteer(
        (a.code, a.name_zh, a.name_en, a.level, a.parent_code) for a in city.areas
    )
    sample = resident_rows[::37]
    moved, expected = 0, 0.0
    for row in sample:
        norm = normalise.resident(row, gazetteer)
        person = residents[row["truth"]]
        if norm["id_valid"] == "1":
            assert norm["id_number"] == row["truth"]
            assert norm["birth_date"] == person.birth_date.isoformat()
            assert norm["gender"] == person.gender
        if row["address"]:
            moved += norm["area_code"] != person.grid_code[:12]
            expected += people.RESIDENT_RATES["address_old"] * _roll(row["roll"]).error_scale
    # only the rows holding an older address point elsewhere
    assert abs(moved - expected) <= 4.5 * math.sqrt(expected) + 1, (moved, expected)


# ------------------------------------------------------------------ speed


def test_one_hundred_thousand_residents_are_made_messy_fast():
    city = DemoCity(seed=1, size=Size(100_000, 0, 0, 0), end=END)
    specs = [r for batch in city.residents() for r in batch]
    started = time.perf_counter()
    rows = _flat(people.messy_residents(specs, seed=1, as_of=END))
    seconds = time.perf_counter() - started
    print(f"\n100k residents -> {len(rows)} roll rows in {seconds:.2f} s")
    assert len(rows) > 150_000
    assert seconds < 20  # about 1.5 s alone on the 2-core machine; generous for a busy one
