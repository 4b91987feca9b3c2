"""A synthetic demo city: 松河市 (Songhe), a fictional city in China's north-east.

Everything here is generated from a seed and an end date; the same pair always gives the same
records, byte for byte, whatever order the streams are read in (each stream draws from its own
random generator derived from the seed). Nothing is read from disk or the network and nothing
imports Django: the loader in the CLI writes these records into the database.

The city:

* an area tree of GB/T 2260-style codes: the city ``239900``, five districts ``239901``-
  ``239905``, eight streets (subdistricts) per district, five communities per street, five grids
  per community; every area is a rectangle tiling its parent exactly;
* the three northern districts are on the city's central heating network (``heated``);
* residents whose ages follow China's 2020 census and whose disability rate follows the 2006
  national sample survey; enterprises with valid credit codes;
* two years of citizen requests with the seasons a northern city really has (heating in winter,
  noise in summer, flooding in the rainy season, unpaid wages before Spring Festival), one
  abnormal heating winter in one district (``DemoCity.abnormal_winter``);
* ninety days of public posts with one injected crisis (``DemoCity.crisis``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from civicpulse.identity.identifiers import USCC_CHARSET, make_resident_id, make_uscc

__all__ = [
    "AGE_PYRAMID",
    "CRISIS_TOPIC",
    "DEPARTMENTS",
    "PINYIN",
    "SERVICES",
    "SERVICE_GROUPS",
    "heating_season",
    "spring_festival",
    "AreaSpec",
    "CaseSpec",
    "DemoCity",
    "DepartmentSpec",
    "DISABILITY_TYPES",
    "EnterpriseSpec",
    "INDUSTRIES",
    "PostSpec",
    "ResidentSpec",
    "SIZES",
    "ServiceSpec",
    "Size",
    "to_pinyin",
]

TZ = ZoneInfo("Asia/Shanghai")
SPAN_DAYS = 730
POST_DAYS = 90
BATCH = 10_000


# ============================================================================================
# Public records
# ============================================================================================


@dataclass(frozen=True, slots=True)
class Size:
    residents: int
    enterprises: int
    cases: int
    posts: int


SIZES = {
    "small": Size(residents=5_000, enterprises=500, cases=20_000, posts=5_000),
    "full": Size(residents=120_000, enterprises=6_000, cases=220_000, posts=60_000),
}


@dataclass(frozen=True, slots=True)
class AreaSpec:
    code: str
    level: str  # "city" | "district" | "street" | "community" | "grid"
    name_zh: str
    name_en: str
    parent_code: str | None
    polygon: dict  # GeoJSON Polygon geometry, one closed counter-clockwise ring
    heated: bool  # on the central heating network (the city node: it runs one)


@dataclass(frozen=True, slots=True)
class DepartmentSpec:
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    code: str
    name_zh: str
    name_en: str
    group: str
    department_code: str
    sla_working_days: int


@dataclass(frozen=True, slots=True)
class ResidentSpec:
    id_number: str
    name: str
    gender: str  # "M" | "F"
    birth_date: date
    disability: str | None
    disability_grade: int | None  # 1 (most severe) .. 4
    phone: str
    grid_code: str
    address: str


@dataclass(frozen=True, slots=True)
class EnterpriseSpec:
    uscc: str
    name: str
    industry_code: str  # GB/T 4754-2017 section letter + division, e.g. "H62"
    grid_code: str
    founded: date
    registered_capital_10k_yuan: float
    legal_representative: str
    status: str  # "active" | "revoked" | "cancelled"


@dataclass(frozen=True, slots=True)
class CaseSpec:
    tracking_no: str
    channel: str  # "hotline" | "web" | "app" | "grid" | "open311"
    service_code: str
    title: str
    description: str
    created_at: datetime
    grid_code: str
    lon: float
    lat: float
    status: str  # "closed" | "resolved" | "in_progress" | "dispatched" | "new"
    closed_at: datetime | None
    satisfaction: int | None


@dataclass(frozen=True, slots=True)
class PostSpec:
    post_id: str
    source: str  # "weibo" | "news" | "forum" | "wechat"
    author: str
    text: str
    created_at: datetime
    reach: int
    reposts: int
    area_code: str | None  # a district code, or None when the post names no place
    lang: str


# ============================================================================================
# Reference tables
# ============================================================================================

# Population share by five-year age group, keyed by the group's lower bound (85 = 85 and over).
# Source: China's seventh national population census (2020), population by age group, National
# Bureau of Statistics. Five-year shares rounded to 0.01 %, then reconciled so that the broad
# bands equal those of the census communiqué No. 5: 0-14 17.95 %, 15-59 63.35 %, 60+ 18.70 %,
# 65+ 13.50 %.
AGE_PYRAMID: tuple[tuple[int, float], ...] = (
    (0, 0.0551),
    (5, 0.0640),
    (10, 0.0604),
    (15, 0.0516),
    (20, 0.0532),
    (25, 0.0652),
    (30, 0.0882),
    (35, 0.0702),
    (40, 0.0660),
    (45, 0.0811),
    (50, 0.0860),
    (55, 0.0720),
    (60, 0.0520),
    (65, 0.0525),
    (70, 0.0352),
    (75, 0.0222),
    (80, 0.0145),
    (85, 0.0106),
)

# Share of men by the same age groups: about 51.2 % overall as in the 2020 census, more boys
# among children and more women among the old.
_MALE_SHARE = (
    0.532, 0.533, 0.530, 0.522, 0.518, 0.514, 0.512, 0.510, 0.509,
    0.508, 0.505, 0.502, 0.498, 0.492, 0.484, 0.470, 0.450, 0.400,
)  # fmt: skip

# Relative disability prevalence by the same age groups, steep with age. The generator scales it
# so that the expected overall rate is 6.34 %, the rate found by China's second national sample
# survey on disability (2006), where people aged 60+ were over half of all disabled people.
_DISABILITY_RELATIVE = (
    0.9, 1.0, 1.1, 1.3, 1.4, 1.5, 1.7, 2.0, 2.4,
    3.0, 3.8, 4.8, 6.5, 8.5, 11.5, 15.5, 21.0, 28.0,
)  # fmt: skip
DISABILITY_RATE = 0.0634

# Disability types with their shares in the 2006 survey (visual 14.86 %, hearing 24.16 %,
# speech 1.53 %, physical 29.07 %, intellectual 6.68 %, mental 7.40 %, multiple 16.30 %).
DISABILITY_TYPES = ("visual", "hearing", "speech", "physical", "intellectual", "mental", "multiple")
_DISABILITY_TYPE_SHARES = {
    # children and young people: more intellectual and speech, almost no age-related hearing loss
    "young": (0.08, 0.10, 0.06, 0.26, 0.27, 0.10, 0.13),
    "adult": (0.13, 0.15, 0.02, 0.35, 0.07, 0.13, 0.15),
    "old": (0.17, 0.33, 0.01, 0.27, 0.02, 0.03, 0.17),
}
# Grades 1 (most severe) to 4; about 30 % are severe (grades 1 and 2).
_DISABILITY_GRADES = (0.12, 0.18, 0.26, 0.44)

# Common surnames with relative weights, loosely following the national rankings and tilted to
# the north-east (more 王/李/张/刘/于/姜/崔, fewer 陈/黄 than the south).
_SURNAMES = (
    ("王", 7.6), ("李", 7.4), ("张", 7.0), ("刘", 5.8), ("杨", 3.2), ("陈", 3.0), ("赵", 3.0),
    ("孙", 2.3), ("周", 1.6), ("马", 1.6), ("徐", 1.5), ("高", 1.5), ("吴", 1.3), ("郭", 1.3),
    ("黄", 1.2), ("于", 1.2), ("朱", 1.0), ("胡", 1.0), ("宋", 1.0), ("韩", 1.0), ("田", 0.8),
    ("董", 0.8), ("姜", 0.8), ("梁", 0.8), ("冯", 0.7), ("曹", 0.7), ("许", 0.7), ("崔", 0.7),
    ("何", 0.6), ("林", 0.6), ("郑", 0.6), ("唐", 0.6), ("杜", 0.6), ("魏", 0.6), ("任", 0.6),
    ("付", 0.6), ("孟", 0.6), ("罗", 0.5), ("谢", 0.5), ("肖", 0.5), ("程", 0.5), ("苏", 0.5),
    ("吕", 0.5), ("丁", 0.5), ("金", 0.5), ("石", 0.5), ("贾", 0.5), ("白", 0.5), ("闫", 0.5),
    ("邓", 0.4), ("彭", 0.4), ("袁", 0.4), ("潘", 0.4), ("蒋", 0.4), ("沈", 0.4), ("姚", 0.4),
    ("卢", 0.4), ("范", 0.4), ("蔡", 0.3), ("余", 0.3), ("叶", 0.3), ("陆", 0.3), ("邢", 0.3),
    ("尹", 0.3), ("常", 0.3), ("关", 0.3), ("曾", 0.2), ("谭", 0.2), ("纪", 0.2), ("隋", 0.1),
)  # fmt: skip

# Given-name characters by the era of birth (before 1965, 1965-1989, 1990 on) and gender.
_GIVEN = {
    ("old", "M"): "国建军振德福明志永文华庆贵树成海广富玉山林忠义祥",
    ("old", "F"): "淑桂秀玉凤兰英珍华芳琴霞云荣素春梅香芬萍",
    ("mid", "M"): "伟强磊军勇涛斌鹏刚峰辉波东明超亮宇杰海健龙鑫帅洋",
    ("mid", "F"): "丽静敏燕艳娟红霞颖莉丹娜雪婷琳晶慧玲欣微",
    ("young", "M"): "浩宇轩子睿博泽辰航俊晨逸铭昊然皓阳烁一嘉宸钰奕彦",
    ("young", "F"): "梓涵欣怡诗萱雨佳可馨琪语彤悦若汐思瑶依沫晗妍嘉芷",
}
_SINGLE_NAME_SHARE = {"old": 0.35, "mid": 0.30, "young": 0.18}

# Real county-level division codes for people whose ID was issued elsewhere (mostly the
# north-east, some further away).
_OTHER_DIVISIONS = (
    ("230102", 3.0),  # 哈尔滨市道里区
    ("230103", 3.0),  # 哈尔滨市南岗区
    ("230202", 2.0),  # 齐齐哈尔市龙沙区
    ("230602", 2.0),  # 大庆市萨尔图区
    ("220102", 1.5),  # 长春市南关区
    ("210102", 1.5),  # 沈阳市和平区
    ("150102", 0.8),  # 呼和浩特市新城区
    ("130102", 0.6),  # 石家庄市长安区
    ("370102", 0.6),  # 济南市历下区
    ("410105", 0.5),  # 郑州市金水区
    ("120101", 0.5),  # 天津市和平区
    ("110105", 0.5),  # 北京市朝阳区
)
_BORN_ELSEWHERE = 0.12

_MOBILE_PREFIXES = (
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "166 173 175 176 177 178 180 181 182 183 184 185 186 187 188 189 191 198 199"
).split()

# GB/T 4754-2017 divisions used by the demo: code -> Chinese name.
INDUSTRIES: dict[str, str] = {
    "A01": "农业",
    "A03": "畜牧业",
    "C13": "农副食品加工业",
    "C14": "食品制造业",
    "C15": "酒、饮料和精制茶制造业",
    "C34": "通用设备制造业",
    "C36": "汽车制造业",
    "D44": "电力、热力生产和供应业",
    "E47": "房屋建筑业",
    "E48": "土木工程建筑业",
    "E50": "建筑装饰、装修和其他建筑业",
    "F51": "批发业",
    "F52": "零售业",
    "G54": "道路运输业",
    "G59": "装卸搬运和仓储业",
    "H61": "住宿业",
    "H62": "餐饮业",
    "I64": "互联网和相关服务",
    "I65": "软件和信息技术服务业",
    "K70": "房地产业",
    "L72": "商务服务业",
    "M74": "专业技术服务业",
    "O80": "居民服务业",
    "O81": "机动车、电子产品和日用产品修理业",
    "P83": "教育",
    "R90": "娱乐业",
}

# Per industry: weight among companies, weight among sole traders, words for a company name,
# words for a shop name.
_INDUSTRY_PROFILE: dict[str, tuple[float, float, tuple[str, ...], tuple[str, ...]]] = {
    "A01": (0.5, 0.0, ("农业科技", "种植"), ()),
    "A03": (0.3, 0.0, ("牧业", "养殖"), ()),
    "C13": (1.5, 0.0, ("粮油", "米业", "肉类加工"), ()),
    "C14": (1.2, 0.0, ("食品", "乳业", "糕点"), ()),
    "C15": (0.6, 0.0, ("酒业", "饮品"), ()),
    "C34": (1.2, 0.0, ("机械制造", "重工"), ()),
    "C36": (0.6, 0.0, ("汽车零部件",), ()),
    "D44": (0.3, 0.0, ("热力", "热电"), ()),
    "E47": (2.5, 0.0, ("建筑工程",), ()),
    "E48": (1.5, 0.0, ("市政工程", "路桥工程"), ()),
    "E50": (2.5, 2.0, ("装饰工程", "装修"), ("装饰部", "装修队")),
    "F51": (8.0, 4.0, ("商贸", "贸易", "医药"), ("批发部", "商行")),
    "F52": (
        10.0,
        30.0,
        ("商贸", "超市", "便利店"),
        ("超市", "便利店", "水果店", "烟酒行", "五金店"),
    ),
    "G54": (2.5, 3.0, ("运输", "物流"), ("货运部",)),
    "G59": (1.2, 0.0, ("仓储", "冷链物流"), ()),
    "H61": (1.5, 2.0, ("酒店管理", "宾馆"), ("旅店", "宾馆")),
    "H62": (6.0, 28.0, ("餐饮管理", "饮食服务"), ("饺子馆", "烧烤店", "面馆", "饭店", "麻辣烫")),
    "I64": (1.5, 0.0, ("网络科技", "互联网信息"), ()),
    "I65": (3.0, 0.0, ("软件", "信息技术", "数据科技"), ()),
    "K70": (2.5, 0.0, ("房地产开发", "置业", "物业管理"), ()),
    "L72": (6.0, 1.0, ("企业管理咨询", "广告传媒", "人力资源"), ("广告部",)),
    "M74": (2.0, 0.0, ("工程设计", "检测技术"), ()),
    "O80": (2.0, 12.0, ("家政服务", "保洁服务"), ("理发店", "洗衣店", "家政服务部", "美容院")),
    "O81": (1.0, 8.0, ("汽车维修", "电器维修"), ("汽车修理部", "手机维修店", "修鞋店")),
    "P83": (1.5, 0.0, ("教育科技", "培训学校"), ()),
    "R90": (0.8, 2.0, ("文化娱乐", "体育健身"), ("台球厅", "棋牌室")),
}

_BRAND_FIRST = "鑫恒宏金瑞华盛鼎泰嘉福丰兴隆宇博汇达腾凯润昌荣誉安顺佳信德源"
_BRAND_SECOND = "源泰达鼎丰盛通远晟辉航诚阳美康邦祥和亿海利峰创程旺鹏骏耀瀚林"


# --------------------------------------------------------------------------------------------
# Places
# --------------------------------------------------------------------------------------------

CITY_CODE = "239900"
CITY_ZH = "松河市"
CITY_EN = "Songhe City"
BBOX = (126.45, 45.60, 126.85, 45.95)  # lon_min, lat_min, lon_max, lat_max
_NORTH_SOUTH_CUT = 45.78

# (code, word, heated, band, lon_from, lon_to); the north band has the larger latitudes.
_DISTRICTS = (
    ("239901", "河阳", True, "north", 126.45, 126.59),
    ("239902", "松岭", True, "north", 126.59, 126.72),
    ("239903", "东安", True, "north", 126.72, 126.85),
    ("239904", "新城", False, "south", 126.45, 126.66),
    ("239905", "南湖", False, "south", 126.66, 126.85),
)
# How densely each district is settled (the old inner districts most).
_DISTRICT_DENSITY = {"239901": 1.35, "239902": 1.0, "239903": 1.1, "239904": 1.0, "239905": 0.7}

# Eight street (subdistrict) names per district, in district order; unique in the city.
_STREET_WORDS = (
    "新华", "和平", "友谊", "胜利", "光明", "建设", "解放", "红旗",
    "前进", "民主", "团结", "兴华", "松涛", "林海", "太平", "安康",
    "文化", "振兴", "永安", "铁路", "站前", "学府", "东风", "朝阳",
    "向阳", "春雷", "新兴", "永和", "中山", "花园", "滨江", "江畔",
    "工农", "东方", "黎明", "曙光", "康宁", "湖滨", "丰收", "育英",
)  # fmt: skip
_ROAD_SUFFIXES = ("路", "街", "大街", "大道")

# Community names; each district draws 40 distinct ones.
_COMMUNITY_WORDS = (
    "幸福", "和谐", "阳光", "康乐", "丽园", "锦绣", "翠湖", "金桥", "银河", "春晖",
    "秋实", "枫林", "松苑", "柳岸", "荷花", "梅园", "兰亭", "竹苑", "菊香", "悦城",
    "嘉园", "华府", "明珠", "星光", "彩虹", "清水", "碧水", "青山", "龙泉", "凤凰",
    "吉祥", "如意", "安居", "乐业", "福泰", "祥和", "民安", "泰和", "广厦", "北苑",
    "南苑", "东苑", "西苑", "紫薇", "海棠", "丁香", "杏林", "桃源", "书香", "育才",
    "怡园", "晨曦", "宏伟", "鸿福", "瑞祥", "旭日", "万象", "长青", "雪松", "丰泽",
    "康桥", "百合", "玉兰",
)  # fmt: skip

# Hanzi -> pinyin (toneless) for every character used in area names. Polyphonic characters
# carry the reading they have in those names (乐 le in 康乐/乐业, 长 chang, 朝 chao, 厦 sha).
PINYIN: dict[str, str] = {
    "安": "an", "岸": "an", "百": "bai", "北": "bei", "碧": "bi", "滨": "bin", "彩": "cai",
    "才": "cai", "长": "chang", "朝": "chao", "晨": "chen", "城": "cheng", "春": "chun",
    "翠": "cui", "丁": "ding", "东": "dong", "放": "fang", "方": "fang", "丰": "feng",
    "凤": "feng", "枫": "feng", "风": "feng", "府": "fu", "福": "fu", "工": "gong",
    "光": "guang", "广": "guang", "海": "hai", "合": "he", "和": "he", "河": "he", "荷": "he",
    "宏": "hong", "红": "hong", "虹": "hong", "鸿": "hong", "湖": "hu", "化": "hua", "华": "hua",
    "花": "hua", "凰": "huang", "晖": "hui", "吉": "ji", "嘉": "jia", "建": "jian",
    "江": "jiang", "结": "jie", "解": "jie", "进": "jin", "金": "jin", "锦": "jin", "居": "ju",
    "菊": "ju", "康": "kang", "兰": "lan", "乐": "le", "雷": "lei", "丽": "li", "利": "li",
    "黎": "li", "林": "lin", "岭": "ling", "柳": "liu", "龙": "long", "路": "lu", "梅": "mei",
    "民": "min", "明": "ming", "南": "nan", "宁": "ning", "农": "nong", "畔": "pan",
    "平": "ping", "旗": "qi", "前": "qian", "桥": "qiao", "清": "qing", "青": "qing",
    "秋": "qiu", "泉": "quan", "日": "ri", "如": "ru", "瑞": "rui", "厦": "sha", "山": "shan",
    "设": "she", "胜": "sheng", "实": "shi", "市": "shi", "收": "shou", "书": "shu", "曙": "shu",
    "水": "shui", "松": "song", "太": "tai", "泰": "tai", "棠": "tang", "桃": "tao", "涛": "tao",
    "铁": "tie", "亭": "ting", "团": "tuan", "万": "wan", "伟": "wei", "薇": "wei", "文": "wen",
    "曦": "xi", "西": "xi", "向": "xiang", "祥": "xiang", "象": "xiang", "香": "xiang",
    "谐": "xie", "新": "xin", "兴": "xing", "幸": "xing", "星": "xing", "杏": "xing",
    "绣": "xiu", "旭": "xu", "学": "xue", "雪": "xue", "阳": "yang", "业": "ye", "怡": "yi",
    "意": "yi", "谊": "yi", "银": "yin", "英": "ying", "永": "yong", "友": "you", "玉": "yu",
    "育": "yu", "园": "yuan", "源": "yuan", "苑": "yuan", "悦": "yue", "泽": "ze", "站": "zhan",
    "振": "zhen", "中": "zhong", "主": "zhu", "珠": "zhu", "竹": "zhu", "紫": "zi",
}  # fmt: skip


def to_pinyin(word: str) -> str:
    """Romanise a Chinese place word with the table above: ``东安`` -> ``Dong'an``.

    An apostrophe separates a syllable starting with a, o or e from the one before it, as
    pinyin spelling rules require. A character missing from the table raises ``KeyError``.
    """
    out: list[str] = []
    for i, ch in enumerate(word):
        syllable = PINYIN[ch]
        if i and syllable[0] in "aoe":
            out.append("'")
        out.append(syllable)
    text = "".join(out)
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------------------------
# Departments and services
# --------------------------------------------------------------------------------------------

DEPARTMENTS = (
    DepartmentSpec("urban", "城市管理局", "Urban Management Bureau"),
    DepartmentSpec("housing", "住房和城乡建设局", "Housing and Urban-Rural Development Bureau"),
    DepartmentSpec("ecology", "生态环境局", "Ecology and Environment Bureau"),
    DepartmentSpec("market", "市场监督管理局", "Market Regulation Administration"),
    DepartmentSpec("transport", "交通运输局", "Transport Bureau"),
    DepartmentSpec("water", "水务局", "Water Affairs Bureau"),
    DepartmentSpec("hrss", "人力资源和社会保障局", "Human Resources and Social Security Bureau"),
    DepartmentSpec("police", "公安局", "Public Security Bureau"),
)

# Service groups: slug -> (zh, en).
SERVICE_GROUPS = {
    "utilities": ("市政公用", "Utilities"),
    "environment": ("环境卫生", "Environment"),
    "transport": ("道路交通", "Roads and traffic"),
    "housing": ("住房物业", "Housing"),
    "order": ("市容秩序", "Public order"),
    "labour": ("劳动保障", "Labour"),
    "market": ("市场监管", "Market"),
}

SERVICES = (
    ServiceSpec("heating", "供热问题", "Heating", "utilities", "housing", 1),
    ServiceSpec("water", "供水问题", "Water supply", "utilities", "water", 1),
    ServiceSpec("drainage", "排水与积水", "Drainage and flooding", "utilities", "water", 2),
    ServiceSpec("streetlight", "路灯故障", "Street lights", "utilities", "urban", 5),
    ServiceSpec("noise", "噪声扰民", "Noise", "environment", "ecology", 3),
    ServiceSpec("pollution", "大气与污染", "Air and pollution", "environment", "ecology", 7),
    ServiceSpec("garbage", "垃圾清运", "Rubbish collection", "environment", "urban", 3),
    ServiceSpec("greening", "绿化养护", "Trees and green space", "environment", "urban", 10),
    ServiceSpec("snow", "积雪清理", "Snow and ice clearing", "environment", "urban", 2),
    ServiceSpec("road", "道路破损", "Road damage", "transport", "transport", 10),
    ServiceSpec("parking", "停车管理", "Parking", "transport", "police", 5),
    ServiceSpec("traffic", "交通秩序", "Traffic signals and order", "transport", "police", 5),
    ServiceSpec("property", "物业服务", "Property management", "housing", "housing", 10),
    ServiceSpec("vendor", "占道经营", "Street vending", "order", "urban", 3),
    ServiceSpec("pets", "犬只管理", "Dogs and pets", "order", "police", 5),
    ServiceSpec("wage", "拖欠工资", "Unpaid wages", "labour", "hrss", 15),
    ServiceSpec("food", "食品安全", "Food safety", "market", "market", 7),
)
_SERVICE_INDEX = {s.code: i for i, s in enumerate(SERVICES)}

# Relative volume of each service per head of population, before the seasons.
_SERVICE_WEIGHT = {
    "heating": 0.32, "water": 0.06, "drainage": 0.04, "streetlight": 0.04, "noise": 0.10,
    "pollution": 0.04, "garbage": 0.07, "greening": 0.03, "snow": 0.04, "road": 0.06,
    "parking": 0.08, "traffic": 0.05, "property": 0.10, "vendor": 0.06, "pets": 0.04,
    "wage": 0.04, "food": 0.05,
}  # fmt: skip
# Median hours from receipt to a department's answer.
_RESOLUTION_MEDIAN_H = {
    "heating": 18, "water": 10, "drainage": 20, "streetlight": 60, "noise": 40,
    "pollution": 100, "garbage": 20, "greening": 150, "snow": 30, "road": 120, "parking": 50,
    "traffic": 70, "property": 140, "vendor": 30, "pets": 60, "wage": 240, "food": 90,
}  # fmt: skip
# How strongly the weekday rhythm applies (urgent things are reported any day).
_WEEKDAY_EXPONENT = {"heating": 0.3, "water": 0.3, "drainage": 0.3, "snow": 0.3, "noise": 0.0}
_CHANNELS = ("hotline", "web", "app", "grid", "open311")
_CHANNEL_MIX = {
    "default": (0.55, 0.10, 0.15, 0.14, 0.06),
    # things a grid worker sees on patrol
    "patrol": (0.33, 0.07, 0.12, 0.42, 0.06),
    # things only the person affected knows
    "personal": (0.68, 0.10, 0.14, 0.03, 0.05),
}
_CHANNEL_KIND = {
    "garbage": "patrol", "vendor": "patrol", "road": "patrol", "streetlight": "patrol",
    "greening": "patrol", "snow": "patrol",
    "heating": "personal", "water": "personal", "wage": "personal", "food": "personal",
    "property": "personal",
}  # fmt: skip

# Hour-of-day profiles (relative weights, hour 0..23).
_HOURS_DAY = (0.4, 0.25, 0.2, 0.2, 0.25, 0.5, 1.2, 2.8, 5.5, 7.5, 7.8, 7.0,
              5.0, 5.8, 7.0, 7.2, 6.6, 5.6, 4.4, 3.8, 3.2, 2.6, 1.6, 0.8)  # fmt: skip
_HOURS_NIGHT = (3.0, 2.0, 1.0, 0.5, 0.3, 0.3, 0.8, 2.0, 3.0, 3.0, 2.8, 2.5,
                2.2, 2.4, 2.4, 2.4, 2.4, 2.6, 3.4, 4.6, 6.0, 7.0, 6.4, 4.6)  # fmt: skip
_HOURS_HEAT = (1.0, 0.6, 0.5, 0.6, 0.9, 2.0, 4.0, 5.5, 6.5, 6.5, 6.0, 5.0,
               3.8, 4.0, 4.2, 4.4, 4.8, 5.4, 6.2, 6.8, 6.6, 5.2, 3.4, 1.8)  # fmt: skip
_HOURS_SOCIAL = (1.6, 0.9, 0.5, 0.3, 0.3, 0.5, 1.4, 3.2, 4.5, 4.2, 4.0, 4.4,
                 5.6, 4.6, 3.8, 3.8, 4.0, 4.4, 5.0, 6.0, 6.8, 7.2, 6.0, 3.6)  # fmt: skip

# Spring Festival (lunar new year's day), which moves every year.
_SPRING_FESTIVAL = {
    2015: date(2015, 2, 19), 2016: date(2016, 2, 8), 2017: date(2017, 1, 28),
    2018: date(2018, 2, 16), 2019: date(2019, 2, 5), 2020: date(2020, 1, 25),
    2021: date(2021, 2, 12), 2022: date(2022, 2, 1), 2023: date(2023, 1, 22),
    2024: date(2024, 2, 10), 2025: date(2025, 1, 29), 2026: date(2026, 2, 17),
    2027: date(2027, 2, 6), 2028: date(2028, 1, 26), 2029: date(2029, 2, 13),
    2030: date(2030, 2, 3), 2031: date(2031, 1, 23), 2032: date(2032, 2, 11),
    2033: date(2033, 1, 31), 2034: date(2034, 2, 19), 2035: date(2035, 2, 8),
}  # fmt: skip


def spring_festival(year: int) -> date:
    """Lunar new year's day; outside the table, an early-February stand-in."""
    return _SPRING_FESTIVAL.get(year, date(year, 2, 5))


