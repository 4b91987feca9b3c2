"""Resident ID (GB 11643) and unified social credit code (GB 32100 / GB 11714) checks."""

from __future__ import annotations

from datetime import date

import pytest

from civicpulse.identity.identifiers import (
    USCC_CHARSET,
    IdCheck,
    make_resident_id,
    make_uscc,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_uscc,
)

TODAY = date(2026, 11, 26)

# The example of the GB 11643 standard. First 17 digits 1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2 times
# the weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2:
#   7 + 9 + 0 + 5 + 0 + 20 + 2 + 9 + 24 + 27 + 7 + 18 + 30 + 5 + 0 + 0 + 4 = 167
#   167 mod 11 = 2, and "10X98765432"[2] = "X".
STANDARD_ID = "11010519491231002X"

# Built by hand: 239901 + 19900101 + 123:
#   2*7 + 3*9 + 9*10 + 9*5 + 0*8 + 1*4 + 1*2 + 9*1 + 9*6 + 0*3 + 0*7 + 1*9 + 0*10 + 1*5
#   + 1*8 + 2*4 + 3*2 = 281; 281 mod 11 = 6; "10X98765432"[6] = "6".
HAND_ID = "239901199001011236"

# The example of GB 32100. Its organisation code M000100Y4 (GB 11714 values: M = 22, Y = 34):
#   22*3 + 0*7 + 0*9 + 0*10 + 1*5 + 0*8 + 0*4 + 34*2 = 139; 139 mod 11 = 7; 11 - 7 = 4.
# The final check (credit-code values: M = 21, Y = 30; weights 1 3 9 27 19 26 16 17 20 29 25
# 13 8 24 10 30 28):
#   9 + 3 + 27 + 135 + 0 + 26 + 0 + 0 + 420 + 0 + 0 + 0 + 8 + 0 + 0 + 900 + 112 = 1640
#   1640 mod 31 = 28; 31 - 28 = 3; charset[3] = "3".
STANDARD_USCC = "91350100M000100Y43"


# --------------------------------------------------------------------------------------------
# GB 11643
# --------------------------------------------------------------------------------------------


def test_check_char_of_the_standard_example():
    assert resident_id_check_char(STANDARD_ID[:17]) == "X"
    assert resident_id_check_char(HAND_ID[:17]) == "6"


def test_standard_example_validates_and_parses():
    check = validate_resident_id(STANDARD_ID, today=TODAY)
    assert check == IdCheck(
        ok=True, birth_date=date(1949, 12, 31), gender="F", division_code="110105"
    )
    assert check.reason is None


def test_lower_case_x_is_read_as_x():
    check = validate_resident_id(STANDARD_ID.lower(), today=TODAY)
    assert check.ok
    assert check.birth_date == date(1949, 12, 31)


def test_make_resident_id_matches_the_hand_computation():
    assert make_resident_id("239901", date(1990, 1, 1), 123) == HAND_ID
    check = validate_resident_id(HAND_ID, today=TODAY)
    assert check.ok and check.gender == "M" and check.division_code == "239901"


@pytest.mark.parametrize(("sequence", "gender"), [(0, "F"), (1, "M"), (998, "F"), (999, "M")])
def test_sequence_parity_is_the_gender(sequence, gender):
    value = make_resident_id("230103", date(2000, 2, 29), sequence)
    check = validate_resident_id(value, today=TODAY)
    assert check.ok, check.reason
    assert check.gender == gender
    assert value[14:17] == f"{sequence:03d}"
    assert check.birth_date == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("11010519491231002", "wrong length: 17 characters, expected 18"),
        ("11010519491231002X1", "wrong length: 19 characters, expected 18"),
        ("", "wrong length: 0 characters, expected 18"),
        ("1101051949123100AX", "bad characters: position 17 is 'A'"),
        ("11010519491231002Y", "bad characters: the last character is 'Y'"),
        # full-width digits are digits to str.isdigit(), not to the standard
        ("１10105194912310021", "bad characters: position 1"),
        ("99010519491231002X", "division code 990105 names no province"),
        ("110105194902300021", "impossible birth date 19490230: no such day"),
        ("110105194913010021", "impossible birth date 19491301: no such day"),
        ("110105187912310021", "impossible birth date 18791231: before 1880"),
        ("110105202611270021", "impossible birth date 20261127: after today (2026-11-26)"),
        ("110105194912310021", "bad checksum: check character is 1, expected X"),
        ("110105194912310020", "check character is 0, expected X"),
    ],
)
def test_every_failure_has_its_reason(value, reason):
    check = validate_resident_id(value, today=TODAY)
    assert not check.ok
    assert reason in check.reason
    assert check.birth_date is None and check.gender is None and check.division_code is None


def test_a_birth_date_of_today_is_possible():
    value = make_resident_id("239905", TODAY, 17)
    assert validate_resident_id(value, today=TODAY).ok


