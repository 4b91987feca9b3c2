"""Department records put into one comparable form, so the linker compares like with like.

Every department writes the same person differently: ``张伟`` or ``Zhang Wei`` or ``张 伟``, a
phone as ``+86 138-0013-8000``, an address with or without the city, ``12号楼`` or ``12栋``. This
module turns one record's canonical attributes (see the master-index contract) into the columns
the linker compares: each a ``str`` or ``None`` for "missing", never a guess.

Nothing is repaired. An ID number that fails its checksum is kept as written (upper-case, half
width, without spaces) with ``id_valid = "0"``, and :func:`problems` says why; the ID's parts are
still given, because a typo in one digit should not hide the other seventeen from comparison.

Pinyin comes from ``pypinyin`` (its dictionaries ship in the package, nothing is downloaded),
loaded once per process on first use. Surnames read differently from the same character in other
words (单 shan, 曾 zeng, 解 xie, 仇 qiu, 区 ou...): ``pypinyin`` has no surname mode, so the
readings of those surnames are listed here. ``name_sound`` folds the confusions of southern
accents and homophones (zh/z, ch/c, sh/s, n/l, ang/an, eng/en, ing/in) on the joined pinyin, so it
is the same for a Han name and its romanisation.

A name is read as a person's name (:func:`parse_name`): what a hotline caller gives is often a
surname and a title (``张先生``, ``李阿姨``, ``老王``, ``Mr Zhang``). The title is not part of the
name, so ``name`` keeps the surname, ``surname_only`` says that nothing more was given, and the
linker counts such a name only as "the same surname". ``surname_pinyin`` is the surname's reading
for every name (compound surnames such as 欧阳 or 诸葛 read whole).

Areas: :class:`Gazetteer` knows the city's area tree and finds the deepest area an address names.
It is built from plain tuples (no Django needed: tests, benchmarks, Spark workers) or from the
store with :meth:`Gazetteer.from_store`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from functools import cache, lru_cache
from typing import NamedTuple

from civicpulse.identity.checks import (
    check_credit_code,
    check_mobile,
    check_resident_id,
    name_key,
    to_halfwidth,
)

__all__ = [
    "COLUMNS",
    "Gazetteer",
    "PersonName",
    "address",
    "area_code",
    "birth_date",
    "enterprise",
    "enterprise_core",
    "gender",
    "name",
    "parse_name",
    "phone",
    "pinyin",
    "problems",
    "resident",
    "sound_key",
    "surname_pinyin",
]

COLUMNS: dict[str, list[str]] = {
    "resident": [
        "name", "name_pinyin", "name_sound", "surname_pinyin", "surname_only", "id_number",
        "id_valid", "id_division", "id_birth", "id_sequence", "birth_date", "gender", "phone",
        "address", "area_code",
    ],
    "enterprise": [
        "name", "name_pinyin", "name_core", "uscc", "uscc_valid", "uscc_division", "uscc_org",
        "legal_rep", "legal_rep_pinyin", "phone", "address", "area_code", "industry_code",
    ],
}  # fmt: skip

_CACHE = 1 << 18  # distinct names and address heads kept per process
_HAN = re.compile(r"[\u3400-\u9fff]")
_WHITESPACE = re.compile(r"\s+")


_MISSING_TYPES = frozenset({"NAType", "NaTType"})  # pandas' NA and NaT, without importing pandas


def _text(value: object) -> str | None:
    """The value as stripped text, or None when it says nothing (None, NaN, blanks)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from pandas
        return None
    if type(value).__name__ in _MISSING_TYPES:
        return None
    text = str(value).strip()
    return text or None


# ============================================================================================
# Names and pinyin
# ============================================================================================

