"""Normalisation: the forms departments write a value in give one comparable column, and nothing
invalid is silently repaired. Area tests run on the demo city's real gazetteer."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from civicpulse.identity import normalise
from civicpulse.identity.checks import check_resident_id
from civicpulse.identity.identifiers import make_resident_id, make_uscc
from civicpulse.identity.normalise import (
    COLUMNS,
    Gazetteer,
    address,
    name,
    phone,
    pinyin,
    problems,
    sound_key,
)

# ------------------------------------------------------------------ names


@pytest.mark.parametrize("written", ["张伟", "张 伟", "张\u3000伟", " 张伟 "])
def test_spaces_and_ideographic_spaces_vanish_from_names(written):
    assert name(written) == "张伟"


def test_full_width_latin_names_fold_to_lower_case_ascii():
    assert name("ＺＨＡＮＧ Ｗｅｉ") == "zhangwei"
    assert name("Zhang Wei") == name("ZHANG  wei") == "zhangwei"


def test_transliterated_names_lose_their_separator_dots():
    assert name("阿依·买买提") == name("阿依•买买提") == name("阿依.买买提") == "阿依买买提"


@pytest.mark.parametrize("written", ["张伟", "Zhang Wei", "ZHANG  wei", "zhang-wei", "张 伟"])
def test_han_and_latin_spellings_share_one_pinyin(written):
    assert pinyin(written, surname=True) == "zhangwei"


@pytest.mark.parametrize(
    ("written", "reading"),
    [
        ("单伟", "shanwei"),
        ("曾敏", "zengmin"),
        ("解放", "xiefang"),
        ("仇军", "qiujun"),
        ("区丽", "ouli"),
        ("尉迟恭", "yuchigong"),
    ],
)
def test_heteronym_surnames_take_their_surname_reading(written, reading):
    assert pinyin(written, surname=True) == reading


def test_the_surname_reading_applies_only_to_names():
    # 单 in an ordinary word reads dan; only a person's surname reads shan
    assert pinyin("单位") == "danwei"
    assert pinyin("单伟", surname=True) == "shanwei"


def test_homophone_characters_share_a_sound_key():
    assert sound_key("张伟") == sound_key("章伟") == sound_key("Zhang Wei")
    assert pinyin("李") == pinyin("黎") == "li"
    assert sound_key("李娜") == sound_key("黎娜")


def test_different_syllables_keep_different_pinyin_and_sounds():
    # 刘 liu and 牛 niu are different pinyin; only the n/l fold of the sound key joins them
    assert pinyin("刘") != pinyin("牛")
    assert sound_key("刘") == sound_key("牛")
    assert sound_key("刘伟") != sound_key("王伟")
    assert sound_key("张伟") != sound_key("张威威")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("zhang", "zang"),  # zh/z
        ("chen", "cen"),  # ch/c
        ("shan", "san"),  # sh/s
        ("nan", "lan"),  # n/l
        ("wang", "wan"),  # ang/an
        ("feng", "fen"),  # eng/en
        ("ming", "min"),  # ing/in
    ],
)
def test_accent_confusions_fold_in_the_sound_key(a, b):
    assert sound_key(a) == sound_key(b)


def test_u_umlaut_is_written_v_in_pinyin_and_folds_with_u():
    assert pinyin("吕红", surname=True) == pinyin("Lü Hong", surname=True) == "lvhong"
    assert sound_key("吕红") == sound_key("Lu Hong")


def test_english_names_are_lower_case_letters():
    assert pinyin("Mary O'Brien") == "maryobrien"
    assert name("Mary O'Brien") == "maryobrien"


@pytest.mark.parametrize("missing", [None, "", "   ", float("nan"), pd.NA, pd.NaT])
def test_missing_names_are_none(missing):
    assert name(missing) is None and pinyin(missing) is None and sound_key(missing) is None


# ------------------------------------------------------------------ names with a title


@pytest.mark.parametrize(
    ("said", "kept", "reading"),
    [
        ("张先生", "张", "zhang"),
        ("李女士", "李", "li"),
        ("王阿姨", "王", "wang"),
        ("刘师傅", "刘", "liu"),
        ("赵大爷", "赵", "zhao"),
        ("孙大妈", "孙", "sun"),
        ("陈小姐", "陈", "chen"),
        ("周太太", "周", "zhou"),
        ("吴老师", "吴", "wu"),
        ("郑同志", "郑", "zheng"),
        ("张老先生", "张", "zhang"),  # the longer title, not 张老 + 先生
        ("老王", "王", "wang"),
        ("小李", "李", "li"),
        ("小王师傅", "王", "wang"),
        ("张 先生", "张", "zhang"),
        ("单女士", "单", "shan"),  # the surname's reading, not dan
        ("曾先生", "曾", "zeng"),
        ("欧阳先生", "欧阳", "ouyang"),
        ("诸葛女士", "诸葛", "zhuge"),
        ("司马阿姨", "司马", "sima"),
    ],
)
def test_a_surname_with_a_title_keeps_only_the_surname(said, kept, reading):
    row = normalise.resident({"name": said})
    assert row["name"] == kept
    assert row["surname_only"] == "1"
    assert row["name_pinyin"] == row["surname_pinyin"] == reading
    assert row["name_sound"] == sound_key(kept)


@pytest.mark.parametrize(
    ("said", "kept", "reading"),
    [
        ("Mr Zhang", "zhang", "zhang"),
        ("Mr. Zhang", "zhang", "zhang"),
        ("MRS LI", "li", "li"),
        ("Ms. Wang", "wang", "wang"),
        ("Miss Chen", "chen", "chen"),
        ("Mr O'Brien", "obrien", "obrien"),
        ("ＭＲ ＺＨＡＮＧ", "zhang", "zhang"),
    ],
)
def test_english_titles_with_a_surname_keep_only_the_surname(said, kept, reading):
    row = normalise.resident({"name": said})
    assert (row["name"], row["surname_only"], row["surname_pinyin"]) == (kept, "1", reading)


@pytest.mark.parametrize(
    ("written", "kept", "reading"),
    [
        ("张伟", "张伟", "zhang"),
        ("张伟先生", "张伟", "zhang"),  # a whole name with a title is still a whole name
        ("Mr. Zhang Wei", "zhangwei", "zhang"),
        ("Zhang Wei", "zhangwei", "zhang"),
        ("欧阳锋", "欧阳锋", "ouyang"),
        ("诸葛亮", "诸葛亮", "zhuge"),
        ("司马光", "司马光", "sima"),
        ("单伟", "单伟", "shan"),
        ("尉迟恭", "尉迟恭", "yuchi"),
        ("长孙无忌", "长孙无忌", "zhangsun"),
    ],
)
def test_whole_names_are_not_surname_only_and_give_their_surname_reading(written, kept, reading):
    row = normalise.resident({"name": written})
    assert (row["name"], row["surname_only"], row["surname_pinyin"]) == (kept, None, reading)


def test_a_pet_name_after_xiao_is_not_a_surname():
    # 小明 is a pet name: 明 after 小 is not read as a surname (only common surnames are)
    row = normalise.resident({"name": "小明"})
    assert row["name"] == "小明" and row["surname_only"] is None


@pytest.mark.parametrize("said", ["先生", "女士", "老师", "Mr.", "Ms"])
def test_a_title_alone_names_nobody(said):
    row = normalise.resident({"name": said})
    assert row["name"] is row["name_pinyin"] is row["surname_pinyin"] is row["surname_only"] is None


def test_a_one_word_latin_name_has_no_surname_to_tell():
    row = normalise.resident({"name": "Zhangwei"})
    assert row["name"] == "zhangwei" and row["surname_pinyin"] is None
    assert row["surname_only"] is None


def test_the_title_is_not_part_of_a_legal_representatives_pinyin():
    row = normalise.enterprise({"name": "鑫源商贸有限公司", "legal_representative": "王先生"})
    assert (row["legal_rep"], row["legal_rep_pinyin"]) == ("王", "wang")


def test_the_name_as_given_is_not_altered():
    attrs = {"name": "张先生"}
    normalise.resident(attrs)
    assert attrs == {"name": "张先生"}


# ------------------------------------------------------------------ phones


@pytest.mark.parametrize(
    "written",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+86 138-0013-8000",
        "+8613800138000",
        "0086 13800138000",
        "8613800138000",
        "(+86) 138 0013 8000",
        "１３８００１３８０００",
    ],
)
def test_mobiles_in_many_forms_give_the_bare_eleven_digits(written):
    assert phone(written) == "13800138000"


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("010-12345678", "01012345678"),
        ("(0451) 8888 6666", "045188886666"),
        ("+86 10 1234 5678", "01012345678"),
        ("0451-88886666", "045188886666"),
        ("88886666", "88886666"),  # a local number: no area code to invent
    ],
)
def test_landlines_keep_their_area_code(written, digits):
    assert phone(written) == digits


@pytest.mark.parametrize("garbage", ["abc", "12", "138001380001234", "无", "1380013800O", "²³"])
def test_garbage_phones_are_none_and_a_problem(garbage):
    assert phone(garbage) is None
    found = problems("resident", {"phone": garbage})
    assert [p["field"] for p in found] == ["phone"]
    assert found[0]["code"] in {"characters", "length", "prefix"} and found[0]["reason"]


# ------------------------------------------------------------------ identifiers, dates, gender


def test_a_valid_id_gives_its_parts_birth_date_and_gender():
    number = make_resident_id("239901", date(1980, 1, 2), 123)
    row = normalise.resident({"name": "张伟", "id_number": number})
    assert row["id_valid"] == "1"
    assert row["id_division"] == "239901"
    assert row["id_birth"] == "19800102"
    assert row["id_sequence"] == "123"
    assert row["birth_date"] == "1980-01-02"
    assert row["gender"] == "M"  # 123 is odd


def test_an_attribute_birth_date_and_gender_win_over_the_id():
    number = make_resident_id("239901", date(1980, 1, 2), 124)
    row = normalise.resident({"id_number": number, "birth_date": "1980/1/3", "gender": "男"})
    assert (row["birth_date"], row["gender"]) == ("1980-01-03", "M")


def test_an_invalid_id_is_reported_with_its_reason_and_kept_as_written():
    valid = make_resident_id("239901", date(1980, 1, 2), 123)
    swapped = valid[:8] + valid[9] + valid[8] + valid[10:]  # two digits swapped
    assert swapped != valid and not check_resident_id(swapped).valid
    attrs = {"name": "张伟", "id_number": f" {swapped[:6]} {swapped[6:]}"}
    row = normalise.resident(attrs)
    assert row["id_number"] == swapped  # spaces gone, digits untouched
    assert row["id_valid"] == "0"
    assert row["id_division"] == swapped[:6] and row["id_birth"] == swapped[6:14]
    assert row["birth_date"] is None and row["gender"] is None  # nothing derived from a bad ID
    found = problems("resident", attrs)
    assert found == [
        {
            "field": "id_number",
            "code": check_resident_id(swapped).code,
            "reason": check_resident_id(swapped).reason,
        }
    ]
    assert attrs["id_number"] == f" {swapped[:6]} {swapped[6:]}"  # the input is not altered


@pytest.mark.parametrize(
    ("value", "code"),
    [("12345", "length"), ("11010519800102123", "length"), ("110105198013021234", "birth_date")],
)
def test_each_kind_of_bad_id_has_its_code(value, code):
    assert problems("resident", {"id_number": value})[0]["code"] == code


def test_a_lower_case_x_and_full_width_digits_are_read_not_repaired():
    first = make_resident_id("239901", date(1990, 5, 6), 11)
    if not first.endswith("X"):
        first = next(
            make_resident_id("239901", date(1990, 5, 6), s)
            for s in range(0, 999, 2)
            if make_resident_id("239901", date(1990, 5, 6), s).endswith("X")
        )
    written = first[:-1].translate({c: c + 0xFEE0 for c in range(0x30, 0x3A)}) + "x"
    row = normalise.resident({"id_number": written})
    assert row["id_number"] == first and row["id_valid"] == "1"
    assert problems("resident", {"id_number": written}) == []


def test_credit_codes_are_checked_and_split():
    code = make_uscc("9", "1", "239901", "MA1234567"[:8])
    row = normalise.enterprise({"name": "松河鑫源商贸有限公司", "uscc": code.lower()})
    assert row["uscc"] == code and row["uscc_valid"] == "1"
    assert row["uscc_division"] == "239901" and row["uscc_org"] == code[8:17]
    broken = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert normalise.enterprise({"uscc": broken})["uscc_valid"] == "0"
    assert problems("enterprise", {"uscc": broken})[0]["field"] == "uscc"


@pytest.mark.parametrize(
    "written",
    ["1980-01-02", "1980/1/2", "19800102", "1980年1月2日", "1980.01.02", date(1980, 1, 2)],
)
def test_birth_dates_in_written_forms(written):
    assert normalise.birth_date(written) == "1980-01-02"


@pytest.mark.parametrize("bad", ["1980-02-30", "yesterday", "", None])
def test_impossible_birth_dates_are_none(bad):
    assert normalise.birth_date(bad) is None


def test_every_column_is_present_and_text_or_none():
    row = normalise.resident({})
    assert list(row) == COLUMNS["resident"] and set(row.values()) == {None}
    row = normalise.enterprise({"name": "鑫源商贸有限公司", "industry_code": "f52"})
    assert list(row) == COLUMNS["enterprise"]
    assert all(v is None or isinstance(v, str) for v in row.values())
    assert row["industry_code"] == "F52"


def test_problems_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown kind"):
        problems("vehicle", {})


# ------------------------------------------------------------------ enterprise names


@pytest.mark.parametrize(
    "written",
    [
        "松河市鑫源商贸有限公司",
        "松河鑫源商贸有限责任公司",
        "鑫源商贸有限公司",
        "鑫源商贸",
        "鑫源 商贸 有限公司",
    ],
)
def test_enterprise_names_share_a_core(written, small_gazetteer):
    assert normalise.enterprise_core(written, small_gazetteer) == "鑫源商贸"


def test_english_company_forms_are_stripped():
    assert normalise.enterprise_core("Xinyuan Trading Co., Ltd.") == "xinyuantrading"
    assert normalise.enterprise_core("浙江鑫源商贸股份有限公司") == "鑫源商贸"


# ------------------------------------------------------------------ addresses


@pytest.fixture
def small_gazetteer():
    """A hand-built city: two streets each with a community called 幸福社区."""
    return Gazetteer(
        [
            ("239900", "松河市", "Songhe City", "city", None),
            ("239901", "河阳区", "Heyang District", "district", "239900"),
            ("239901001", "新华街道", "Xinhua Subdistrict", "street", "239901"),
            ("239901002", "和平街道", "Heping Subdistrict", "street", "239901"),
            ("239901001001", "幸福社区", "Xingfu Community", "community", "239901001"),
            ("239901002001", "幸福社区", "Xingfu Community", "community", "239901002"),
            ("239901002002", "阳光社区", "Yangguang Community", "community", "239901002"),
            ("239901002002001", "第1网格", "Grid 1", "grid", "239901002002"),
            ("239901001001001", "第1网格", "Grid 1", "grid", "239901001001"),
        ]
    )


def test_a_shared_community_name_counts_only_under_its_street(small_gazetteer):
    locate = normalise.area_code
    assert locate("河阳区新华街道幸福社区3号楼", small_gazetteer) == "239901001001"
    assert locate("河阳区和平街道幸福社区3号楼", small_gazetteer) == "239901002001"
    # 幸福社区 without its street: two candidates, so only the district is known
    assert locate("松河市河阳区幸福社区3号楼", small_gazetteer) == "239901"
    # a unique community name counts on its own
    assert locate("阳光社区5栋", small_gazetteer) == "239901002002"
    assert locate("阳光社区第1网格", small_gazetteer) == "239901002002001"
    assert locate("第1网格", small_gazetteer) is None  # two grids have this name
    assert locate("北京市朝阳区", small_gazetteer) is None


def test_english_addresses_find_their_area(small_gazetteer):
    written = "Bldg 3, Heping Subdistrict, Heyang District, Songhe City"
    assert normalise.area_code(written, small_gazetteer) == "239901002"
    assert normalise.area_code("12 yangguang community", small_gazetteer) == "239901002002"


def test_chinese_addresses_unify_building_words_and_drop_the_own_city(small_gazetteer):
    a = address("松河市河阳区新华街道幸福社区12号楼3单元502室", small_gazetteer)
    b = address("河阳区 新华街道 幸福社区 12栋 3单元 502室", small_gazetteer)
    c = address("黑龙江省松河市河阳区新华街道幸福社区１２幢3单元502室", small_gazetteer)
    assert a == b == c == "河阳区新华街道幸福社区12栋3单元502室"
    # another city's name is information, not a prefix to drop
    assert address("哈尔滨市南岗区12号楼", small_gazetteer) == "哈尔滨市南岗区12栋"
    # without a gazetteer the city is unknown, so it stays
    assert address("松河市河阳区12号楼").startswith("松河市")


@pytest.mark.parametrize(
    "written",
    ["12 N. Main St., Apt 3", "12 north main street apartment 3", "12  NORTH MAIN ST APT 3"],
)
def test_english_addresses_unify_abbreviations(written):
    assert address(written) == "12 north main street apartment 3"


@pytest.mark.django_db
def test_demo_addresses_land_in_their_real_areas(demo_city):
    from civicpulse.core.models import Area
    from civicpulse.identity.models import Resident

    gazetteer = Gazetteer.from_store()
    community = Area.objects.filter(level="community").order_by("code")[7]
    street, district = community.parent, community.parent.parent
    written = f"{district.name_zh}{street.name_zh}{community.name_zh}8号楼2单元301室"
    assert normalise.area_code(written, gazetteer) == community.code
    english = f"8 {community.name_en}, {street.name_en}, {district.name_en}"
    assert normalise.area_code(english, gazetteer) == community.code
    assert normalise.area_code(f"{district.name_zh}某某路1号", gazetteer) == district.code

    # every resident of the demo store is placed in the community of their grid
    residents = list(Resident.objects.select_related("area__parent")[:300])
    assert residents
    placed = [normalise.resident({"address": r.address}, gazetteer)["area_code"] for r in residents]
    assert placed == [r.area.parent.code for r in residents]