def _days_to_festival(day: date) -> int:
    festival = spring_festival(day.year)
    if festival < day:
        festival = spring_festival(day.year + 1)
    return (festival - day).days


def heating_season(start_year: int) -> tuple[date, date]:
    """The city's heating season that starts in ``start_year``: 1 November to 31 March."""
    return date(start_year, 11, 1), date(start_year + 1, 3, 31)


# --------------------------------------------------------------------------------------------
# Texts (all written for this demo)
# --------------------------------------------------------------------------------------------

_ALL_MONTHS = frozenset(range(1, 13))
_WARM = frozenset({5, 6, 7, 8, 9})
_COLD = frozenset({11, 12, 1, 2, 3})

# service -> [(title, description, months)]; every description names the community.
_CASE_TEMPLATES: dict[str, list[tuple[str, str, frozenset[int]]]] = {
    "heating": [
        ("室温不达标", "{community}{bld}号楼{unit}单元{room}室暖气片不热，室内温度只有{temp}度。"
         "家里有老人和孩子，请尽快派人检查。", _ALL_MONTHS),
        ("暖气不热", "{street}{community}{bld}号楼整栋楼暖气温度低，测了室温{temp}度左右，"
         "已经持续{days}天。给供热公司打过电话，一直没有解决。", _ALL_MONTHS),
        ("供热管道漏水", "{community}{bld}号楼地下室供热管道漏水，楼道里全是水汽。"
         "请供热单位尽快维修。", _ALL_MONTHS),
        ("暖气上水不畅", "{community}{bld}号楼{unit}单元顶层暖气上不来水，室温{temp}度。"
         "物业说是外网的问题，请协调处理。", _ALL_MONTHS),
        ("开栓后暖气仍凉", "{community}{bld}号楼开栓已经{days}天，家里暖气还是凉的。"
         "请供热公司给个说法。", _ALL_MONTHS),
    ],
    "water": [
        ("突然停水", "{community}{bld}号楼从早上{hour2}点开始停水，事先没有任何通知。"
         "请问什么时候恢复？", _ALL_MONTHS),
        ("水压不足", "{community}{bld}号楼{unit}单元高层水压不足，{floor}楼以上基本没有水。",
         _ALL_MONTHS),
        ("水管冻裂", "{community}{bld}号楼室外水管冻裂，大量漏水并结冰，路面很滑。", _COLD),
        ("自来水浑浊", "{community}{bld}号楼自来水有些浑浊，放一会儿才变清，担心水质问题。",
         _ALL_MONTHS),
    ],
    "drainage": [
        ("小区积水", "{community}院内雨后积水很深，{bld}号楼门口积水没过脚踝，居民出行困难。",
         _WARM),
        ("下水道堵塞", "{community}{bld}号楼{unit}单元下水道堵塞，污水从地漏往外返。",
         _ALL_MONTHS),
        ("雨水井堵塞", "{road}靠近{community}的雨水井被杂物堵住，一下雨路面就积水。", _WARM),
        ("地下室进水", "昨夜暴雨，{community}{bld}号楼地下室进水，储藏室的东西都泡了。"
         "请排水部门帮忙抽水。", frozenset({6, 7, 8, 9})),
        ("化雪积水", "{community}门前积雪融化后排不出去，白天积水、晚上结冰。",
         frozenset({3, 4})),
    ],
    "streetlight": [
        ("路灯不亮", "{road}靠近{community}的一段有{n}盏路灯不亮，晚上一片漆黑。", _ALL_MONTHS),
        ("路灯白天常亮", "{road}{community}段的路灯白天也一直亮着，浪费电。", _ALL_MONTHS),
        ("灯杆倾斜", "{community}门前一根路灯杆倾斜，担心倒下伤人。", _ALL_MONTHS),
    ],
    "noise": [
        ("夜间施工噪声", "{community}附近的工地晚上{hour}点以后还在施工，噪声很大，影响休息。"
         "请有关部门查处。", _ALL_MONTHS),
        ("广场舞噪声", "{community}{bld}号楼前的广场每天晚上跳广场舞，音响声音很大，"
         "一直到{hour}点。希望协调降低音量。", _WARM),
        ("装修噪声", "{community}{bld}号楼{unit}单元有住户装修，周末早上七点就开始用电钻。"
         "请物业和有关部门管一管。", _ALL_MONTHS),
        ("烧烤店噪声扰民", "{road}的{shop}夜里经营到凌晨，顾客喧哗，{community}的居民没法入睡。",
         _WARM),
        ("商铺外放音响", "{road}沿街商铺用大喇叭循环播放促销广告，{community}居民不堪其扰。",
         _ALL_MONTHS),
    ],
    "pollution": [
        ("烧煤冒黑烟", "{community}附近一处小锅炉房烧煤冒黑烟，屋里都是煤烟味。",
         frozenset({10, 11, 12, 1, 2, 3, 4})),
        ("焚烧秸秆", "{street}城郊有人焚烧秸秆，浓烟飘到{community}，空气很差。",
         frozenset({3, 4, 5, 9, 10, 11})),
        ("工厂排放异味", "{community}附近的工厂夜里排放刺鼻气体，开窗就能闻到。", _ALL_MONTHS),
        ("工地扬尘", "{road}一处工地没有覆盖防尘网，大风天扬尘严重，{community}居民深受其害。",
         frozenset(range(4, 11))),
    ],
    "garbage": [
        ("垃圾未及时清运", "{community}{bld}号楼旁的垃圾箱已经{days}天没有清运，垃圾满溢，"
         "气味很大。", _ALL_MONTHS),
        ("装修垃圾乱堆", "{community}院内有人倾倒装修垃圾，堆在{bld}号楼后面，一直没人处理。",
         _ALL_MONTHS),
        ("分类垃圾桶破损", "{community}的分类垃圾桶破损，盖子也丢了，请更换。", _ALL_MONTHS),
        ("垃圾站异味", "{street}{community}附近的垃圾中转站异味严重，希望加强清洗消杀。",
         _ALL_MONTHS),
    ],
    "greening": [
        ("树木需修剪", "{community}{bld}号楼前的树长得太高，挡住了低层住户的采光，请修剪。",
         _ALL_MONTHS),
        ("绿地被毁", "{community}有人在公共绿地上私自种菜，破坏绿化。", frozenset(range(4, 11))),
        ("枯树隐患", "{road}靠近{community}有一棵枯树随时可能倒下，存在安全隐患。", _ALL_MONTHS),
        ("杨絮飞舞", "{community}杨树飞絮严重，过敏的人出不了门，希望采取治理措施。",
         frozenset({5, 6})),
    ],
    "snow": [
        ("积雪未清", "{road}{community}段的积雪{days}天没人清理，路面结冰，已经有行人摔倒。",
         _ALL_MONTHS),
        ("人行道结冰", "{community}门前人行道结了厚厚一层冰，老人不敢出门，请撒融雪剂除冰。",
         _ALL_MONTHS),
        ("屋檐冰溜子", "{community}{bld}号楼屋檐挂着很长的冰溜子，随时可能掉下来伤人。",
         _ALL_MONTHS),
        ("清雪堆雪占道", "{road}清下来的雪堆在路边占了一条车道，{community}门口一直没有运走。",
         _ALL_MONTHS),
    ],
    "road": [
        ("路面坑洼", "{road}靠近{community}的路段出现多处坑槽，车辆经过颠簸，晚上有安全隐患。",
         _ALL_MONTHS),
        ("井盖破损", "{community}门前{road}上的井盖破损下沉，请尽快修复，防止行人跌倒。",
         _ALL_MONTHS),
        ("人行道砖松动", "{community}门前人行道地砖松动翘起，老人孩子容易绊倒。", _ALL_MONTHS),
        ("道路塌陷", "{road}{community}段出现一处塌陷，面积约{area}平方米，请尽快围挡维修。",
         _ALL_MONTHS),
    ],
    "parking": [
        ("占用消防通道", "{community}{bld}号楼前的消防通道长期停满车辆，存在安全隐患。",
         _ALL_MONTHS),
        ("乱停车占人行道", "{road}{community}段机动车乱停乱放，占用人行道，行人只能走车道。",
         _ALL_MONTHS),
        ("僵尸车", "{community}{bld}号楼旁有一辆车停了{months}个月没动过，落满灰尘，占用车位。",
         _ALL_MONTHS),
        ("私装地锁", "{community}院内有人私装地锁占用公共车位，请处理。", _ALL_MONTHS),
    ],
    "traffic": [
        ("信号灯故障", "{road}与{road2}交叉口的信号灯不亮，就在{community}附近，车辆抢行很危险。",
         _ALL_MONTHS),
        ("行人绿灯太短", "{road}{community}路口行人绿灯时间太短，老人过马路来不及。", _ALL_MONTHS),
        ("缺少斑马线", "{community}门前学校附近没有斑马线和减速带，孩子上学很不安全。",
         _ALL_MONTHS),
        ("高峰拥堵", "{road}{community}段早晚高峰拥堵严重，希望优化信号配时。", _ALL_MONTHS),
    ],
    "property": [
        ("物业不作为", "{community}的物业公司对楼道卫生和设施维修长期不管，居民意见很大。",
         _ALL_MONTHS),
        ("电梯故障", "{community}{bld}号楼的电梯经常故障，这周已经停了{n2}次，老人上下楼很困难。",
         _ALL_MONTHS),
        ("物业费纠纷", "{community}物业未经业主同意上调物业费，还说不交就停水停电。", _ALL_MONTHS),
        ("楼道灯不亮", "{community}{bld}号楼{unit}单元的楼道灯坏了很久，晚上上下楼看不清。",
         _ALL_MONTHS),
        ("屋顶漏雨", "{community}{bld}号楼屋顶漏雨，申请使用维修资金一直没有进展。", _WARM),
    ],
    "vendor": [
        ("流动摊贩占道", "{road}{community}门口有流动摊贩占道经营，影响通行，还留下不少垃圾。",
         _ALL_MONTHS),
        ("早市占道", "{community}附近的早市摊位摆到了马路上，早上{hour2}点到八点车辆过不去。",
         _ALL_MONTHS),
        ("夜市油烟", "{road}夜市烧烤摊油烟很大，飘进了{community}居民家里。", _WARM),
        ("店外经营", "{road}的{shop}长期在店外摆放桌椅经营，占用{community}门前人行道。",
         _ALL_MONTHS),
    ],
    "pets": [
        ("犬只扰民", "{community}{bld}号楼{unit}单元有住户养大型犬，整夜叫个不停，影响邻居休息。",
         _ALL_MONTHS),
        ("遛狗不拴绳", "{community}有人遛狗不拴绳，狗追着孩子跑，请加强管理。", _ALL_MONTHS),
        ("流浪狗", "{community}附近出现好几只流浪狗，晚上成群出没，居民很害怕。", _ALL_MONTHS),
        ("犬只粪便", "{community}院内犬只粪便随处可见，主人不清理。", _ALL_MONTHS),
    ],
    "wage": [
        ("拖欠工资", "我在{company}打工，被拖欠了{months}个月工资，共计{amount}元。"
         "工地在{street}{community}附近，多次讨要未果。", _ALL_MONTHS),
        ("农民工讨薪", "{company}在{community}附近的工地拖欠{n}名工人的工资。"
         "快过年了，请帮我们讨回血汗钱。", frozenset({11, 12, 1, 2})),
        ("离职工资未结", "从{company}离职后，公司一直不结清最后{months}个月的工资，金额{amount}元。"
         "我住在{community}。", _ALL_MONTHS),
    ],
    "food": [
        ("餐馆卫生差", "{road}的{shop}后厨脏乱，有苍蝇，就在{community}门口，请市场监管部门检查。",
         _ALL_MONTHS),
        ("售卖过期食品", "在{community}附近的{store}买到过期{days}天的食品，商家拒绝退换。",
         _ALL_MONTHS),
        ("就餐后腹泻", "昨天在{community}附近的{shop}吃饭后，家里{n2}人出现腹泻，怀疑食品不卫生。",
         _ALL_MONTHS),
        ("无证经营", "{community}附近的{shop}没有营业执照和健康证，长期经营。", _ALL_MONTHS),
    ],
}  # fmt: skip