# Surnames whose reading differs from the character's everyday reading (which is what pypinyin
# gives first). Compound surnames are matched before single ones.
_SURNAME_READINGS = {
    "尉迟": "yuchi", "万俟": "moqi", "长孙": "zhangsun", "单于": "chanyu", "澹台": "tantai",
    "单": "shan", "曾": "zeng", "解": "xie", "仇": "qiu", "区": "ou", "查": "zha", "朴": "piao",
    "盖": "ge", "缪": "miao", "乐": "yue", "翟": "zhai", "覃": "qin", "召": "shao", "种": "chong",
    "尉": "yu", "员": "yun", "繁": "po", "秘": "bi", "燕": "yan", "任": "ren", "沈": "shen",
    "华": "hua", "葛": "ge", "纪": "ji", "隗": "wei", "冼": "xian", "柏": "bai", "过": "guo",
}  # fmt: skip
_NAME_SEPARATORS = re.compile(r"[\s·•・.\-_,'’]")
_NOT_LETTER = re.compile(r"[^a-z]")


@cache
def _pypinyin():
    """``lazy_pinyin`` imported on first use: its dictionaries take a fifth of a second to load,
    which pages that never compare names should not pay."""
    from pypinyin import Style, lazy_pinyin

    return lambda text: lazy_pinyin(text, style=Style.NORMAL, v_to_u=False)


# Compound surnames, read as one surname: 欧阳先生 gave only a surname, 欧阳锋 is 欧阳 + 锋.
_COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 司空 夏侯 轩辕 端木 独孤 "
    "南宫 万俟 闻人 澹台 单于 公羊 濮阳 太史 申屠 钟离 呼延 赫连 拓跋 百里 东郭 西门 左丘 "
    "淳于 仲孙 叔孙 鲜于 闾丘 公冶 漆雕 乐正 羊舌 微生 梁丘 即墨".split()
)
# Common surnames, for the familiar 老王 / 小李: after 老 or 小 only a surname from this list
# counts, since 小明 or 小红 is a pet name, not a surname with a prefix.
_COMMON_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常关纪隋邢单庞樊殷包齐柳鲁葛牛易温乔倪车焦申岳聂章耿翟"
)
# What a caller says after their surname (张先生, 李阿姨, 王老师), longest first so that
# 张老先生 gives 张 and not 张老.
_TITLES = tuple(
    sorted(
        "先生 女士 小姐 太太 夫人 阿姨 大爷 大妈 大娘 大叔 大婶 大姐 大哥 师傅 老师 同志 "
        "奶奶 爷爷 老先生 老太太 老太 老爷子".split(),
        key=len,
        reverse=True,
    )
)
_FAMILIAR = "老小"
_EN_TITLE = re.compile(r"^(?:mr|mrs|ms|miss|mx|madam|madame|dr)\b\.?")
_LATIN_WORDS = re.compile(r"[\s·•・.\-_,]+")


class PersonName(NamedTuple):
    """A written name read as a person's name: ``text`` without any title, its ``surname``
    (None when it cannot be told, as in a one-word latin name) and whether the writer gave
    ``only_surname`` (张先生, 老王, Mr Zhang)."""

    text: str | None
    surname: str | None
    only_surname: bool


_NOBODY = PersonName(None, None, False)


def _han_name(text: str) -> PersonName:
    titled = False
    for title in _TITLES:
        if text.endswith(title):
            if len(text) == len(title):
                return _NOBODY  # a title alone names nobody
            text, titled = text[: -len(title)], True
            break
    if len(text) >= 2 and text[0] in _FAMILIAR:
        rest = text[1:]
        if rest in _COMMON_SURNAMES or rest in _COMPOUND_SURNAMES:
            return PersonName(rest, rest, True)
    if titled and (len(text) == 1 or text in _COMPOUND_SURNAMES):
        return PersonName(text, text, True)
    size = 2 if len(text) >= 3 and text[:2] in _COMPOUND_SURNAMES else 1
    return PersonName(text, text[:size], False)


def _latin_name(text: str) -> PersonName:
    folded = text.casefold()
    title = _EN_TITLE.match(folded)
    words = [w for w in _LATIN_WORDS.split(folded[title.end() :] if title else folded) if w]
    if not words:
        return _NOBODY
    if title and len(words) == 1:
        return PersonName(words[0], words[0], True)
    # Departments write a pinyin name surname first (ZHANG Wei), so that is how it is read.
    return PersonName(" ".join(words), words[0] if len(words) > 1 else None, False)


