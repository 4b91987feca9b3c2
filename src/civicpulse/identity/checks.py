"""Identifier checks for what clerks type and departments export, with a reason for each failure.

``identity.identifiers`` holds the arithmetic of the two national identifiers (check characters,
the credit-code authority table) and builds valid ones for the demo. This module is what readers
of *other people's data* call: it normalises the forms a value arrives in (full-width digits, a
full-width or lower-case ``x``, spaces), then checks it and says why it fails in words a clerk
can act on, with a short ``code`` that a scanner can count without repeating the value.

* :func:`check_resident_id` - 18-digit citizen identity numbers (GB 11643-1999).
* :func:`check_credit_code` - unified social credit codes (GB 32100-2015).
* :func:`check_mobile` - mainland mobile numbers.
* :func:`looks_like_person_name`, :func:`looks_like_address` - *heuristics* for spotting
  columns of names and addresses; they say "probably", never "valid".

Normalisation never repairs: a wrong digit stays wrong, a 15-digit first-generation ID number is
refused (converting it would invent a century and a check character), and a letter that a credit
code cannot contain is reported, not guessed. Plain Python, no Django: the catalog's classifier,
the cases app and entity resolution all use it.

Pinyin keys for comparing names are left to entity resolution (issue 6): ``pypinyin`` is not a
dependency of the project yet. :func:`name_key` folds width, spaces and the separator dots of
transliterated names, which is what comparison needs before any pinyin.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from civicpulse.identity.identifiers import (
    EARLIEST_BIRTH_YEAR,
    PROVINCE_CODES,
    USCC_AUTHORITIES,
    USCC_CHARSET,
    org_code_check_char,
    resident_id_check_char,
    uscc_check_char,
)

__all__ = [
    "PROVINCE_CODES",
    "CheckResult",
    "check_credit_code",
    "check_mobile",
    "check_resident_id",
    "looks_like_address",
    "looks_like_person_name",
    "mask",
    "name_key",
    "normalise",
    "to_halfwidth",
]

# Organisations registered at national level carry the country's code in their credit code.
NATIONAL_DIVISION = "100000"
_DIGITS = frozenset("0123456789")
_USCC_SET = frozenset(USCC_CHARSET)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check.

    ``value`` is the normalised text that was checked. ``reason`` (words) and ``code`` (one of
    ``type``, ``old_format``, ``length``, ``characters``, ``province``, ``division``,
    ``birth_date``, ``authority``, ``entity_type``, ``org_code``, ``checksum``, ``prefix``) are
    ``None`` exactly when ``valid``. Parsed parts are filled only for a valid value:
    ``division`` for both identifiers, ``birth_date`` and ``sex`` ("M"/"F") for an ID number,
    ``authority``, ``entity_type`` and ``org_code`` for a credit code.
    """

    valid: bool
    value: str
    reason: str | None = None
    code: str | None = None
    division: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    authority: str | None = None
    entity_type: str | None = None
    org_code: str | None = None

    def __bool__(self) -> bool:
        return self.valid


def _fail(value: str, code: str, reason: str) -> CheckResult:
    return CheckResult(valid=False, value=value, reason=reason, code=code)


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

# Full-width ASCII forms (U+FF01..U+FF5E) sit 0xFEE0 above their ASCII twins; U+3000 is the
# ideographic space. Only these are folded: NFKC would also turn "²" or "①" into digits, which
# would be repairing a value, not reading it.
_HALFWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_SPACES = re.compile(r"\s+")


def to_halfwidth(text: str) -> str:
    """Full-width letters, digits and punctuation (and the ideographic space) as ASCII."""
    return text.translate(_HALFWIDTH)


def normalise(text: str) -> str:
    """Half width, runs of white space as one space, trimmed."""
    return _SPACES.sub(" ", to_halfwidth(text)).strip()


def _compact(text: str) -> str:
    return _SPACES.sub("", to_halfwidth(text))


def name_key(name: str) -> str:
    """A key for comparing names: half width, case-folded, without spaces or the middle dots
    that join the parts of transliterated names (``阿依·买买提`` = ``阿依买买提``)."""
    return re.sub(r"[\s·•・.\-]", "", to_halfwidth(name)).casefold()


def mask(kind: str, value: str) -> str:
    """A value shown only in masked form: ``110105********1234``, ``138****5678``, ``张**``,
    ``杭州市西湖区****``, ``*** EA****``."""
    if kind == "resident_id" and len(value) == 18:
        return f"{value[:6]}{'*' * 8}{value[-4:]}"
    if kind == "credit_code" and len(value) == 18:
        return f"{value[:8]}{'*' * 8}{value[-2:]}"
    if kind == "mobile" and len(value) >= 11:
        return f"{value[:3]}****{value[-4:]}"
    if kind == "mobile":  # a landline or an extension: only its last four digits
        return "****" + value[-4:] if len(value) > 4 else "****"
    if kind == "address":  # the area may show, never a house or room number
        return re.sub(r"\d", "*", value[:6]) + "****"
    return value[:1] + "*" * max(len(value) - 1, 2)