# What callers often add at the end (empty: nothing).
_CASE_CLOSINGS = (
    "",
    "",
    "",
    "希望尽快解决。",
    "麻烦尽快处理，谢谢。",
    "之前已经反映过{times}次了。",
    "请相关部门重视。",
    "盼回复。",
)
_SHOP_BRANDS = (
    "老张家",
    "老李家",
    "刘记",
    "王记",
    "福满",
    "聚缘",
    "鑫鑫",
    "红红",
    "好运来",
    "小胖",
)
_SHOP_KINDS = ("烧烤", "饺子馆", "麻辣烫", "饭店", "火锅", "面馆", "砂锅居", "小吃部")
_STORE_KINDS = ("超市", "便利店", "副食店")
_EMPLOYER_KINDS = (
    "建筑工程有限公司", "装饰工程有限公司", "物流有限公司", "餐饮管理有限公司",
    "保安服务有限公司", "家政服务有限公司",
)  # fmt: skip

# Public posts: topic -> (service whose season it follows or None, weight, user texts, official
# texts). Official texts are those of news outlets and government accounts.
_POST_TOPICS: dict[str, tuple[str | None, float, tuple[str, ...], tuple[str, ...]]] = {
    "heating": (
        "heating",
        1.2,
        (
            "又是暖气不热的一天，{community}室温才{temp}度，供热公司电话一直占线。",
            "{district}今年的暖气挺给力，家里{temp2}度，穿短袖都嫌热。",
            "开栓好几天了，我家暖气还是温乎的，{community}有一样的吗？",
            "晚上睡觉得盖两床被，{community}的暖气到底什么时候能热起来。",
        ),
        (
            "【供热】{district}供热服务热线24小时受理室温不达标问题，接诉后限时上门。",
            "【提示】{district}供热单位开展入户测温，{community}等小区已完成排查。",
        ),
    ),
    "water": (
        "water",
        0.6,
        (
            "{community}又停水了，也不提前通知一声。",
            "{community}这两天水压太小，洗澡都费劲。",
        ),
        ("【停水通知】因管网维修，{district}{community}周边明日{hour2}时起临时停水。",),
    ),
    "traffic": (
        "traffic",
        1.0,
        (
            "{road}早高峰堵成停车场，上班又要迟到了。",
            "{road}的红绿灯终于修好了，点赞。",
            "{road}又在修路，绕了一大圈才到家。",
        ),
        ("【出行】{district}{road}部分路段施工，请过往车辆绕行。",),
    ),
    "noise": (
        "noise",
        0.6,
        (
            "楼下广场舞天天跳到{hour}点，{community}的邻居们不累吗？",
            "{community}旁边工地半夜还在打桩，睡不着。",
        ),
        ("【城市管理】{district}开展夜间施工噪声专项整治。",),
    ),
    "snow": (
        "snow",
        0.8,
        (
            "下雪了！{district}一夜之间全白了，环卫工人凌晨就开始清雪，辛苦了。",
            "{road}的雪还没清，早上差点摔一跤。",
        ),
        ("【清雪】{district}出动清雪机械连夜作业，主干道已基本通行。",),
    ),
    "garbage": (
        "garbage",
        0.5,
        (
            "{community}的垃圾分类做得越来越好了，点赞。",
            "{community}门口的垃圾箱满了好几天，没人管。",
        ),
        ("【城市管理】{district}新增{n}处垃圾分类投放点。",),
    ),
    "property": (
        "property",
        0.5,
        ("{community}的物业太差劲了，电梯坏了一周没人修。", "{community}新换的物业挺负责。"),
        ("【住建】{district}开展物业服务质量专项检查。",),
    ),
    "food": (
        None,
        1.0,
        (
            "{road}新开的{shop}味道不错，锅包肉很地道。",
            "周末带孩子去{district}吃了顿铁锅炖，太香了。",
            "{road}的早市人真多，大果子豆浆五块钱吃饱。",
        ),
        ("【美食】{district}{road}美食街开街，二十余家老字号入驻。",),
    ),
    "weather": (
        None,
        0.9,
        (
            "今天松河风好大，出门记得多穿点。",
            "松河的秋天太短了，感觉一眨眼就要入冬。",
            "早上起来一看，{district}起雾了，能见度好低。",
        ),
        ("【天气】松河市气象台发布大风蓝色预警，请市民注意防范。",),
    ),
    "life": (
        None,
        1.1,
        (
            "{district}图书馆周末有免费讲座，带孩子去听了，很不错。",
            "{community}的社区食堂开业了，老人吃饭方便多了。",
            "{district}政务服务中心办事真快，半小时就办完了。",
            "在{community}住了十年，越来越喜欢这里。",
        ),
        (
            "【民生】{district}完成{n}个老旧小区改造，惠及居民{m}户。",
            "【便民】{district}新增{n}处便民停车场，{community}周边停车难有望缓解。",
            "【政务】{district}推行“一窗受理”，群众办事最多跑一次。",
        ),
    ),
}