@lru_cache(maxsize=_CACHE)
def parse_name(value: object) -> PersonName:
    """A written name as a person's name: a hotline caller is often only ``张先生``,
    ``李阿姨``, ``老王`` or ``Mr Zhang``, which names a surname and nothing more. The title is
    dropped (it is not part of the name); a title alone names nobody."""
    text = _text(value)
    if text is None:
        return _NOBODY
    text = unicodedata.normalize("NFKC", text).strip()
    if _HAN.search(text):
        return _han_name(_NAME_SEPARATORS.sub("", text))
    return _latin_name(text)


@lru_cache(maxsize=_CACHE)
def name(value: object) -> str | None:
    """A person's name for comparison: NFKC (so half width), no spaces or separator dots,
    latin letters lower-cased, no title: ``ZHANG  Wei`` -> ``zhangwei``, ``阿依·买买提`` ->
    ``阿依买买提``, ``张先生`` -> ``张`` (see :func:`parse_name`)."""
    person = parse_name(value).text
    if person is None:
        return None
    return _NAME_SEPARATORS.sub("", name_key(person)) or None


def surname_pinyin(value: object) -> str | None:
    """The pinyin of a name's surname, in its surname reading (``单伟`` -> ``shan``,
    ``欧阳锋`` -> ``ouyang``, ``Mr Zhang`` -> ``zhang``); None when the surname is unknown."""
    return pinyin(parse_name(value).surname, surname=True)


@lru_cache(maxsize=_CACHE)
def pinyin(value: object, *, surname: bool = False) -> str | None:
    """Toneless pinyin without separators (``张伟`` -> ``zhangwei``); latin text lower-cased
    letters only (``Zhang Wei`` -> ``zhangwei``). ``surname=True`` reads the first character(s)
    as a surname (``单伟`` -> ``shanwei``, not ``danwei``)."""
    text = _text(value)
    if text is None:
        return None
    text = unicodedata.normalize("NFKC", text).casefold().replace("ü", "v")
    head = ""
    if surname and _HAN.match(text):
        for size in (2, 1):
            reading = _SURNAME_READINGS.get(text[:size])
            if reading:
                head, text = reading, text[size:]
                break
    if surname:  # a person's name: each character on its own (names are not phrases)
        syllables = [_char_pinyin(ch) for ch in text]
    else:
        syllables = _pypinyin()(text) if text else []
    out = _NOT_LETTER.sub("", head + "".join(syllables))
    return out or None


@lru_cache(maxsize=1 << 16)
def _char_pinyin(ch: str) -> str:
    return _pypinyin()(ch)[0] if _HAN.match(ch) else ch


# Longer patterns first: a final is folded before n/l so that "ang" is still there to fold.
_SOUND_FOLDS = (("ang", "an"), ("eng", "en"), ("ing", "in"), ("zh", "z"), ("ch", "c"),
                ("sh", "s"), ("n", "l"), ("v", "u"))  # fmt: skip


@lru_cache(maxsize=_CACHE)
def sound_key(value: object, *, surname: bool = True) -> str | None:
    """A fuzzy key that homophones and accent confusions share: 张伟/章伟/Zhang Wei -> ``zawei``,
    刘/牛 -> ``liu``. Folded on the joined pinyin (n/l everywhere, also in finals), so a Han name
    and its romanisation give the same key."""
    key = pinyin(value, surname=surname)
    if key is None:
        return None
    for old, new in _SOUND_FOLDS:
        key = key.replace(old, new)
    return key


# ============================================================================================
# Identifiers, dates, gender
# ============================================================================================