# --------------------------------------------------------------------------------------------
# GB 11643: citizen identity number
# --------------------------------------------------------------------------------------------


def check_resident_id(
    value: object, *, known_divisions: Collection[str] | None = None, today: date | None = None
) -> CheckResult:
    """Check an 18-digit citizen identity number.

    ``known_divisions`` (6-digit codes, e.g. the city's areas from the store) makes the full
    division code count; without it only its province part is checked. ``today`` (default: the
    real date) bounds the birth date.
    """
    if not isinstance(value, str):
        return _fail("", "type", f"an ID number must be text, not {type(value).__name__}")
    text = _compact(value)
    if len(text) == 18 and text[17] == "x":
        text = text[:17] + "X"
    if len(text) == 15 and set(text) <= _DIGITS:
        return _fail(
            text,
            "old_format",
            "15-digit (first-generation) ID numbers are not accepted: ask for the 18-digit number",
        )
    if len(text) != 18:
        return _fail(text, "length", f"an ID number has 18 characters, this one has {len(text)}")
    for i, ch in enumerate(text[:17]):
        if ch not in _DIGITS:
            return _fail(
                text, "characters", f"character {i + 1} is {ch!r}: the first 17 must be digits"
            )
    if text[17] not in _DIGITS and text[17] != "X":
        return _fail(
            text, "characters", f"the last character is {text[17]!r}: it must be a digit or X"
        )
    division = text[:6]
    if division[:2] not in PROVINCE_CODES:
        return _fail(
            text,
            "province",
            f"division code {division} starts with {division[:2]}, which is no province",
        )
    if known_divisions is not None and division not in known_divisions:
        return _fail(text, "division", f"division code {division} is not a known area")
    raw = text[6:14]
    shown = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    try:
        born = date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        return _fail(text, "birth_date", f"birth date {shown} does not exist")
    if born.year < EARLIEST_BIRTH_YEAR:
        return _fail(text, "birth_date", f"birth date {shown} is before {EARLIEST_BIRTH_YEAR}")
    today = today or date.today()
    if born > today:
        return _fail(text, "birth_date", f"birth date {shown} is in the future")
    expected = resident_id_check_char(text[:17])
    if text[17] != expected:
        return _fail(text, "checksum", f"check character should be {expected}, not {text[17]}")
    return CheckResult(
        valid=True,
        value=text,
        division=division,
        birth_date=born,
        sex="M" if int(text[16]) % 2 else "F",
    )


# --------------------------------------------------------------------------------------------
# GB 32100: unified social credit code
# --------------------------------------------------------------------------------------------


def check_credit_code(
    value: object, *, known_divisions: Collection[str] | None = None
) -> CheckResult:
    """Check an 18-character unified social credit code.

    Lower-case letters are read as capitals. The division code (characters 3-8) must name a
    province, or be ``100000`` for bodies registered nationally; with ``known_divisions`` the
    full code must be one of them (``100000`` is always accepted).
    """
    if not isinstance(value, str):
        return _fail("", "type", f"a credit code must be text, not {type(value).__name__}")
    text = _compact(value).upper()
    if len(text) != 18:
        return _fail(text, "length", f"a credit code has 18 characters, this one has {len(text)}")
    for i, ch in enumerate(text):
        if ch not in _USCC_SET:
            why = (
                "credit codes do not use I, O, Z, S or V"
                if ch in "IOZSV"
                else "credit codes use only digits and capital letters"
            )
            return _fail(text, "characters", f"character {i + 1} is {ch!r}: {why}")
    authority, entity_type = text[0], text[1]
    types = USCC_AUTHORITIES.get(authority)
    if types is None:
        return _fail(text, "authority", f"{authority!r} is not a registration authority code")
    if entity_type not in types:
        return _fail(
            text,
            "entity_type",
            f"{entity_type!r} is not an institution type of registration authority {authority}",
        )
    division = text[2:8]
    if not set(division) <= _DIGITS:
        return _fail(text, "division", f"division code {division} must be 6 digits")
    if division != NATIONAL_DIVISION:
        if division[:2] not in PROVINCE_CODES:
            return _fail(
                text,
                "province",
                f"division code {division} starts with {division[:2]}, which is no province",
            )
        if known_divisions is not None and division not in known_divisions:
            return _fail(text, "division", f"division code {division} is not a known area")
    org_code = text[8:17]
    org_expected = org_code_check_char(org_code[:8])
    if org_code[8] != org_expected:
        return _fail(
            text,
            "org_code",
            f"organisation code {org_code[:8]}-{org_code[8]}: its check character should be "
            f"{org_expected}, not {org_code[8]}",
        )
    expected = uscc_check_char(text[:17])
    if text[17] != expected:
        return _fail(text, "checksum", f"check character should be {expected}, not {text[17]}")
    return CheckResult(
        valid=True,
        value=text,
        division=division,
        authority=authority,
        entity_type=entity_type,
        org_code=org_code,
    )


