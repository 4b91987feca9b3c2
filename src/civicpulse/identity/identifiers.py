"""Checks for the two national identifiers the city keys people and market subjects by.

* The 18-character citizen identity number of GB 11643-1999: a 6-digit administrative division
  code (GB/T 2260), the date of birth as YYYYMMDD, a 3-digit sequence whose parity gives the
  gender (odd = male), and an ISO 7064 MOD 11-2 check character (``0``-``9`` or ``X``).
* The 18-character unified social credit code of GB 32100-2015: registration authority, entity
  type, a 6-digit division code, the 9-character organisation code of GB 11714 (8 body
  characters and their own check character) and a final MOD 31 check character.

Validation never "fixes" a value. A failing value gets a reason a clerk can act on; the only
leniency is the one the ID-card standard's users expect: a lower-case ``x`` is read as ``X``.
This module is plain Python (no Django), so importers and the demo generator can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

__all__ = [
    "IdCheck",
    "USCC_CHARSET",
    "make_resident_id",
    "make_uscc",
    "org_code_check_char",
    "resident_id_check_char",
    "uscc_check_char",
    "validate_resident_id",
    "validate_uscc",
]

_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class IdCheck:
    """The outcome of one identifier check.

    ``reason`` is ``None`` exactly when ``ok`` is true. The parsed parts are filled only for a
    valid value: ``birth_date`` and ``gender`` ("M"/"F") for a resident ID, ``org_code`` (the
    9-character GB 11714 code) for a credit code, ``division_code`` for both.
    """

    ok: bool
    reason: str | None = None
    birth_date: date | None = None
    gender: str | None = None
    division_code: str | None = None
    org_code: str | None = None


def _fail(reason: str) -> IdCheck:
    return IdCheck(ok=False, reason=reason)


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

# Province-level prefixes of GB/T 2260 (71 Taiwan, 81 Hong Kong, 82 Macao included).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)
_EARLIEST_BIRTH_YEAR = 1880


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
    if division_code[:2] not in _PROVINCES:
        raise ValueError(f"division code {division_code} names no province")
    if not isinstance(birth, date):
        raise TypeError(f"birth must be a date, got {type(birth).__name__}")
    if birth.year < _EARLIEST_BIRTH_YEAR:
        raise ValueError(f"birth year {birth.year} is before {_EARLIEST_BIRTH_YEAR}")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be an integer 0..999, got {sequence!r}")
    first17 = f"{division_code}{birth:%Y%m%d}{sequence:03d}"
    return first17 + resident_id_check_char(first17)


def validate_resident_id(value: object, *, today: date | None = None) -> IdCheck:
    """Check an 18-character ID number; ``today`` (default: the real date) bounds the birth date.

    Reasons, in the order checked: not text, wrong length, bad characters, unknown province,
    impossible birth date (no such day, before 1880, or after ``today``), wrong check character.
    """
    if not isinstance(value, str):
        return _fail(f"resident ID must be text, got {type(value).__name__}")
    if len(value) != 18:
        return _fail(f"wrong length: {len(value)} characters, expected 18")
    body, check = value[:17], value[17]
    if not _is_ascii_digits(body):
        bad = next(i for i, ch in enumerate(body) if ch not in _DIGITS)
        return _fail(
            f"bad characters: position {bad + 1} is {body[bad]!r}; "
            "the first 17 characters must be digits 0-9"
        )
    if check not in _DIGITS and check not in "Xx":
        return _fail(f"bad characters: the last character is {check!r}, expected 0-9 or X")
    if body[:2] not in _PROVINCES:
        return _fail(f"division code {body[:6]} names no province (prefix {body[:2]})")
    raw = body[6:14]
    try:
        born = date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return _fail(f"impossible birth date {raw}: no such day")
    if born.year < _EARLIEST_BIRTH_YEAR:
        return _fail(f"impossible birth date {raw}: before {_EARLIEST_BIRTH_YEAR}")
    today = today or date.today()
    if born > today:
        return _fail(f"impossible birth date {raw}: after today ({today.isoformat()})")
    expected = resident_id_check_char(body)
    if check.upper() != expected:
        return _fail(f"bad checksum: check character is {check}, expected {expected}")
    return IdCheck(
        ok=True,
        birth_date=born,
        gender="M" if int(body[16]) % 2 else "F",
        division_code=body[:6],
    )


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


def validate_uscc(value: object) -> IdCheck:
    """Check an 18-character unified social credit code.

    Reasons, in the order checked: not text, wrong length, bad characters (outside the 31-symbol
    set; lower case is not accepted), unknown registration authority or entity type, division
    code not 6 digits, wrong organisation-code check character, wrong final check character.
    """
    if not isinstance(value, str):
        return _fail(f"credit code must be text, got {type(value).__name__}")
    if len(value) != 18:
        return _fail(f"wrong length: {len(value)} characters, expected 18")
    for i, ch in enumerate(value):
        if ch not in _USCC_VALUE:
            hint = " (letters must be upper case)" if ch.upper() in _USCC_VALUE else ""
            return _fail(
                f"bad characters: position {i + 1} is {ch!r}, not one of {USCC_CHARSET}{hint}"
            )
    authority, entity_type = value[0], value[1]
    types = USCC_AUTHORITIES.get(authority)
    if types is None:
        return _fail(f"unknown registration authority code {authority!r}")
    if entity_type not in types:
        return _fail(f"entity type {entity_type!r} is not defined for authority {authority!r}")
    division = value[2:8]
    if not _is_ascii_digits(division):
        return _fail(f"division code {division} must be 6 digits")
    org_code = value[8:17]
    org_expected = org_code_check_char(org_code[:8])
    if org_code[8] != org_expected:
        return _fail(
            f"bad organisation code {org_code}: check character is {org_code[8]}, "
            f"expected {org_expected}"
        )
    expected = uscc_check_char(value[:17])
    if value[17] != expected:
        return _fail(f"bad checksum: check character is {value[17]}, expected {expected}")
    return IdCheck(ok=True, division_code=division, org_code=org_code)
