"""Identifier checks: valid numbers are built here from the standards' formulas (written apart
from the library's weight tables), and every failure has its own reason."""

from __future__ import annotations

from datetime import date

import pytest

from civicpulse.identity import checks
from civicpulse.identity.checks import (
    check_credit_code,
    check_mobile,
    check_resident_id,
    looks_like_address,
    looks_like_person_name,
)

# ------------------------------------------------------------------ test-side reference formulas


def ref_id_check(first17: str) -> str:
    """ISO 7064 MOD 11-2: weights 2^(17-i) mod 11; check = (12 - sum mod 11) mod 11, 10 = X."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


CHARSET31 = "".join(c for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in "IOZSV")


def ref_org_check(body8: str) -> str:
    """GB 11714: weights 2^(8-i) mod 11 (= 3,7,9,10,5,8,4,2); check = 11 - sum mod 11."""
    total = sum(int(c, 36) * pow(2, 8 - i, 11) for i, c in enumerate(body8))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def ref_uscc_check(first17: str) -> str:
    """GB 32100: weights 3^i mod 31; check = 31 - sum mod 31, where 31 means 0."""
    total = sum(CHARSET31.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return CHARSET31[(31 - total % 31) % 31]


def ref_id(division: str, born: str, seq: str) -> str:
    first17 = division + born + seq
    return first17 + ref_id_check(first17)


def ref_uscc(head: str, division: str, body8: str) -> str:
    first17 = head + division + body8 + ref_org_check(body8)
    return first17 + ref_uscc_check(first17)


def other_check_char(right: str, alphabet: str) -> str:
    return next(c for c in alphabet if c != right)


# ------------------------------------------------------------------ resident ID numbers


VALID_IDS = [
    ref_id("110105", "19900307", "123"),
    ref_id("440305", "20011231", "046"),
    ref_id("650102", "19000101", "001"),
    ref_id("820000", "19791015", "778"),
]
# One with check character X, found by searching sequence numbers with the reference formula.
ID_WITH_X = next(
    i for i in (ref_id("310104", "19850615", f"{s:03d}") for s in range(1000)) if i[-1] == "X"
)


@pytest.mark.parametrize("number", [*VALID_IDS, ID_WITH_X])
def test_valid_resident_ids_pass_with_their_parts(number):
    result = check_resident_id(number, today=date(2026, 1, 1))
    assert result.valid and result.reason is None and result.code is None
    assert result.value == number
    assert result.division == number[:6]
    assert result.birth_date == date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    assert result.sex == ("M" if int(number[16]) % 2 else "F")


def test_the_example_of_gb_11643_passes_with_its_parts():
    # The standard's own example (its check character X is worked out in test_identifiers.py).
    result = check_resident_id("11010519491231002X", today=date(2026, 1, 1))
    assert result.valid, result.reason
    assert (result.division, result.birth_date, result.sex) == ("110105", date(1949, 12, 31), "F")


def test_a_birth_date_of_today_is_possible():
    today = date(2026, 11, 26)
    assert check_resident_id(ref_id("239905", "20261126", "017"), today=today).valid
    assert check_resident_id(ref_id("239905", "20261127", "017"), today=today).code == "birth_date"


def test_sex_comes_from_the_seventeenth_digit():
    assert check_resident_id(ref_id("110105", "19900307", "123")).sex == "M"
    assert check_resident_id(ref_id("110105", "19900307", "124")).sex == "F"


def test_full_width_digits_x_and_spaces_are_normalised_not_repaired():
    wide = ID_WITH_X.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789X"})
    spaced = f" {ID_WITH_X[:6]} {ID_WITH_X[6:14]}\u3000{ID_WITH_X[14:-1]}x "
    for form in (wide, spaced, ID_WITH_X.lower()):
        result = check_resident_id(form)
        assert result.valid, form
        assert result.value == ID_WITH_X
    # A full-width number with one wrong digit stays wrong.
    wrong = VALID_IDS[0][:17] + other_check_char(VALID_IDS[0][17], "0123456789")
    wide_wrong = wrong.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    assert check_resident_id(wide_wrong).code == "checksum"


def test_every_single_digit_change_is_caught():
    number = VALID_IDS[0]
    for pos in range(18):
        for digit in "0123456789":
            if digit == number[pos]:
                continue
            changed = number[:pos] + digit + number[pos + 1 :]
            assert not check_resident_id(changed).valid, changed


def test_wrong_check_character_says_which_it_should_be():
    number = VALID_IDS[1]
    wrong = other_check_char(number[17], "0123456789X")
    result = check_resident_id(number[:17] + wrong)
    assert (result.valid, result.code) == (False, "checksum")
    assert result.reason == f"check character should be {number[17]}, not {wrong}"
    assert result.birth_date is None and result.division is None


def test_fifteen_digit_numbers_are_refused_not_converted():
    result = check_resident_id("110105900307123")
    assert (result.valid, result.code) == (False, "old_format")
    assert "15-digit" in result.reason and "18-digit" in result.reason
    assert result.value == "110105900307123"


@pytest.mark.parametrize(
    ("value", "code", "words"),
    [
        ("11010519900307123", "length", "18 characters, this one has 17"),
        ("1101051990030712345", "length", "this one has 19"),
        ("11010519900A071234", "characters", "character 12 is 'A'"),
        ("11010519900307123Y", "characters", "last character is 'Y'"),
        (ref_id("990105", "19900307", "123"), "province", "starts with 99, which is no province"),
        (ref_id("110105", "19900230", "123"), "birth_date", "birth date 1990-02-30 does not exist"),
        (ref_id("110105", "19901301", "123"), "birth_date", "birth date 1990-13-01 does not exist"),
        (ref_id("110105", "18991231", "123"), "birth_date", "1899-12-31 is before 1900"),
        (ref_id("110105", "20260102", "123"), "birth_date", "2026-01-02 is in the future"),
    ],
)
def test_each_failure_has_its_reason(value, code, words):
    result = check_resident_id(value, today=date(2026, 1, 1))
    assert (result.valid, result.code) == (False, code)
    assert words in result.reason


def test_non_text_is_refused():
    result = check_resident_id(110105199003071239)
    assert (result.valid, result.code) == (False, "type")
    assert "int" in result.reason


def test_known_divisions_make_the_full_code_count():
    number = ref_id("110105", "19900307", "123")
    assert check_resident_id(number, known_divisions={"110105", "110106"}).valid
    result = check_resident_id(number, known_divisions={"110106"})
    assert (result.valid, result.code) == (False, "division")
    assert result.reason == "division code 110105 is not a known area"


def test_every_province_code_and_no_other():
    provinces = [f"{p}" for p in range(11, 66)]
    expected = set(
        "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
        "61 62 63 64 65 71 81 82".split()
    )
    for prefix in [*provinces, "70", "71", "81", "82", "83", "91", "10"]:
        result = check_resident_id(ref_id(prefix + "0101", "19900307", "123"))
        assert result.valid == (prefix in expected), prefix


# ------------------------------------------------------------------ unified social credit codes


VALID_CODES = [
    ref_uscc("91", "110105", "MA01ABCD"),
    ref_uscc("92", "440305", "L1234567"),
    ref_uscc("12", "100000", "40000062"),
    ref_uscc("53", "650102", "50123456"),
    ref_uscc("N2", "320583", "MA1XYK3P"),
]


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_credit_codes_pass_with_their_parts(code):
    result = check_credit_code(code)
    assert result.valid, result.reason
    assert (result.authority, result.entity_type, result.division, result.org_code) == (
        code[0],
        code[1],
        code[2:8],
        code[8:17],
    )


def test_the_example_of_gb_32100_passes_with_its_parts():
    result = check_credit_code("91350100M000100Y43")
    assert result.valid, result.reason
    assert (result.division, result.org_code) == ("350100", "M000100Y4")


def test_credit_code_must_be_text():
    result = check_credit_code(None)
    assert (result.valid, result.code) == (False, "type")
    assert "NoneType" in result.reason


def test_credit_code_lower_case_and_full_width_are_read():
    code = VALID_CODES[0]
    wide = code.translate({ord(c): ord(c) + 0xFEE0 for c in CHARSET31})
    for form in (code.lower(), wide, f"{code[:9]} {code[9:]}"):
        result = check_credit_code(form)
        assert result.valid and result.value == code, form


def test_every_single_character_change_of_a_credit_code_is_caught():
    code = VALID_CODES[1]
    for pos in range(18):
        for ch in CHARSET31:
            if ch != code[pos]:
                assert not check_credit_code(code[:pos] + ch + code[pos + 1 :]).valid


def _with(code: str, pos: int, ch: str) -> str:
    """Change one character and recompute both check characters, so only that part is wrong."""
    first = code[:pos] + ch + code[pos + 1 : 16]
    body8 = first[8:16]
    first17 = first + ref_org_check(body8)
    return first17 + ref_uscc_check(first17)


@pytest.mark.parametrize(
    ("value", "code", "words"),
    [
        (VALID_CODES[0][:17], "length", "18 characters, this one has 17"),
        (VALID_CODES[0][:4] + "O" + VALID_CODES[0][5:], "characters", "do not use I, O, Z, S or V"),
        (VALID_CODES[0][:4] + "#" + VALID_CODES[0][5:], "characters", "character 5 is '#'"),
        (_with(VALID_CODES[0], 0, "B"), "authority", "'B' is not a registration authority code"),
        (_with(VALID_CODES[0], 1, "4"), "entity_type", "'4' is not an institution type of "),
        (_with(VALID_CODES[0], 3, "A"), "division", "division code 1A0105 must be 6 digits"),
        (_with(VALID_CODES[0], 2, "9"), "province", "starts with 91, which is no province"),
    ],
)
def test_each_credit_code_failure_has_its_reason(value, code, words):
    result = check_credit_code(value)
    assert (result.valid, result.code) == (False, code)
    assert words in result.reason


def test_credit_code_check_characters():
    code = VALID_CODES[0]
    wrong_org = other_check_char(code[16], "0123456789X")
    first17 = code[:16] + wrong_org
    result = check_credit_code(first17 + ref_uscc_check(first17))
    assert result.code == "org_code"
    assert f"should be {code[16]}, not {wrong_org}" in result.reason

    wrong = other_check_char(code[17], CHARSET31)
    result = check_credit_code(code[:17] + wrong)
    assert result.code == "checksum"
    assert result.reason == f"check character should be {code[17]}, not {wrong}"


def test_credit_code_known_divisions_but_national_bodies_always_pass():
    assert check_credit_code(VALID_CODES[0], known_divisions={"110105"}).valid
    assert check_credit_code(VALID_CODES[0], known_divisions={"110106"}).code == "division"
    assert check_credit_code(VALID_CODES[2], known_divisions={"110106"}).valid  # 100000


# ------------------------------------------------------------------ mobiles, heuristics, helpers


@pytest.mark.parametrize(
    "form",
    ["13812345678", "+86 138 1234 5678", "0086-138-1234-5678", "138-1234-5678", "(138)12345678",
     "１３８１２３４５６７８", 13812345678],
)  # fmt: skip
def test_mobile_forms(form):
    result = check_mobile(form)
    assert result.valid and result.value == "13812345678"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("1381234567", "length"),
        ("138123456789", "length"),
        ("12812345678", "prefix"),
        ("23812345678", "prefix"),
        ("010-12345678", "prefix"),  # a Beijing landline has 11 digits too
        ("010-1234567", "length"),
        ("138a2345678", "characters"),
        ("", "characters"),
        (None, "type"),
    ],
)
def test_mobile_failures(value, code):
    result = check_mobile(value)
    assert (result.valid, result.code) == (False, code)
    assert result.reason


@pytest.mark.parametrize("name", ["张伟", "王秀英", "欧阳娜娜", "司马光", "李 娜", "诸葛亮"])
def test_person_name_heuristic_accepts(name):
    assert looks_like_person_name(name)


@pytest.mark.parametrize(
    "text", ["北京", "噪音扰民", "朝阳区政府", "欧阳", "张", "张三丰李四", "John Smith", "12"]
)
def test_person_name_heuristic_rejects(text):
    assert not looks_like_person_name(text)


@pytest.mark.parametrize(
    "text",
    ["北京市朝阳区建国路88号", "浦东新区张杨路500号", "幸福小区3栋2单元501室",
     "1520 EAST NEW YORK AVENUE", "35 Fenwood Rd  Roxbury  MA  02115", "1234 W MADISON ST"],
)  # fmt: skip
def test_address_heuristic_accepts(text):
    assert looks_like_address(text)


@pytest.mark.parametrize(
    "text",
    ["Noise: Construction Before/After Hours (NM1)", "EAST NEW YORK AVENUE", "北京", "噪音扰民",
     "The Department of Sanitation investigated this complaint and found no violation on 5th Ave",
     "您好，我家住在朝阳区建国路附近，最近夜里施工噪音很大，严重影响休息，希望有关部门尽快处理，"
     "谢谢！希望有关部门尽快处理。"],
)  # fmt: skip
def test_address_heuristic_rejects(text):
    assert not looks_like_address(text)


def test_normalisation_helpers():
    assert checks.to_halfwidth("ＡＢＣ１２３\u3000（）") == "ABC123 ()"
    assert checks.to_halfwidth("²①") == "²①"  # not digits: never turned into ones
    assert checks.normalise("  张  伟\u3000 ") == "张 伟"
    assert checks.name_key("阿依·买买提") == checks.name_key("阿依 买买提") == "阿依买买提"
    assert checks.name_key("ＪＯＨＮ Smith") == checks.name_key("john smith")


def test_masking_keeps_only_the_edges():
    assert checks.mask("resident_id", "110105199003071239") == "110105********1239"
    assert checks.mask("mobile", "13812345678") == "138****5678"
    assert checks.mask("name", "张伟") == "张**"
    assert checks.mask("address", "杭州市西湖区文三路12号") == "杭州市西湖区****"
    assert checks.mask("address", "1520 EAST NEW YORK AVENUE") == "**** E****"
    assert checks.mask("credit_code", VALID_CODES[0]).count("*") == 8