# --------------------------------------------------------------------------------------------
# Mobile numbers
# --------------------------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-()]")


def check_mobile(value: object) -> CheckResult:
    """Check a mainland mobile number: 11 digits starting 13-19, optionally after +86 or 0086,
    with spaces, dashes or brackets anywhere. ``value`` of a valid one is the bare 11 digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return _fail("", "type", f"a mobile number must be text, not {type(value).__name__}")
    text = _PHONE_SEPARATORS.sub("", to_halfwidth(value))
    for prefix in ("+86", "0086"):
        if text.startswith(prefix) and len(text) == len(prefix) + 11:
            text = text[len(prefix) :]
            break
    if not text or not set(text) <= _DIGITS:
        return _fail(text, "characters", "a mobile number has only digits (after +86 or 0086)")
    if len(text) != 11:
        return _fail(text, "length", f"a mobile number has 11 digits, this one has {len(text)}")
    if text[0] != "1" or text[1] not in "3456789":
        return _fail(text, "prefix", f"mobile numbers start 13 to 19, not {text[:2]}")
    return CheckResult(valid=True, value=text)


# --------------------------------------------------------------------------------------------
# Heuristics: likely names and addresses (for finding columns, never for validating a value)
# --------------------------------------------------------------------------------------------

# The most common single-character surnames (together they cover the great majority of people)
# and the compound surnames still in use.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_COMPOUND_SURNAMES = (
    "欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 端木 "
    "独孤 南宫 西门 百里 呼延 万俟 澹台 公冶 宗政 濮阳 太史 申屠 钟离 闻人 赫连 第五"
).split()
_HAN = re.compile(r"[\u4e00-\u9fff]+")


def looks_like_person_name(text: str) -> bool:
    """Heuristic: 2-4 Han characters starting with a common surname (single or compound).

    Fits most Chinese personal names and few other short texts; place and organisation names
    of that length usually do not start with a surname. A hint, not a check."""
    name = _compact(text)
    if not 2 <= len(name) <= 4 or not _HAN.fullmatch(name):
        return False
    if name[:2] in _COMPOUND_SURNAMES:
        return len(name) >= 3
    return name[0] in _SURNAMES


_ZH_ADDRESS_MARKERS = (
    "省", "市", "区", "县", "镇", "乡", "街道", "路", "街", "巷", "弄", "村", "号", "栋", "幢",
    "单元", "室", "小区", "大道",
)  # fmt: skip
_EN_STREET = re.compile(
    r"^\d+[A-Z]?(-\d+)?\s+.*\b(ST|STREET|AVE|AVENUE|RD|ROAD|BLVD|BOULEVARD|DR|DRIVE|PL|PLACE|"
    r"LN|LANE|CT|COURT|PKWY|PARKWAY|WAY|TER|TERRACE|HWY|HIGHWAY|SQ|SQUARE|CIR|CIRCLE|"
    r"EXPY|EXPRESSWAY|PLZ|PLAZA|ROW|WALK|LOOP|TPKE|TURNPIKE|BROADWAY)\b",
    re.IGNORECASE,
)
MAX_ADDRESS_LENGTH = 80
MAX_ZH_ADDRESS_LENGTH = 40
_SENTENCE_END = re.compile(r"[。!?;]")  # after folding full-width punctuation


def looks_like_address(text: str) -> bool:
    """Heuristic: a short text naming a place down to a street or number.

    Chinese: at least two different markers of the address hierarchy (省/市/区/县/街道/路/号/
    室...) in at most 40 characters and no sentence punctuation. English: a house number, then a
    street with its type (``1520 E NEW YORK AVE``). Long texts (complaints that mention a road)
    are not addresses. A hint, not a check."""
    text = normalise(text)
    if not text or len(text) > MAX_ADDRESS_LENGTH:
        return False
    if _HAN.search(text):
        if len(text) > MAX_ZH_ADDRESS_LENGTH or _SENTENCE_END.search(text):
            return False
        return sum(marker in text for marker in _ZH_ADDRESS_MARKERS) >= 2
    return _EN_STREET.match(text) is not None