def _compact_upper(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _WHITESPACE.sub("", to_halfwidth(text)).upper() or None


_DATE_PARTS = re.compile(r"^(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?$")


def birth_date(value: object) -> str | None:
    """An ISO date (``yyyy-mm-dd``) from a date or the usual written forms (``1980/1/2``,
    ``19800102``, ``1980年1月2日``); None when missing or not a real date."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value)
    if text is None:
        return None
    text = to_halfwidth(text)
    if len(text) > 10 and text[10] in "T ":  # a timestamp: its date part
        text = text[:10]
    m = _DATE_PARTS.match(_WHITESPACE.sub("", text))
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return None


_GENDERS = {
    "m": "M", "male": "M", "man": "M", "男": "M", "1": "M",
    "f": "F", "female": "F", "woman": "F", "女": "F", "2": "F",
}  # fmt: skip


def gender(value: object) -> str | None:
    """``M`` or ``F`` from the forms departments use (男/女, male/female, 1/2 as in GB/T 2261)."""
    text = _text(value)
    return _GENDERS.get(to_halfwidth(text).casefold()) if text else None


# ============================================================================================
# Phones
# ============================================================================================

_PHONE_NOISE = re.compile(r"[\s\-()（）.+/]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0[1-9]\d{8,10}$")
_LOCAL = re.compile(r"^[2-9]\d{6,7}$")


def phone(value: object) -> str | None:
    """Digits only: an 11-digit mobile without +86/0086/86, or a landline with its area code
    (``010-12345678`` -> ``01012345678``; ``+86 10 1234 5678`` gets its trunk 0 back). A local
    number without area code stays as its 7-8 digits. Anything else is None."""
    text = _text(value)
    if text is None:
        return None
    text = to_halfwidth(text)
    plus = text.lstrip().startswith("+")
    digits = _PHONE_NOISE.sub("", text)
    if not (digits.isascii() and digits.isdigit()):
        return None
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and (plus or prefix == "0086" or len(digits) == 13):
            rest = digits[len(prefix) :]
            if _MOBILE.match(rest):
                return rest
            if rest[:1] != "0" and _LANDLINE.match("0" + rest):
                return "0" + rest
    if _MOBILE.match(digits) or _LANDLINE.match(digits) or _LOCAL.match(digits):
        return digits
    return None


# ============================================================================================
# Areas and addresses
# ============================================================================================

_LEVEL_DEPTH = {"city": 0, "district": 1, "street": 2, "community": 3, "grid": 4}
_APOSTROPHES = re.compile(r"['’`]")


class Gazetteer:
    """The city's areas, for finding the deepest one an address names.

    ``rows``: ``(code, name_zh, name_en, level, parent_code)``. A name counts when its parent area
    is named too, or when no other area under the nearest named ancestor (the whole gazetteer if
    none is named) has that name: ``幸福社区`` alone is ambiguous when two streets have one, but
    ``新华街道幸福社区`` is not; a grid's ``第1网格`` counts under its community.
    """

    def __init__(self, rows: Iterable[tuple[str, str, str, str, str | None]]):
        self.parent: dict[str, str | None] = {}
        self.depth: dict[str, int] = {}
        self.names: dict[str, tuple[str, str]] = {}
        by_name: dict[str, list[str]] = defaultdict(list)
        rows = list(rows)
        for code, zh, en, level, parent in rows:
            self.parent[code] = parent or None
            self.depth[code] = _LEVEL_DEPTH.get(level, len(code))
            zh_key = _WHITESPACE.sub("", to_halfwidth(zh or ""))
            en_key = self._en_key(en or "")
            self.names[code] = (zh_key, en_key)
            for key in {zh_key, en_key}:
                if key:
                    by_name[key].append(code)
        self._by_name = dict(by_name)
        # how many areas under each ancestor (None = anywhere) carry each name
        self._count: dict[tuple[str | None, str], int] = defaultdict(int)
        for key, codes in by_name.items():
            for code in codes:
                for ancestor in (None, *self.ancestors(code)):
                    self._count[ancestor, key] += 1
        zh_names = sorted({n for n in by_name if _HAN.search(n)}, key=len, reverse=True)
        en_names = sorted({n for n in by_name if not _HAN.search(n)}, key=len, reverse=True)
        self._zh = re.compile("|".join(map(re.escape, zh_names))) if zh_names else None
        self._en = (
            re.compile(r"\b(?:" + "|".join(map(re.escape, en_names)) + r")\b") if en_names else None
        )
        roots = [code for code, p in self.parent.items() if p is None]
        self.city_names = tuple(
            sorted({self.names[c][0] for c in roots if self.names[c][0]}, key=len, reverse=True)
        )
        self.locate = lru_cache(maxsize=_CACHE)(self._locate)

    @staticmethod
    def _en_key(text: str) -> str:
        return _WHITESPACE.sub(" ", _APOSTROPHES.sub("", to_halfwidth(text).casefold())).strip()

    @classmethod
    def from_store(cls) -> Gazetteer:
        """The areas of ``core.Area`` (import inside: this module itself needs no Django)."""
        from civicpulse.core.models import Area

        return cls(Area.objects.values_list("code", "name_zh", "name_en", "level", "parent__code"))

    def ancestors(self, code: str) -> list[str]:
        """Codes above ``code``, nearest first."""
        out = []
        parent = self.parent.get(code)
        while parent is not None:
            out.append(parent)
            parent = self.parent.get(parent)
        return out

    def _locate(self, text: str) -> str | None:
        if _HAN.search(text):
            pattern, key = self._zh, _WHITESPACE.sub("", to_halfwidth(text))
        else:
            pattern, key = self._en, self._en_key(_PUNCT_EN.sub(" ", text))
        if pattern is None:
            return None
        found = {m.group(0) for m in pattern.finditer(key)}
        candidates = sorted(
            {code for n in found for code in self._by_name[n]}, key=lambda c: self.depth[c]
        )
        counted: set[str] = set()
        for code in candidates:
            nearest = next((a for a in self.ancestors(code) if a in counted), None)
            names = self.names[code]
            unique = any(n and self._count.get((nearest, n), 0) == 1 for n in names)
            if self.parent[code] in counted or unique:
                counted.add(code)
        if not counted:
            return None
        deepest = max(self.depth[c] for c in counted)
        for depth in range(deepest, -1, -1):
            level = [c for c in counted if self.depth[c] == depth]
            if len(level) == 1:
                return level[0]
        return None


_ADDRESS_NOISE = re.compile(r"[\s,，、]")
# Building, then room, words that mean the same; plain replacement (a regex with a template is
# several times slower, and these words mean nothing else in an address).
_SAME_WORDS = (("号楼", "栋"), ("号栋", "栋"), ("幢", "栋"), ("号房", "室"))
_HOUSE_NUMBER = re.compile(r"\d+(?:号|栋|弄|单元|室)")
_PROVINCE_HEAD = re.compile(r"^[\u4e00-\u9fff]{2,7}?(?:省|自治区)")
_PUNCT_EN = re.compile(r"[.,;:#/()\"]")
_EN_WORDS = {
    "st": "street", "str": "street", "ave": "avenue", "av": "avenue", "rd": "road",
    "blvd": "boulevard", "dr": "drive", "ln": "lane", "ct": "court", "pl": "place",
    "sq": "square", "hwy": "highway", "pkwy": "parkway", "ter": "terrace", "cir": "circle",
    "n": "north", "s": "south", "e": "east", "w": "west", "ne": "northeast", "nw": "northwest",
    "se": "southeast", "sw": "southwest", "apt": "apartment", "bldg": "building", "fl": "floor",
    "rm": "room", "ste": "suite", "no": "number", "dist": "district", "subdist": "subdistrict",
    "comm": "community",
}  # fmt: skip


def _address_zh(text: str, gazetteer: Gazetteer | None) -> str:
    text = _ADDRESS_NOISE.sub("", text)
    for old, new in _SAME_WORDS:
        if old in text:
            text = text.replace(old, new)
    if gazetteer is not None:
        head = _PROVINCE_HEAD.match(text)
        for city in gazetteer.city_names:
            start = head.end() if head and text.startswith(city, head.end()) else 0
            if text.startswith(city, start):
                return text[start + len(city) :]
    return text


def _address_en(text: str) -> str:
    words = _PUNCT_EN.sub(" ", text.casefold()).split()
    return " ".join(_EN_WORDS.get(w, w) for w in words)


def address(value: object, gazetteer: Gazetteer | None = None) -> str | None:
    """Comparable address text. Chinese: half width, no spaces, ``12号楼``/``12幢`` -> ``12栋``,
    without the city's own name (and its province) in front when the gazetteer knows the city.
    English: lower case, single spaces, abbreviations spelled out (``N Main St`` -> ``north main
    street``)."""
    text = _text(value)
    if text is None:
        return None
    text = to_halfwidth(text)
    out = _address_zh(text, gazetteer) if _HAN.search(text) else _address_en(text)
    return out or None


def area_code(value: object, gazetteer: Gazetteer | None) -> str | None:
    """The deepest gazetteer area the address names. Chinese addresses go from large to small,
    so only the text before the house number is searched (and cached: many people share it)."""
    text = _text(value)
    if text is None or gazetteer is None:
        return None
    text = to_halfwidth(text)
    if _HAN.search(text):
        m = _HOUSE_NUMBER.search(text)
        text = _ADDRESS_NOISE.sub("", text[: m.start()] if m else text)
    return gazetteer.locate(text)


# ============================================================================================
# Enterprise names
# ============================================================================================

_ORG_SUFFIXES = re.compile(
    r"(?:股份有限公司|有限责任公司|有限公司|分公司|总公司|公司|专业合作社|合作社|"
    r"个体工商户|co\.?,?ltd\.?|companylimited|co\.?limited|limited|ltd\.?|inc\.?|corp\.?|"
    r"corporation|company)$"
)
_BRANCH = re.compile(r"[(（][^()（）]*[)）]$")
_PROVINCES = (
    "北京 天津 河北 山西 内蒙古 辽宁 吉林 黑龙江 上海 江苏 浙江 安徽 福建 江西 山东 河南 湖北 "
    "湖南 广东 广西 海南 重庆 四川 贵州 云南 西藏 陕西 甘肃 青海 宁夏 新疆 台湾 香港 澳门"
).split()
_REGION_SUFFIXES = ("省", "市", "自治区", "特别行政区", "区", "县")


@cache
def _region_prefixes(gazetteer: Gazetteer | None) -> tuple[str, ...]:
    """Place names an enterprise name may start with: provinces, and the city's districts and
    the city itself with and without their suffix (松河市 / 松河)."""
    names = set()
    for p in _PROVINCES:
        names.add(p)
        names.update(p + s for s in ("省", "市", "自治区"))
    if gazetteer is not None:
        for code, (zh, _en) in gazetteer.names.items():
            if gazetteer.depth[code] <= 1 and zh:
                names.add(zh)
                for suffix in _REGION_SUFFIXES:
                    if zh.endswith(suffix) and len(zh) - len(suffix) >= 2:
                        names.add(zh[: -len(suffix)])
    return tuple(sorted(names, key=len, reverse=True))


def enterprise_core(value: object, gazetteer: Gazetteer | None = None) -> str | None:
    """An enterprise name without its region prefix and organisational form:
    ``松河市鑫源商贸有限责任公司`` and ``鑫源商贸有限公司`` both give ``鑫源商贸``."""
    text = _enterprise_name(value)
    if text is None:
        return None
    prefixes = _region_prefixes(gazetteer)
    stripped = True
    while stripped:
        stripped = False
        for prefix in prefixes:
            if text.startswith(prefix) and len(text) > len(prefix) + 1:
                text, stripped = text[len(prefix) :], True
                break
    previous = None
    while previous != text:
        previous = text
        text = _BRANCH.sub("", text)
        text = _ORG_SUFFIXES.sub("", text)
    return text or None


@lru_cache(maxsize=_CACHE)
def _enterprise_name(value: object) -> str | None:
    text = _text(value)
    if text is None:
        return None
    return _WHITESPACE.sub("", unicodedata.normalize("NFKC", text).casefold()) or None


# ============================================================================================
# Records
# ============================================================================================


@lru_cache(maxsize=_CACHE)
def _checked_id(text: str):
    """One check per distinct number: a person is on several rolls, and the check is the
    costliest step of a row."""
    return check_resident_id(text)


def resident(attrs: Mapping[str, object], gazetteer: Gazetteer | None = None) -> dict:
    """The resident columns of ``COLUMNS`` from canonical attributes; missing -> None."""
    id_number = _compact_upper(attrs.get("id_number"))
    id_valid = id_division = id_birth = id_sequence = None
    checked = None
    if id_number is not None:
        checked = _checked_id(id_number)
        id_number = checked.value or id_number
        id_valid = "1" if checked.valid else "0"
        if len(id_number) == 18:
            id_division, id_birth, id_sequence = id_number[:6], id_number[6:14], id_number[14:17]
    born = birth_date(attrs.get("birth_date"))
    sex = gender(attrs.get("gender"))
    if checked is not None and checked.valid:
        born = born or checked.birth_date.isoformat()
        sex = sex or checked.sex
    raw_address = attrs.get("address")
    raw_name = attrs.get("name")
    person = parse_name(raw_name)
    return {
        "name": name(raw_name),
        "name_pinyin": pinyin(person.text, surname=True),
        "name_sound": sound_key(person.text),
        "surname_pinyin": pinyin(person.surname, surname=True),
        "surname_only": "1" if person.only_surname else None,
        "id_number": id_number,
        "id_valid": id_valid,
        "id_division": id_division,
        "id_birth": id_birth,
        "id_sequence": id_sequence,
        "birth_date": born,
        "gender": sex,
        "phone": phone(attrs.get("phone")),
        "address": address(raw_address, gazetteer),
        "area_code": area_code(raw_address, gazetteer),
    }


def enterprise(attrs: Mapping[str, object], gazetteer: Gazetteer | None = None) -> dict:
    """The enterprise columns of ``COLUMNS`` from canonical attributes; missing -> None."""
    uscc = _compact_upper(attrs.get("uscc"))
    uscc_valid = uscc_division = uscc_org = None
    if uscc is not None:
        uscc_valid = "1" if check_credit_code(uscc).valid else "0"
        if len(uscc) == 18:
            uscc_division, uscc_org = uscc[2:8], uscc[8:17]
    raw_name, rep = attrs.get("name"), attrs.get("legal_representative")
    raw_address = attrs.get("address")
    industry = _compact_upper(attrs.get("industry_code"))
    return {
        "name": _enterprise_name(raw_name),
        "name_pinyin": pinyin(raw_name),
        "name_core": enterprise_core(raw_name, gazetteer),
        "uscc": uscc,
        "uscc_valid": uscc_valid,
        "uscc_division": uscc_division,
        "uscc_org": uscc_org,
        "legal_rep": name(rep),
        "legal_rep_pinyin": pinyin(parse_name(rep).text, surname=True),
        "phone": phone(attrs.get("phone")),
        "address": address(raw_address, gazetteer),
        "area_code": area_code(raw_address, gazetteer),
        "industry_code": industry,
    }


def _problem(field: str, result) -> dict:
    return {"field": field, "code": result.code, "reason": result.reason}


def problems(kind: str, attrs: Mapping[str, object]) -> list[dict]:
    """One ``{"field", "code", "reason"}`` per identifier that fails its check (ID number or
    credit code, and a phone that is neither a mobile nor a landline, with the mobile check's
    reason). Missing values are not problems; the values themselves are never altered."""
    if kind not in COLUMNS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(COLUMNS)}")
    found = []
    if kind == "resident":
        value = _text(attrs.get("id_number"))
        if value is not None:
            result = check_resident_id(value)
            if not result.valid:
                found.append(_problem("id_number", result))
    else:
        value = _text(attrs.get("uscc"))
        if value is not None:
            result = check_credit_code(value)
            if not result.valid:
                found.append(_problem("uscc", result))
    value = _text(attrs.get("phone"))
    if value is not None and phone(value) is None:
        found.append(_problem("phone", check_mobile(value)))
    return found
