"""The arithmetic of resident IDs (GB 11643) and credit codes (GB 32100 / GB 11714), and the
makers the demo generator uses. What they make must pass ``identity.checks``; the checks' own
failure cases are in test_checks.py."""

from __future__ import annotations

from datetime import date

import pytest

from civicpulse.identity.checks import check_credit_code, check_resident_id
from civicpulse.identity.identifiers import (
    make_resident_id,
    make_uscc,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
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


def test_make_resident_id_matches_the_hand_computation():
    assert make_resident_id("239901", date(1990, 1, 1), 123) == HAND_ID
    check = check_resident_id(HAND_ID, today=TODAY)
    assert check.valid and check.sex == "M" and check.division == "239901"


@pytest.mark.parametrize(("sequence", "gender"), [(0, "F"), (1, "M"), (998, "F"), (999, "M")])
def test_sequence_parity_is_the_gender(sequence, gender):
    value = make_resident_id("230103", date(2000, 2, 29), sequence)
    check = check_resident_id(value, today=TODAY)
    assert check.valid, check.reason
    assert check.sex == gender
    assert value[14:17] == f"{sequence:03d}"
    assert check.birth_date == date(2000, 2, 29)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("23990", date(1990, 1, 1), 1), ValueError),
        (("2399O1", date(1990, 1, 1), 1), ValueError),
        (("990101", date(1990, 1, 1), 1), ValueError),
        # before EARLIEST_BIRTH_YEAR: identity.checks would refuse the number
        (("239901", date(1899, 12, 31), 1), ValueError),
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


def test_check_chars_of_the_standard_credit_code():
    assert org_code_check_char(STANDARD_USCC[8:16]) == STANDARD_USCC[16] == "4"
    assert uscc_check_char(STANDARD_USCC[:17]) == "3"


def test_make_uscc_rebuilds_the_standard_example():
    assert make_uscc("9", "1", "350100", "M000100Y") == STANDARD_USCC


def test_make_uscc_makes_codes_the_checks_accept():
    code = make_uscc("9", "1", "239901", "MA1B2C3D")
    assert code[:16] == "91239901MA1B2C3D"
    check = check_credit_code(code)
    assert check.valid, check.reason
    assert (check.authority, check.entity_type, check.division) == ("9", "1", "239901")


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