def test_non_text_is_refused_not_coerced():
    check = validate_resident_id(11010519491231002, today=TODAY)
    assert not check.ok and "must be text" in check.reason


def test_validation_never_fixes_a_value():
    # surrounding spaces are a wrong length, not something to strip silently
    assert not validate_resident_id(f" {STANDARD_ID}", today=TODAY).ok
    assert not validate_resident_id(f"{STANDARD_ID}\n", today=TODAY).ok


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("23990", date(1990, 1, 1), 1), ValueError),
        (("2399O1", date(1990, 1, 1), 1), ValueError),
        (("990101", date(1990, 1, 1), 1), ValueError),
        (("239901", date(1990, 1, 1), 1000), ValueError),
        (("239901", date(1990, 1, 1), -1), ValueError),
        (("239901", date(1990, 1, 1), True), ValueError),
        (("239901", "19900101", 1), TypeError),
    ],
)
def test_make_resident_id_refuses_bad_parts(args, error):
    with pytest.raises(error):
        make_resident_id(*args)


# --------------------------------------------------------------------------------------------
# GB 11714 and GB 32100
# --------------------------------------------------------------------------------------------


def test_org_code_check_char():
    # The GB 11714 example D2143569-X: D = 13;
    #   13*3 + 2*7 + 1*9 + 4*10 + 3*5 + 5*8 + 6*4 + 9*2 = 199; 199 mod 11 = 1; 11 - 1 = 10 -> X
    assert org_code_check_char("D2143569") == "X"
    assert org_code_check_char("M000100Y") == "4"
    # sum 0 -> 11 - 0 = 11 -> "0"
    assert org_code_check_char("00000000") == "0"
    with pytest.raises(ValueError):
        org_code_check_char("D214356")


def test_standard_credit_code_validates():
    assert uscc_check_char(STANDARD_USCC[:17]) == "3"
    check = validate_uscc(STANDARD_USCC)
    assert check.ok, check.reason
    assert check.division_code == "350100"
    assert check.org_code == "M000100Y4"


def test_make_uscc_validates_and_any_single_change_fails():
    code = make_uscc("9", "1", "239901", "MA1B2C3D")
    assert code[:16] == "91239901MA1B2C3D"
    assert validate_uscc(code).ok
    # MOD 31 with weights prime to 31 catches every single substitution
    for position in range(18):
        for ch in USCC_CHARSET:
            if ch == code[position]:
                continue
            changed = code[:position] + ch + code[position + 1 :]
            assert not validate_uscc(changed).ok, changed


def test_credit_code_with_a_changed_char_names_the_failing_check():
    code = make_uscc("9", "2", "239903", "MA0K5T7Q")
    last = "0" if code[17] != "0" else "1"
    assert validate_uscc(code[:17] + last).reason == (
        f"bad checksum: check character is {last}, expected {code[17]}"
    )


def test_org_code_check_is_checked_on_its_own():
    body = "MA1B2C3D"
    good = org_code_check_char(body)
    wrong = "0" if good != "0" else "1"
    first17 = "91" + "239901" + body + wrong
    value = first17 + uscc_check_char(first17)  # final check right, organisation code wrong
    check = validate_uscc(value)
    assert not check.ok
    assert check.reason == (
        f"bad organisation code {body}{wrong}: check character is {wrong}, expected {good}"
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91350100M000100Y4", "wrong length: 17 characters, expected 18"),
        ("91350100M000100Y433", "wrong length: 19 characters, expected 18"),
        ("91350100m000100Y43", "position 9 is 'm'"),
        ("91350100m000100Y43", "(letters must be upper case)"),
        ("91350100I000100Y43", "position 9 is 'I'"),
        ("91350100O000100Y43", "position 9 is 'O'"),
        ("B1350100M000100Y43", "unknown registration authority code 'B'"),
        ("94350100M000100Y43", "entity type '4' is not defined for authority '9'"),
        ("9135A100M000100Y43", "division code 35A100 must be 6 digits"),
        ("91350100M000100Y53", "bad organisation code M000100Y5"),
        ("91350100M000100Y44", "bad checksum: check character is 4, expected 3"),
    ],
)
def test_every_credit_code_failure_has_its_reason(value, reason):
    check = validate_uscc(value)
    assert not check.ok
    assert reason in check.reason


def test_credit_code_must_be_text():
    assert "must be text" in validate_uscc(None).reason


@pytest.mark.parametrize(
    "args",
    [
        ("B", "1", "239901", "MA1B2C3D"),  # no such authority
        ("9", "9", "239901", "MA1B2C3D"),  # authority 9 has no type 9
        ("9", "1", "23990", "MA1B2C3D"),
        ("9", "1", "239901", "MA1B2C3"),
        ("9", "1", "239901", "MA1B2C3I"),  # I is not a credit-code character
    ],
)
def test_make_uscc_refuses_bad_parts(args):
    with pytest.raises(ValueError):
        make_uscc(*args)
