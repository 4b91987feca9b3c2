"""The arithmetic of the two national identifiers the city keys people and market subjects by.

* The 18-character citizen identity number of GB 11643-1999: a 6-digit administrative division
  code (GB/T 2260), the date of birth as YYYYMMDD, a 3-digit sequence whose parity gives the
  gender (odd = male), and an ISO 7064 MOD 11-2 check character (``0``-``9`` or ``X``).
* The 18-character unified social credit code of GB 32100-2015: registration authority, entity
  type, a 6-digit division code, the 9-character organisation code of GB 11714 (8 body
  characters and their own check character) and a final MOD 31 check character.

This module holds what the standards define (check characters, province prefixes, the
credit-code authority table) and builds valid values from their parts for the demo generator
and tests. Checking a value someone else supplied, with a reason for each failure, is
``identity.checks``, which takes its arithmetic from here. Plain Python, no Django.
"""

from __future__ import annotations

from datetime import date

__all__ = [
    "EARLIEST_BIRTH_YEAR",
    "PROVINCE_CODES",
    "USCC_AUTHORITIES",
    "USCC_CHARSET",
    "make_resident_id",
    "make_uscc",
    "org_code_check_char",
    "resident_id_check_char",
    "uscc_check_char",
]

_DIGITS = frozenset("0123456789")


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit() would also accept full-width and other Unicode digits.
    return bool(text) and all(ch in _DIGITS for ch in text)


# --------------------------------------------------------------------------------------------
# GB 11643: citizen identity number
# --------------------------------------------------------------------------------------------

# Weight of position i is 2**(17 - i) mod 11 (ISO 7064 MOD 11-2).
_RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Check character indexed by (weighted sum mod 11).
_RESIDENT_CHECK = "10X98765432"

# Province-level codes of GB/T 2260: the 31 mainland provinces, autonomous regions and
# municipalities, and 71 Taiwan, 81 Hong Kong, 82 Macao.
PROVINCE_CODES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)
# Births before this are taken for typing errors, not for people holding an 18-digit number.
EARLIEST_BIRTH_YEAR = 1900


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID number."""
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise ValueError(f"expected 17 ASCII digits, got {first17!r}")
    total = sum(int(ch) * w for ch, w in zip(first17, _RESIDENT_WEIGHTS, strict=True))
    return _RESIDENT_CHECK[total % 11]


def make_resident_id(division_code: str, birth: date, sequence: int) -> str:
    """Build a valid 18-character ID number. ``sequence`` 0..999; an odd one means male."""
    if len(division_code) != 6 or not _is_ascii_digits(division_code):
        raise ValueError(f"division code must be 6 digits, got {division_code!r}")
    if division_code[:2] not in PROVINCE_CODES:
        raise ValueError(f"division code {division_code} names no province")
    if not isinstance(birth, date):
        raise TypeError(f"birth must be a date, got {type(birth).__name__}")
    if birth.year < EARLIEST_BIRTH_YEAR:
        raise ValueError(f"birth year {birth.year} is before {EARLIEST_BIRTH_YEAR}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be an integer 0..999, got {sequence!r}")
    first17 = f"{division_code}{birth:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_char(first17)


# --------------------------------------------------------------------------------------------
# GB 11714 organisation code and GB 32100 unified social credit code
# --------------------------------------------------------------------------------------------

# The 31 characters a credit code may use: digits and capitals without I, O, Z, S, V.
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_CHARSET)}
# Weight of position i is 3**i mod 31.
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# Registration authorities and the entity types each may register (GB 32100-2015, table 1, with
# the authorities added since: A for the military, N for agriculture).
USCC_AUTHORITIES: dict[str, dict[str, str]] = {
    "1": {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体", "9": "其他"},
    "2": {"1": "外国常驻新闻机构", "9": "其他"},
    "3": {
        "1": "律师执业机构",
        "2": "公证处",
        "3": "基层法律服务所",
        "4": "司法鉴定机构",
        "5": "仲裁委员会",
        "9": "其他",
    },
    "4": {"1": "外国在华文化中心", "9": "其他"},
    "5": {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "9": "其他"},
    "6": {"1": "外国旅游部门常驻代表机构", "2": "港澳台地区旅游部门常驻内地代表机构", "9": "其他"},
    "7": {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"},
    "8": {"1": "基层工会", "9": "其他"},
    "9": {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"},
    "A": {"1": "军队事业单位", "9": "其他"},
    "N": {"1": "组级集体经济组织", "2": "村级集体经济组织", "3": "乡镇级集体经济组织", "9": "其他"},
    "Y": {"1": "其他"},
}


def _org_value(ch: str) -> int:
    if ch in _DIGITS:
        return int(ch)
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    raise ValueError(f"organisation code characters are 0-9 and A-Z, got {ch!r}")


def org_code_check_char(body8: str) -> str:
    """The GB 11714 check character for the 8 body characters of an organisation code."""
    if len(body8) != 8:
        raise ValueError(f"expected 8 body characters, got {body8!r}")
    total = sum(_org_value(ch) * w for ch, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a credit code."""
    if len(first17) != 17:
        raise ValueError(f"expected 17 characters, got {first17!r}")
    try:
        total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not a credit-code character") from None
    return USCC_CHARSET[(31 - total % 31) % 31]


def make_uscc(authority: str, entity_type: str, division_code: str, org_body8: str) -> str:
    """Build a valid credit code from its parts; the two check characters are computed."""
    types = USCC_AUTHORITIES.get(authority)
    if types is None:
        raise ValueError(f"unknown registration authority {authority!r}")
    if entity_type not in types:
        raise ValueError(f"entity type {entity_type!r} is not defined for authority {authority}")
    if len(division_code) != 6 or not _is_ascii_digits(division_code):
        raise ValueError(f"division code must be 6 digits, got {division_code!r}")
    if len(org_body8) != 8 or any(ch not in _USCC_VALUE for ch in org_body8):
        raise ValueError(
            f"organisation code body must be 8 characters from {USCC_CHARSET}, got {org_body8!r}"
        )
    first17 = authority + entity_type + division_code + org_body8 + org_code_check_char(org_body8)
    return first17 + uscc_check_char(first17)