CRISIS_TOPIC = "自来水发黄、有异味"
_CRISIS_USER = (
    "{district}的自来水怎么是黄色的？还有一股怪味，不敢喝了。",
    "{community}自来水发黄有异味，烧开了还有味道，孩子喝了肚子疼。",
    "有没有{district}的朋友，你们家的水是不是也发黄？有关部门给个说法！",
    "{district}好几个小区自来水都有异味，超市的桶装水都被买空了。",
    "接了一盆水，颜色跟茶水一样，{community}的水到底怎么了？",
    "扩散：{district}的居民暂时别直接喝自来水，等官方通报。",
    "打了水务热线说在排查，{community}的水还是黄的，到底什么原因？",
)
_CRISIS_OFFICIAL = (
    "【关注】网友反映{district}部分区域自来水发黄、有异味，记者已向水务部门求证。",
    "【通报】{district}部分小区自来水水质异常，水务部门正在排查管网，已设置临时供水点。",
)

_WEIBO_PREFIX = ("松河", "冰城", "江畔", "北国", "雪地", "黑土地", "东北", "老城")
_WEIBO_SUFFIX = (
    "小鱼儿", "老张", "吃货", "摄影师", "大叔", "阿姨", "打工人", "宝妈", "跑者", "观察员",
    "小棉袄", "老铁", "青年", "书生",
)  # fmt: skip
_NEWS_AUTHORS = ("松河日报", "松河晚报", "松河广播电视台", "松河新闻网")
_WECHAT_AUTHORS = ("松河发布", "松河生活圈", "松河本地宝")
# government accounts that speak for one kind of topic
_WECHAT_DESK = {
    "water": "松河水务",
    "crisis": "松河水务",
    "traffic": "松河交通",
    "snow": "松河城管",
    "garbage": "松河城管",
    "noise": "松河城管",
    "heating": "松河住建",
    "property": "松河住建",
}
_PLACE_SLOTS = ("{district}", "{community}", "{road}")
_FORUM_STEMS = ("songhe", "binhe", "xuedi", "laosonghe", "heiyang", "beiguo", "dongbei")


# ============================================================================================
# Helpers
# ============================================================================================


def _cuts(lo: float, hi: float, n: int) -> list[float]:
    """n+1 boundaries splitting [lo, hi] evenly, rounded to 6 decimals, ends kept exactly."""
    inner = [round(lo + (hi - lo) * i / n, 6) for i in range(1, n)]
    return [lo, *inner, hi]


def _rect(x0: float, y0: float, x1: float, y1: float) -> dict:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def _split_rect(
    x0: float, y0: float, x1: float, y1: float, cols: int, rows: int
) -> list[tuple[float, float, float, float]]:
    """Cells from the north-west corner, row by row."""
    xs = _cuts(x0, x1, cols)
    ys = _cuts(y0, y1, rows)
    cells = []
    for r in range(rows - 1, -1, -1):
        for c in range(cols):
            cells.append((xs[c], ys[r], xs[c + 1], ys[r + 1]))
    return cells


def _split_long_side(x0: float, y0: float, x1: float, y1: float, n: int):
    """Split into n strips across the longer side (degrees of longitude shrink with latitude)."""
    width = (x1 - x0) * math.cos(math.radians((y0 + y1) / 2))  # in degrees of latitude
    height = y1 - y0
    if width >= height:
        return _split_rect(x0, y0, x1, y1, n, 1)
    return _split_rect(x0, y0, x1, y1, 1, n)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def _quota(n: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder apportionment of n items to shares (which sum to 1)."""
    exact = shares * n
    counts = np.floor(exact).astype(np.int64)
    short = n - int(counts.sum())
    if short:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def _pick(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def _bump(doy: np.ndarray, center: float, width: float) -> np.ndarray:
    """A Gaussian bump on the circular day of year."""
    d = np.abs(doy - center)
    d = np.minimum(d, 365.25 - d)
    return np.exp(-0.5 * (d / width) ** 2)


def _batches(n: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, BATCH):
        yield lo, min(n, lo + BATCH)


# ============================================================================================
# The city
# ============================================================================================


class DemoCity:
    """A deterministic synthetic city. See the module docstring.

    ``start`` .. ``end`` (both inclusive) are the 730 days the cases cover; statuses are as of
    ``as_of``, the midnight that ends ``end``. Posts cover the last 90 of those days.
    """

    def __init__(self, seed: int = 2260, size: str | Size = "small", end: date | None = None):
        if isinstance(size, Size):
            self.size = size
        elif size in SIZES:
            self.size = SIZES[size]
        else:
            raise ValueError(f"unknown size {size!r}; expected one of {sorted(SIZES)}")
        if isinstance(end, datetime):
            end = end.date()
        self.seed = int(seed)
        self.end: date = end or date.today()
        self.start: date = self.end - timedelta(days=SPAN_DAYS - 1)
        self.post_start: date = self.end - timedelta(days=POST_DAYS - 1)
        self.as_of = datetime(self.end.year, self.end.month, self.end.day, tzinfo=TZ) + timedelta(
            days=1
        )

        self.departments: list[DepartmentSpec] = list(DEPARTMENTS)
        self.services: list[ServiceSpec] = list(SERVICES)
        self.areas: list[AreaSpec] = []
        self._build_areas()

        plan = self._rng("plan")
        heated = [d for d in self._districts if self._heated[d]]
        self._build_calendar(plan)
        abnormal_district = heated[int(plan.integers(len(heated)))]
        season_start, season_end = self._second_winter()
        self.abnormal_winter: tuple[str, date, date] = (
            abnormal_district,
            season_start,
            season_end,
        )
        crisis_district = self._districts[int(plan.integers(len(self._districts)))]
        offset = int(plan.integers(30, POST_DAYS - 5))
        crisis_start = self.post_start + timedelta(days=offset)
        self.crisis: tuple[str, date, date, str] = (
            crisis_district,
            crisis_start,
            crisis_start + timedelta(days=2),
            CRISIS_TOPIC,
        )

    # ----------------------------------------------------------------------------------------
    # plumbing
    # ----------------------------------------------------------------------------------------

    _STREAMS = {"plan": 1, "residents": 2, "enterprises": 3, "cases": 4, "posts": 5}

    def _rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, self._STREAMS[stream]])

    # ----------------------------------------------------------------------------------------
    # areas
    # ----------------------------------------------------------------------------------------

    def _build_areas(self) -> None:
        lon0, lat0, lon1, lat1 = BBOX
        areas = self.areas
        areas.append(AreaSpec(CITY_CODE, "city", CITY_ZH, CITY_EN, None, _rect(*BBOX), heated=True))
        self._districts: list[str] = []
        self._heated: dict[str, bool] = {}
        self._area_name: dict[str, str] = {}
        grid_rows = []  # (grid code, district code, street word, community name, bbox)
        street_no = 0
        for d_code, d_word, heated, band, x0, x1 in _DISTRICTS:
            y0, y1 = (_NORTH_SOUTH_CUT, lat1) if band == "north" else (lat0, _NORTH_SOUTH_CUT)
            d_name = d_word + "区"
            areas.append(
                AreaSpec(
                    d_code,
                    "district",
                    d_name,
                    f"{to_pinyin(d_word)} District",
                    CITY_CODE,
                    _rect(x0, y0, x1, y1),
                    heated,
                )
            )
            self._districts.append(d_code)
            self._heated[d_code] = heated
            self._area_name[d_code] = d_name
            # each district draws its 40 community names in a fixed order of its own
            words = list(_COMMUNITY_WORDS)
            np.random.default_rng(int(d_code)).shuffle(words)
            street_cells = _split_rect(x0, y0, x1, y1, 4, 2)
            for s_i, s_cell in enumerate(street_cells):
                s_word = _STREET_WORDS[street_no]
                street_no += 1
                s_code = f"{d_code}{s_i + 1:03d}"
                s_name = s_word + "街道"
                areas.append(
                    AreaSpec(
                        s_code,
                        "street",
                        s_name,
                        f"{to_pinyin(s_word)} Subdistrict",
                        d_code,
                        _rect(*s_cell),
                        heated,
                    )
                )
                self._area_name[s_code] = s_name
                for c_i, c_cell in enumerate(_split_long_side(*s_cell, 5)):
                    c_word = words[s_i * 5 + c_i]
                    c_code = f"{s_code}{c_i + 1:03d}"
                    c_name = c_word + "社区"
                    areas.append(
                        AreaSpec(
                            c_code,
                            "community",
                            c_name,
                            f"{to_pinyin(c_word)} Community",
                            s_code,
                            _rect(*c_cell),
                            heated,
                        )
                    )
                    self._area_name[c_code] = c_name
                    for g_i, g_cell in enumerate(_split_long_side(*c_cell, 5)):
                        g_code = f"{c_code}{g_i + 1:03d}"
                        areas.append(
                            AreaSpec(
                                g_code,
                                "grid",
                                f"第{g_i + 1}网格",
                                f"Grid {g_i + 1}",
                                c_code,
                                _rect(*g_cell),
                                heated,
                            )
                        )
                        grid_rows.append((g_code, d_code, s_code, s_word, c_name, g_cell))

        # Grid arrays used by every stream.
        self._grid_codes = [g[0] for g in grid_rows]
        self._grid_district = np.array([self._districts.index(g[1]) for g in grid_rows])
        self._grid_bbox = np.array([g[5] for g in grid_rows], dtype=float)
        self._grid_community = [g[4] for g in grid_rows]
        self._grid_street = [self._area_name[g[2]] for g in grid_rows]
        self._grid_district_name = [self._area_name[g[1]] for g in grid_rows]
        road_of_street: dict[str, str] = {}
        for i, s_word in enumerate(_STREET_WORDS):
            road_of_street[s_word] = s_word + _ROAD_SUFFIXES[i % len(_ROAD_SUFFIXES)]
        self._grid_road = [road_of_street[g[3]] for g in grid_rows]
        self._district_roads = [
            [road_of_street[w] for w in _STREET_WORDS[8 * k : 8 * k + 8]]
            for k in range(len(_DISTRICTS))
        ]
        # How many people live in each grid: fixed geography, not drawn from the seed.
        geo = np.random.default_rng(int(CITY_CODE))
        weight = geo.gamma(2.0, 1.0, size=len(grid_rows))
        weight *= np.array([_DISTRICT_DENSITY[g[1]] for g in grid_rows])
        self._grid_weight = weight / weight.sum()
        self._district_weight = np.bincount(
            self._grid_district, weights=self._grid_weight, minlength=len(_DISTRICTS)
        )

    def _pick_grids(self, rng: np.random.Generator, districts: np.ndarray) -> np.ndarray:
        """A grid in each given district index, by where people live."""
        out = np.empty(len(districts), dtype=np.int64)
        for k in range(len(self._districts)):
            mask = districts == k
            count = int(mask.sum())
            if not count:
                continue
            idx = np.flatnonzero(self._grid_district == k)
            w = self._grid_weight[idx]
            out[mask] = idx[rng.choice(len(idx), size=count, p=w / w.sum())]
        return out

    # ----------------------------------------------------------------------------------------
    # calendar: weather, events and the seasons of each service
    # ----------------------------------------------------------------------------------------

    def _second_winter(self) -> tuple[date, date]:
        """The latest heating season wholly inside the span (a 730-day span always has one)."""
        for year in range(self.end.year, self.end.year - 3, -1):
            first, last = heating_season(year)
            if first >= self.start and last <= self.end:
                return first, last
        raise AssertionError("a 730-day span always holds a whole heating season")

    def _build_calendar(self, plan: np.random.Generator) -> None:
        days = [self.start + timedelta(days=i) for i in range(SPAN_DAYS)]
        self._days = days
        doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
        month = np.array([d.month for d in days])
        weekday = np.array([d.weekday() for d in days])
        self._month = month
        self._weekday = weekday

        # Daily mean temperature (deg C): a north-eastern climate (-17 in January, +24 in July)
        # with weather as an AR(1) anomaly.
        anomaly = np.zeros(SPAN_DAYS)
        shocks = plan.normal(0.0, 2.0, SPAN_DAYS)
        for i in range(1, SPAN_DAYS):
            anomaly[i] = 0.8 * anomaly[i - 1] + shocks[i]
        temp = 3.5 - 20.5 * np.cos(2 * np.pi * (doy - 17) / 365.25) + anomaly
        self._temperature = temp

        in_heating = np.array([(d.month >= 11 or d.month <= 3) for d in days])
        days_into_season = np.array(
            [(d - date(d.year if d.month >= 11 else d.year - 1, 11, 1)).days for d in days]
        )
        # Storms in the rainy season and snowfalls in winter.
        storm = np.zeros(SPAN_DAYS)
        snowfall = np.zeros(SPAN_DAYS)
        rainy = np.flatnonzero((month >= 6) & (month <= 8))
        cold = np.flatnonzero(in_heating)
        for idx, target, size, decay in (
            (rainy, storm, 0.07, (1.0, 0.4)),
            (cold, snowfall, 0.08, (1.0, 0.6, 0.25)),
        ):
            hits = idx[plan.random(len(idx)) < size]
            for h in hits:
                for lag, strength in enumerate(decay):
                    if h + lag < SPAN_DAYS:
                        target[h + lag] = max(target[h + lag], strength)

        # Spring Festival: the days to the next one, and the holiday week.
        to_festival = np.array([_days_to_festival(d) for d in days])
        since_festival = np.array([(d - spring_festival(d.year)).days for d in days])
        holiday = np.ones(SPAN_DAYS)
        holiday[(since_festival >= -1) & (since_festival <= 6)] = 0.55
        holiday[np.array([d.month == 10 and d.day <= 7 for d in days])] = 0.7
        holiday[np.array([d.month == 1 and d.day == 1 for d in days])] = 0.8
        holiday[np.array([d.month == 5 and d.day <= 5 for d in days])] = 0.8
        self._holiday = holiday

        season: dict[str, np.ndarray] = {}
        cold_extra = np.clip(8.0 - temp, 0.0, None)
        startup = np.where(in_heating, 1.4 * np.exp(-np.clip(days_into_season, 0, None) / 6.0), 0)
        off = np.full(SPAN_DAYS, 0.015)
        off[np.array([d.month == 10 and d.day >= 15 for d in days])] = 0.12
        off[np.array([d.month == 4 and d.day <= 20 for d in days])] = 0.08
        season["heating"] = np.where(in_heating, 0.55 + 0.045 * cold_extra + startup, off)
        season["water"] = 0.9 + 0.45 * _bump(doy, 20, 25) + 0.2 * _bump(doy, 200, 30)
        season["drainage"] = (
            0.35 + 3.0 * _bump(doy, 205, 20) + 0.6 * _bump(doy, 100, 12) + 4.0 * storm
        )
        season["streetlight"] = 1.0 + 0.3 * np.cos(2 * np.pi * (doy - 355) / 365.25)
        season["noise"] = 0.7 + 0.95 * _bump(doy, 200, 40)
        season["pollution"] = 0.8 + 0.6 * in_heating + 1.0 * _bump(doy, 295, 14)
        season["garbage"] = 0.9 + 0.35 * _bump(doy, 205, 40)
        season["greening"] = 0.3 + 1.4 * _bump(doy, 170, 55)
        season["snow"] = np.where(in_heating, 0.35, 0.01) + 3.0 * snowfall
        season["road"] = 0.8 + 0.9 * _bump(doy, 95, 25)
        season["parking"] = np.ones(SPAN_DAYS)
        season["traffic"] = np.ones(SPAN_DAYS) + 0.2 * (snowfall > 0)
        season["property"] = 1.0 + 0.25 * _bump(doy, 310, 15)
        season["vendor"] = 0.6 + 0.8 * _bump(doy, 200, 50)
        season["pets"] = 0.8 + 0.4 * _bump(doy, 140, 60)
        wage_peak = np.exp(-0.5 * ((to_festival - 14) / 9.0) ** 2) * (to_festival >= 2)
        wage = 0.7 + 2.6 * wage_peak
        wage[(since_festival >= -1) & (since_festival <= 8)] *= 0.35
        season["wage"] = wage
        season["food"] = 0.85 + 0.35 * _bump(doy, 200, 45)
        self._season = season

    # ----------------------------------------------------------------------------------------
    # residents
    # ----------------------------------------------------------------------------------------

    def _names(
        self, rng: np.random.Generator, male: np.ndarray, birth_year: np.ndarray
    ) -> list[str]:
        n = len(male)
        surnames = [s for s, _ in _SURNAMES]
        sur = _pick(rng, [w for _, w in _SURNAMES], n)
        era = np.where(birth_year < 1965, 0, np.where(birth_year < 1990, 1, 2))
        c1 = rng.random(n)
        c2 = rng.random(n)
        single = rng.random(n)
        out = []
        eras = ("old", "mid", "young")
        for i in range(n):
            e = eras[era[i]]
            pool = _GIVEN[(e, "M" if male[i] else "F")]
            given = pool[int(c1[i] * len(pool))]
            if single[i] >= _SINGLE_NAME_SHARE[e]:
                given += pool[int(c2[i] * len(pool))]
            out.append(surnames[sur[i]] + given)
        return out

    def residents(self) -> Iterator[list[ResidentSpec]]:
        rng = self._rng("residents")
        n = self.size.residents
        end = self.end
        shares = np.array([s for _, s in AGE_PYRAMID])
        group = np.repeat(np.arange(len(AGE_PYRAMID)), _quota(n, shares))
        group = group[rng.permutation(n)]
        lower = np.array([lo for lo, _ in AGE_PYRAMID])[group]
        age = lower + rng.integers(0, 5, n)
        oldest = group == len(AGE_PYRAMID) - 1  # 85+: ages 85..104, thinning fast
        age[oldest] = 85 + np.minimum(rng.geometric(0.2, int(oldest.sum())) - 1, 19)
        male = rng.random(n) < np.array(_MALE_SHARE)[group]

        # birth date such that the age on `end` is exactly `age`
        max_age = int(age.max()) + 1
        hi = np.array([_years_before(end, a).toordinal() for a in range(max_age + 1)])
        lo = np.array([_years_before(end, a + 1).toordinal() + 1 for a in range(max_age + 1)])
        birth_ord = lo[age] + (rng.random(n) * (hi[age] - lo[age] + 1)).astype(np.int64)
        births = [date.fromordinal(int(o)) for o in birth_ord]
        birth_year = np.array([b.year for b in births])

        grid = self._pick_grids(rng, _pick(rng, self._district_weight, n))
        district = self._grid_district[grid]
        elsewhere = rng.random(n) < _BORN_ELSEWHERE
        other = _pick(rng, [w for _, w in _OTHER_DIVISIONS], n)
        divisions = self._districts + [c for c, _ in _OTHER_DIVISIONS]
        division = np.where(elsewhere, len(self._districts) + other, district)

        # a sequence number whose parity is the gender; no two people share an ID
        sequence = 2 * rng.integers(0, 500, n) + male
        while True:
            key = (division * 1_000_000 + birth_ord) * 1000 + sequence
            _, first = np.unique(key, return_index=True)
            dup = np.ones(n, dtype=bool)
            dup[first] = False
            if not dup.any():
                break
            sequence[dup] = 2 * rng.integers(0, 500, int(dup.sum())) + male[dup]

        rates = np.array(_DISABILITY_RELATIVE)
        rates *= DISABILITY_RATE / float((rates * shares).sum())
        disabled = rng.random(n) < rates[group]
        life = np.where(age < 18, 0, np.where(age < 60, 1, 2))
        kinds = np.empty(n, dtype=np.int64)
        for j, stage in enumerate(("young", "adult", "old")):
            mask = life == j
            kinds[mask] = _pick(rng, _DISABILITY_TYPE_SHARES[stage], int(mask.sum()))
        grade = _pick(rng, _DISABILITY_GRADES, n) + 1

        names = self._names(rng, male, birth_year)
        prefix = _pick(rng, np.ones(len(_MOBILE_PREFIXES)), n)
        line = rng.integers(0, 100_000_000, n)
        bld = rng.integers(1, 37, n)
        unit = rng.integers(1, 7, n)
        floor = rng.integers(1, 19, n)
        room = rng.integers(1, 5, n)

        for a, b in _batches(n):
            batch = []
            for i in range(a, b):
                g = grid[i]
                batch.append(
                    ResidentSpec(
                        id_number=make_resident_id(
                            divisions[division[i]], births[i], int(sequence[i])
                        ),
                        name=names[i],
                        gender="M" if male[i] else "F",
                        birth_date=births[i],
                        disability=DISABILITY_TYPES[kinds[i]] if disabled[i] else None,
                        disability_grade=int(grade[i]) if disabled[i] else None,
                        phone=f"{_MOBILE_PREFIXES[prefix[i]]}{line[i]:08d}",
                        grid_code=self._grid_codes[g],
                        address=(
                            f"{CITY_ZH}{self._grid_district_name[g]}{self._grid_street[g]}"
                            f"{self._grid_community[g]}{bld[i]}号楼{unit[i]}单元"
                            f"{floor[i]}{room[i]:02d}室"
                        ),
                    )
                )
            yield batch

    # ----------------------------------------------------------------------------------------
    # enterprises
    # ----------------------------------------------------------------------------------------

    def enterprises(self) -> Iterator[list[EnterpriseSpec]]:
        rng = self._rng("enterprises")
        n = self.size.enterprises
        end_ord = self.end.toordinal()
        codes = list(_INDUSTRY_PROFILE)
        kind = _pick(rng, (0.62, 0.35, 0.03), n)  # company, sole trader, cooperative
        industry = np.empty(n, dtype=np.int64)
        for k, column in ((0, 0), (1, 1)):
            mask = kind == k
            weights = [_INDUSTRY_PROFILE[c][column] for c in codes]
            industry[mask] = _pick(rng, weights, int(mask.sum()))
        coop = kind == 2
        industry[coop] = np.where(
            rng.random(int(coop.sum())) < 0.7, codes.index("A01"), codes.index("A03")
        )
        # industry clusters a little more in the south; shops follow people
        district_w = self._district_weight * np.array([0.9, 1.0, 1.0, 1.15, 1.2])
        grid = self._pick_grids(rng, _pick(rng, district_w, n))
        age_days = np.minimum(
            rng.exponential(np.where(kind == 1, 5.0, 8.5) * 365.25), 35 * 365.25
        ).astype(np.int64)
        founded_ord = end_ord - age_days
        years = age_days / 365.25
        u = rng.random(n)
        p_cancel = np.minimum(0.02 + 0.012 * years, 0.3)
        p_revoke = np.minimum(0.01 + 0.004 * years, 0.1)
        status = np.where(u < p_cancel, 2, np.where(u < p_cancel + p_revoke, 1, 0))
        statuses = ("active", "revoked", "cancelled")
        capital_sets = (
            (10, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000),
            (1, 2, 3, 5, 10, 20, 30, 50),
            (10, 50, 100, 200, 500),
        )
        capital_w = (
            (6, 8, 14, 22, 14, 8, 12, 8, 4, 2, 1),
            (10, 12, 14, 22, 18, 12, 8, 4),
            (30, 30, 20, 12, 8),
        )
        capital = np.empty(n)
        for k in range(3):
            mask = kind == k
            capital[mask] = np.array(capital_sets[k], dtype=float)[
                _pick(rng, capital_w[k], int(mask.sum()))
            ]
        rep_male = rng.random(n) < 0.68
        rep_year = np.array([date.fromordinal(int(o)).year for o in founded_ord]) - rng.integers(
            25, 56, n
        )
        reps = self._names(rng, rep_male, rep_year)
        picks = rng.random((n, 8))
        body_chars = rng.integers(0, len(USCC_CHARSET), (n, 6))
        body_digits = rng.integers(0, 10, (n, 8))
        reform = date(2015, 10, 1).toordinal()

        used_bodies: set[str] = set()
        used_names: set[str] = set()
        records = []
        for i in range(n):
            code = codes[industry[i]]
            g = grid[i]
            d_code = self._districts[self._grid_district[g]]
            founded = date.fromordinal(int(founded_ord[i]))
            # organisation code body: "MA" + 6 after the 2015 credit-code reform, digits before
            if founded_ord[i] >= reform:
                body = "MA" + "".join(USCC_CHARSET[c] for c in body_chars[i])
            else:
                body = "".join(str(c) for c in body_digits[i])
            bump = 0
            while body in used_bodies:
                bump += 1
                body = body[:-1] + USCC_CHARSET[(USCC_CHARSET.index(body[-1]) + bump) % 31]
            used_bodies.add(body)
            entity_type = "123"[kind[i]]
            uscc = make_uscc("9", entity_type, d_code, body)
            name = self._enterprise_name(kind[i], code, g, reps[i], picks[i], used_names)
            records.append(
                EnterpriseSpec(
                    uscc=uscc,
                    name=name,
                    industry_code=code,
                    grid_code=self._grid_codes[g],
                    founded=founded,
                    registered_capital_10k_yuan=float(capital[i]),
                    legal_representative=reps[i],
                    status=statuses[status[i]],
                )
            )
        for a, b in _batches(n):
            yield records[a:b]

    def _enterprise_name(
        self, kind: int, code: str, grid: int, rep: str, picks: np.ndarray, used: set[str]
    ) -> str:
        company_words, shop_words = _INDUSTRY_PROFILE[code][2], _INDUSTRY_PROFILE[code][3]
        district = self._grid_district_name[grid]
        for attempt in range(50):
            f = _BRAND_FIRST[int(picks[0] * 30 + attempt * 7) % 30]
            s = _BRAND_SECOND[int(picks[1] * 30 + attempt * 11) % 30]
            brand = f + s if f != s else f + "盛"
            if kind == 1 and shop_words:
                word = shop_words[int(picks[2] * len(shop_words))]
                owner = rep[0] + "记" if picks[3] < 0.5 else brand
                name = f"{district}{owner}{word}"
                if attempt:
                    name = f"{district}{brand}{word}"
            elif kind == 2:
                crop = ("种植", "养殖", "农机")[int(picks[2] * 3)]
                name = f"{CITY_ZH}{district[:-1]}{brand}{crop}专业合作社"
            else:
                word = company_words[int(picks[2] * len(company_words))]
                form = "有限公司" if picks[4] < 0.85 else "有限责任公司"
                prefix = CITY_ZH[:-1] if picks[5] < 0.6 else CITY_ZH
                name = f"{prefix}{brand}{word}{form}"
            if name not in used:
                used.add(name)
                return name
        name = f"{name}（{len(used)}）"
        used.add(name)
        return name

    # ----------------------------------------------------------------------------------------
    # cases
    # ----------------------------------------------------------------------------------------

    def _case_intensity(self) -> np.ndarray:
        """Expected relative volume per (day, service, district)."""
        n_dist = len(self._districts)
        weekday_base = np.array([1.12, 1.06, 1.03, 1.0, 0.97, 0.72, 0.68])[self._weekday]
        trend = 1.0 + 0.15 * np.arange(SPAN_DAYS) / (SPAN_DAYS - 1)
        heated = np.array([self._heated[d] for d in self._districts])
        out = np.empty((SPAN_DAYS, len(SERVICES), n_dist))
        for s_i, service in enumerate(SERVICES):
            code = service.code
            exponent = _WEEKDAY_EXPONENT.get(code, 1.0)
            per_day = (
                _SERVICE_WEIGHT[code]
                * self._season[code]
                * weekday_base**exponent
                * self._holiday**exponent
                * trend
            )
            if code == "noise":  # more on weekend nights
                per_day = per_day * np.where(self._weekday >= 5, 1.15, 1.0)
            district = self._district_weight.copy()
            if code == "heating":
                district = district * np.where(heated, 1.0, 0.02)
            out[:, s_i, :] = per_day[:, None] * district[None, :]
        # the one abnormal winter
        a_code, a_start, a_end = self.abnormal_winter
        k = self._districts.index(a_code)
        i0, i1 = (a_start - self.start).days, (a_end - self.start).days
        out[i0 : i1 + 1, _SERVICE_INDEX["heating"], k] *= 3.0
        # the water crisis also reaches the hotline
        c_code, c_start, c_end, _ = self.crisis
        k = self._districts.index(c_code)
        i0, i1 = (c_start - self.start).days, (c_end - self.start).days
        out[i0 : i1 + 1, _SERVICE_INDEX["water"], k] *= 8.0
        return out

    def cases(self) -> Iterator[list[CaseSpec]]:
        rng = self._rng("cases")
        n = self.size.cases
        shape = (SPAN_DAYS, len(SERVICES), len(self._districts))
        intensity = self._case_intensity() * rng.lognormal(0.0, 0.15, shape)
        counts = rng.multinomial(n, (intensity / intensity.sum()).ravel())
        cell = np.repeat(np.arange(counts.size), counts)
        day, rest = np.divmod(cell, shape[1] * shape[2])
        service, district = np.divmod(rest, shape[2])

        # time of day by what kind of trouble it is
        hour = np.empty(n, dtype=np.int64)
        profile_of = np.zeros(n, dtype=np.int64)
        profile_of[service == _SERVICE_INDEX["noise"]] = 1
        profile_of[service == _SERVICE_INDEX["heating"]] = 2
        for j, profile in enumerate((_HOURS_DAY, _HOURS_NIGHT, _HOURS_HEAT)):
            mask = profile_of == j
            hour[mask] = _pick(rng, profile, int(mask.sum()))
        second = hour * 3600 + rng.integers(0, 3600, n)
        order = np.lexsort((second, day))
        day, service, district, second = day[order], service[order], district[order], second[order]

        grid = self._pick_grids(rng, district)
        box = self._grid_bbox[grid]
        margin_x = rng.uniform(0.02, 0.98, n)
        margin_y = rng.uniform(0.02, 0.98, n)
        lon = np.round(box[:, 0] + (box[:, 2] - box[:, 0]) * margin_x, 6)
        lat = np.round(box[:, 1] + (box[:, 3] - box[:, 1]) * margin_y, 6)

        channel = np.empty(n, dtype=np.int64)
        kind_of_service = np.array(
            [("default", "patrol", "personal").index(_CHANNEL_KIND.get(s.code, "default"))
             for s in SERVICES]
        )[service]  # fmt: skip
        for j, kind in enumerate(("default", "patrol", "personal")):
            mask = kind_of_service == j
            channel[mask] = _pick(rng, _CHANNEL_MIX[kind], int(mask.sum()))

        # handling: answered after a lognormal time; a few cases get stuck
        created_s = day * 86400 + second  # seconds since the start of the span
        as_of_s = SPAN_DAYS * 86400
        age_h = (as_of_s - created_s) / 3600.0
        median = np.array([_RESOLUTION_MEDIAN_H[s.code] for s in SERVICES], dtype=float)[service]
        a_code, a_start, a_end = self.abnormal_winter
        abnormal = (
            (service == _SERVICE_INDEX["heating"])
            & (district == self._districts.index(a_code))
            & (day >= (a_start - self.start).days)
            & (day <= (a_end - self.start).days)
        )
        median = np.where(abnormal, median * 2.5, median)
        resolve_h = median * rng.lognormal(0.0, 0.7, n)
        confirm_h = rng.exponential(20.0, n)
        intake_h = rng.exponential(1.0, n)
        dispatch_h = intake_h + rng.exponential(5.0, n)
        stuck = rng.random(n) < 0.012
        resolved = (resolve_h <= age_h) & ~stuck
        closed = resolved & (resolve_h + confirm_h <= age_h)
        status = np.where(
            closed,
            0,
            np.where(
                resolved, 1, np.where(age_h < intake_h, 4, np.where(age_h < dispatch_h, 3, 2))
            ),
        )
        statuses = ("closed", "resolved", "in_progress", "dispatched", "new")
        close_s = created_s + ((resolve_h + confirm_h) * 3600).astype(np.int64)
        sla_h = np.array([s.sla_working_days * 24 * 7 / 5 for s in SERVICES])[service]
        late = (resolve_h > sla_h) | abnormal
        answered = closed & (rng.random(n) < 0.85)
        on_time_score = _pick(rng, (0.02, 0.03, 0.07, 0.25, 0.63), n) + 1
        late_score = _pick(rng, (0.16, 0.16, 0.26, 0.24, 0.18), n) + 1
        score = np.where(late, late_score, on_time_score)

        # tracking numbers: SH + date + sequence within the day
        first_of_day = np.searchsorted(day, day, side="left")
        seq = np.arange(n) - first_of_day + 1

        # text slots
        template_pick = rng.random(n).tolist()
        slots = {
            "bld": rng.integers(1, 37, n),
            "unit": rng.integers(1, 7, n),
            "floor": rng.integers(2, 19, n),
            "room_no": rng.integers(1, 5, n),
            "temp": rng.integers(9, 17, n),
            "days": rng.integers(2, 11, n),
            "months": rng.integers(1, 7, n),
            "pay": rng.integers(25, 61, n),
            "n": rng.integers(2, 13, n),
            "n2": rng.integers(2, 5, n),
            "hour": rng.integers(9, 12, n),
            "hour2": rng.integers(5, 9, n),
            "area": rng.integers(2, 13, n),
            "road2": rng.integers(0, 8, n),
            "shop_brand": rng.integers(0, len(_SHOP_BRANDS), n),
            "shop_kind": rng.integers(0, len(_SHOP_KINDS), n),
            "store_kind": rng.integers(0, len(_STORE_KINDS), n),
            "employer": rng.integers(0, 30 * 30, n),
            "employer_kind": rng.integers(0, len(_EMPLOYER_KINDS), n),
            "closing": rng.integers(0, len(_CASE_CLOSINGS), n),
            "times": rng.integers(2, 6, n),
        }
        # plain Python values from here on: faster to index, and exact ints for the records
        columns = (service, grid, day, district, second, seq, channel, status)
        service, grid, day, district, second, seq, channel, status = (c.tolist() for c in columns)
        lon, lat, close_s, score, answered = (
            c.tolist() for c in (lon, lat, close_s, score, answered)
        )
        eligible = {
            (s.code, m): [t for t in _CASE_TEMPLATES[s.code] if m in t[2]]
            or _CASE_TEMPLATES[s.code]
            for s in SERVICES
            for m in range(1, 13)
        }

        day_base = [datetime(d.year, d.month, d.day, tzinfo=TZ) for d in self._days]
        start_dt = day_base[0]
        day_stamp = [d.strftime("%Y%m%d") for d in self._days]
        months = self._month.tolist()
        sl = {key: values.tolist() for key, values in slots.items()}
        for a, b in _batches(n):
            batch = []
            for i in range(a, b):
                s_code = SERVICES[service[i]].code
                g = grid[i]
                d = day[i]
                choices = eligible[(s_code, months[d])]
                title, text, _ = choices[int(template_pick[i] * len(choices))]
                roads = self._district_roads[district[i]]
                road = self._grid_road[g]
                road2 = roads[sl["road2"][i]]
                if road2 == road:
                    road2 = roads[(sl["road2"][i] + 1) % len(roads)]
                employer = sl["employer"][i]
                company = (
                    CITY_ZH[:-1]
                    + _BRAND_FIRST[employer // 30]
                    + _BRAND_SECOND[employer % 30]
                    + _EMPLOYER_KINDS[sl["employer_kind"][i]]
                )
                shop_brand = _SHOP_BRANDS[sl["shop_brand"][i]]
                description = text.format(
                    community=self._grid_community[g],
                    street=self._grid_street[g],
                    road=road,
                    road2=road2,
                    bld=sl["bld"][i],
                    unit=sl["unit"][i],
                    room=f"{sl['floor'][i]}{sl['room_no'][i]:02d}",
                    floor=sl["floor"][i],
                    temp=sl["temp"][i],
                    days=sl["days"][i],
                    months=sl["months"][i],
                    amount=sl["months"][i] * sl["pay"][i] * 100,
                    n=sl["n"][i],
                    n2=sl["n2"][i],
                    hour=sl["hour"][i],
                    hour2=sl["hour2"][i],
                    area=sl["area"][i],
                    shop=shop_brand + _SHOP_KINDS[sl["shop_kind"][i]],
                    store=shop_brand + _STORE_KINDS[sl["store_kind"][i]],
                    company=company,
                ) + _CASE_CLOSINGS[sl["closing"][i]].format(times=sl["times"][i])
                st = status[i]
                batch.append(
                    CaseSpec(
                        tracking_no=f"SH{day_stamp[d]}{seq[i]:05d}",
                        channel=_CHANNELS[channel[i]],
                        service_code=s_code,
                        title=title,
                        description=description,
                        created_at=day_base[d] + timedelta(seconds=second[i]),
                        grid_code=self._grid_codes[g],
                        lon=lon[i],
                        lat=lat[i],
                        status=statuses[st],
                        closed_at=start_dt + timedelta(seconds=close_s[i]) if st == 0 else None,
                        satisfaction=score[i] if answered[i] else None,
                    )
                )
            yield batch

    # ----------------------------------------------------------------------------------------
    # posts
    # ----------------------------------------------------------------------------------------

    def posts(self) -> Iterator[list[PostSpec]]:
        rng = self._rng("posts")
        n = self.size.posts
        c_code, c_start, c_end, _ = self.crisis
        n_crisis = min(max(120, round(0.04 * n)), n // 2)
        n_plain = n - n_crisis
        first = SPAN_DAYS - POST_DAYS  # index of post_start in the span
        topics = list(_POST_TOPICS)
        weekday = np.array([1.0, 1.0, 1.0, 1.0, 1.05, 1.15, 1.15])[self._weekday[first:]]
        trend = 1.0 + 0.002 * np.arange(POST_DAYS)
        heated_share = sum(
            w
            for d, w in zip(self._districts, self._district_weight, strict=True)
            if self._heated[d]
        )
        columns = []
        for topic in topics:
            service, weight, _, _ = _POST_TOPICS[topic]
            curve = self._season[service][first:] if service else np.ones(POST_DAYS)
            if service == "heating":
                curve = curve * heated_share
            columns.append(weight * curve)
        intensity = np.stack(columns, axis=1) * (weekday * trend)[:, None]
        intensity *= rng.lognormal(0.0, 0.2, intensity.shape)
        counts = rng.multinomial(n_plain, (intensity / intensity.sum()).ravel())
        cell = np.repeat(np.arange(counts.size), counts)
        day, topic = np.divmod(cell, len(topics))

        # the crisis: three days rising and falling, all about one district
        c0 = (c_start - self.post_start).days
        crisis_day = c0 + _pick(rng, (0.3, 0.45, 0.25), n_crisis)
        day = np.concatenate([day, crisis_day])
        topic = np.concatenate([topic, np.full(n_crisis, -1)])
        is_crisis = topic < 0

        source = _pick(rng, (0.45, 0.15, 0.20, 0.20), n)  # weibo, news, forum, wechat
        sources = ("weibo", "news", "forum", "wechat")
        official = (source == 1) | ((source == 3) & (rng.random(n) < 0.5))

        district = _pick(rng, self._district_weight, n)
        heated_idx = np.array([i for i, d in enumerate(self._districts) if self._heated[d]])
        heat_posts = topic == topics.index("heating")
        hw = self._district_weight[heated_idx]
        district[heat_posts] = heated_idx[_pick(rng, hw, int(heat_posts.sum()))]
        district[is_crisis] = self._districts.index(c_code)
        grid = self._pick_grids(rng, district)

        hour = _pick(rng, _HOURS_SOCIAL, n)
        second = hour * 3600 + rng.integers(0, 3600, n)
        order = np.lexsort((second, day))

        reach_median = np.array([300.0, 40000.0, 800.0, 3000.0])[source]
        reach = reach_median * rng.lognormal(0.0, 1.3, n)
        repost_rate = 0.004 * rng.lognormal(0.0, 0.8, n)
        reach = np.where(is_crisis, reach * 6.0, reach)
        repost_rate = np.where(is_crisis, repost_rate * 15.0, repost_rate)
        reach = np.maximum(reach.astype(np.int64), 1)
        reposts = rng.binomial(reach, np.minimum(repost_rate, 0.5))

        text_pick = rng.random(n)
        handle = rng.integers(0, 1_000_000, n)
        slot_n = rng.integers(3, 21, n)
        slot_m = rng.integers(800, 6001, n)
        slot_temp = rng.integers(11, 17, n)
        slot_temp2 = rng.integers(22, 27, n)
        slot_hour = rng.integers(9, 12, n)
        slot_hour2 = rng.integers(7, 10, n)
        slot_shop = rng.integers(0, len(_SHOP_BRANDS) * len(_SHOP_KINDS), n)

        day_base = [datetime(d.year, d.month, d.day, tzinfo=TZ) for d in self._days[first:]]
        day_stamp = [d.strftime("%Y%m%d") for d in self._days[first:]]
        sorted_day = day[order]
        first_of_day = np.searchsorted(sorted_day, sorted_day, side="left")

        records = []
        for rank, i in enumerate(order):
            src = sources[source[i]]
            if is_crisis[i]:
                pool = _CRISIS_OFFICIAL if official[i] else _CRISIS_USER
            else:
                _, _, user_texts, official_texts = _POST_TOPICS[topics[topic[i]]]
                pool = official_texts if official[i] else user_texts
            g = grid[i]
            shop = slot_shop[i]
            template = pool[int(text_pick[i] * len(pool))]
            # a post is placed in a district exactly when its text names a place there
            located = any(slot in template for slot in _PLACE_SLOTS)
            text = template.format(
                district=self._grid_district_name[g],
                community=self._grid_community[g],
                road=self._grid_road[g],
                shop=_SHOP_BRANDS[shop // len(_SHOP_KINDS)] + _SHOP_KINDS[shop % len(_SHOP_KINDS)],
                n=slot_n[i],
                m=slot_m[i],
                temp=slot_temp[i],
                temp2=slot_temp2[i],
                hour=slot_hour[i],
                hour2=slot_hour2[i],
            )
            if src == "weibo" and not official[i] and handle[i] % 3 == 0:
                text = f"#{CITY_ZH}# {text}"
            topic_name = "crisis" if is_crisis[i] else topics[topic[i]]
            author = self._post_author(src, official[i], topic_name, g, int(handle[i]))
            d = day[i]
            records.append(
                PostSpec(
                    post_id=f"P{day_stamp[d]}{rank - first_of_day[rank] + 1:05d}",
                    source=src,
                    author=author,
                    text=text,
                    created_at=day_base[d] + timedelta(seconds=int(second[i])),
                    reach=int(reach[i]),
                    reposts=int(reposts[i]),
                    area_code=self._districts[district[i]] if located else None,
                    lang="zh",
                )
            )
        for a, b in _batches(n):
            yield records[a:b]

    def _post_author(self, source: str, official: bool, topic: str, grid: int, h: int) -> str:
        if source == "news":
            return _NEWS_AUTHORS[h % len(_NEWS_AUTHORS)]
        if source == "wechat" and official:
            if h % 3 == 0:
                return self._grid_district_name[grid] + "融媒"
            if h % 3 == 1 and topic in _WECHAT_DESK:
                return _WECHAT_DESK[topic]
            return _WECHAT_AUTHORS[h % len(_WECHAT_AUTHORS)]
        if source == "forum":
            return f"{_FORUM_STEMS[h % len(_FORUM_STEMS)]}_{h // 7 % 10000}"
        tail = f"{h // 97 % 1000}" if h % 2 else ""
        return _WEIBO_PREFIX[h % len(_WEIBO_PREFIX)] + _WEIBO_SUFFIX[h // 11 % 14] + tail
