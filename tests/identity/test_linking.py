"""The linker on synthetic residents and enterprises whose truth the test knows.

The records are built here with the contract's normalised columns (pinyin from pypinyin, valid
ID numbers and credit codes from identity.identifiers) and the typos departments make: a
homophone character, two transposed ID digits, a missing phone, a moved address. The linker
never sees the truth column.
"""

from __future__ import annotations

import itertools
import random
import time
from datetime import date, timedelta

import pandas as pd
import pytest

from civicpulse.identity import linking, normalise
from civicpulse.identity.identifiers import make_resident_id, make_uscc

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红建国建华志强海燕春"
    "梅晓东丹凤文博子涵浩然欣怡雨轩宇航梓萱一诺思远"
)
# characters with the same pinyin, the typo a clerk taking a name by ear makes
HOMOPHONES = {
    "伟": "玮",
    "芳": "方",
    "静": "靜",
    "丽": "莉",
    "明": "铭",
    "华": "化",
    "军": "君",
    "涛": "韬",
    "磊": "垒",
    "强": "墙",
    "杰": "洁",
    "平": "萍",
    "红": "宏",
    "东": "冬",
}
DISTRICTS = {"330106": "西湖区", "330102": "上城区", "330105": "拱墅区", "330108": "滨江区",
             "330110": "余杭区"}  # fmt: skip
GAZETTEER = normalise.Gazetteer(
    [("330100", "杭州市", "Hangzhou", "city", None)]
    + [(code, zh, "", "district", "330100") for code, zh in DISTRICTS.items()]
)
STREETS = ["文三路", "教工路", "古墩路", "莫干山路", "天目山路", "西溪路", "学院路", "庆春路"]
SOURCES = ["civil_affairs", "health", "housing", "education"]
FULL_WIDTH = {ord(c): ord(c) + 0xFEE0 for c in "0123456789"}


def resident_row(record_id: str, source: str, **attrs) -> dict:
    """A record as the master index hands it to the linker: normalised by identity.normalise."""
    return {"record_id": record_id, "source": source} | normalise.resident(attrs, GAZETTEER)


def transpose(text: str, rng: random.Random) -> str:
    i = rng.randrange(6, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def synthetic_residents(people: int, *, seed: int = 1) -> pd.DataFrame:
    """``people`` residents, each in 1-3 departments' records with realistic typos; the
    ``person`` column is the truth."""
    rng = random.Random(seed)
    rows = []
    previous = None
    for person in range(people):
        surname = rng.choice(SURNAMES)
        given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        birth = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        division = rng.choice(list(DISTRICTS))
        phone = f"1{rng.choice('3589')}{rng.randrange(10**8, 10**9)}"
        street = f"{rng.choice(STREETS)}{rng.randrange(1, 400)}号"
        address = f"杭州市{DISTRICTS[division]}{street}{rng.randrange(1, 30)}幢"
        hard = rng.random()
        if previous and hard < 0.15:  # a household: one phone and address, another person
            phone, address = previous["phone"], previous["address"]
        elif previous and hard < 0.2:  # a namesake born the same day in the same district
            surname, given, birth, division = (
                previous[k] for k in ("surname", "given", "birth", "division")
            )
        sequence = rng.randrange(0, 1000)
        id_number = make_resident_id(division, birth, sequence)
        gender = "M" if sequence % 2 else "F"
        previous = {"surname": surname, "given": given, "birth": birth, "division": division,
                    "phone": phone, "address": address}  # fmt: skip
        for copy in range(rng.choice((1, 1, 2, 2, 3))):
            attrs = {
                "name": surname + given,
                "id_number": id_number,
                "gender": gender,
                "birth_date": birth.isoformat(),
                "phone": phone,
                "address": address,
            }
            if copy:
                typo = rng.random()
                if typo < 0.2:
                    attrs["name"] = surname + "".join(HOMOPHONES.get(ch, ch) for ch in given)
                elif typo < 0.35:
                    attrs["id_number"] = transpose(id_number, rng)
                elif typo < 0.5:
                    attrs["phone"] = None
                elif typo < 0.6:
                    attrs["id_number"] = None
                elif typo < 0.7:
                    attrs["address"] = address.split("号")[0] + "号"
                elif typo < 0.8:  # the forms clerks type: full width, a country code, spaces
                    attrs["name"] = f"{surname}\u3000{given}"
                    attrs["phone"] = f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}"
                    attrs["id_number"] = id_number.lower().translate(FULL_WIDTH)
            rows.append(resident_row(f"{SOURCES[copy]}:{person}", SOURCES[copy], **attrs))
            rows[-1]["person"] = person
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1, random_state=seed, ignore_index=True)


def synthetic_enterprises(firms: int, *, seed: int = 2) -> pd.DataFrame:
    rng = random.Random(seed)
    words = "华鑫盛达恒通宏远金源新创博瑞天成佳和永泰嘉禾"
    trades = ["科技", "贸易", "餐饮", "建筑", "物流", "电子", "文化"]
    rows = []
    for firm in range(firms):
        core = "".join(rng.choice(words) for _ in range(2)) + rng.choice(trades)
        division = rng.choice(list(DISTRICTS))
        uscc = make_uscc("9", "1", division, "".join(rng.choice("0123456789") for _ in range(8)))
        rep = rng.choice(SURNAMES) + rng.choice(GIVEN)
        phone = f"0571{rng.randrange(10**7, 10**8)}"
        address = f"杭州市{DISTRICTS[division]}{rng.choice(STREETS)}{rng.randrange(1, 400)}号"
        for copy in range(rng.choice((1, 2, 2, 3))):
            attrs = {"name": f"杭州{core}有限公司", "uscc": uscc, "legal_representative": rep,
                     "phone": phone, "address": address}  # fmt: skip
            if copy and rng.random() < 0.3:
                attrs["name"] = f"{core}有限责任公司"
            if copy and rng.random() < 0.2:
                attrs["uscc"] = None
            if rng.random() < 0.2:
                attrs["phone"] = None
            row = {"record_id": f"{SOURCES[copy]}:{firm}", "source": SOURCES[copy]}
            rows.append(row | normalise.enterprise(attrs, GAZETTEER) | {"firm": firm})
    return pd.DataFrame(rows)


def true_pairs(frame: pd.DataFrame, truth: str) -> set[tuple[str, str]]:
    pairs = set()
    for _, group in frame.groupby(truth):
        ids = sorted(group["record_id"])
        pairs.update(itertools.combinations(ids, 2))
    return pairs


def cluster_pairs(clusters: pd.DataFrame) -> set[tuple[str, str]]:
    return true_pairs(clusters, "cluster_id")


@pytest.fixture(scope="module")
def residents():
    return synthetic_residents(600)


@pytest.fixture(scope="module")
def resident_run(residents):
    return linking.link(residents, "resident")


def test_resident_clusters_match_the_truth(residents, resident_run):
    truth = true_pairs(residents, "person")
    found = cluster_pairs(resident_run.clusters)
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert precision >= 0.97, precision
    assert recall >= 0.9, recall
    # every input record is in exactly one cluster, singletons included
    assert sorted(resident_run.clusters["record_id"]) == sorted(residents["record_id"])


def test_counts_say_what_was_compared(residents, resident_run):
    counts = resident_run.counts
    assert counts["records"] == len(residents)
    # blocking keeps the work far below all pairs
    assert len(true_pairs(residents, "person")) <= counts["comparisons"]
    assert counts["comparisons"] < len(residents) * (len(residents) - 1) / 2 / 20
    assert counts["clusters"] == resident_run.clusters["cluster_id"].nunique()
    assert counts["pairs"] == len(resident_run.pairs)


def test_homophones_and_transposed_digits_still_link(residents, resident_run):
    by_id = residents.set_index("record_id")
    cluster = resident_run.clusters.set_index("record_id")["cluster_id"]
    homophones = transposed = 0
    for _, group in residents.groupby("person"):
        first = group.iloc[0]
        for _, other in group.iloc[1:].iterrows():
            if other["name"] != first["name"] and other["name_pinyin"] == first["name_pinyin"]:
                homophones += 1
                assert cluster[other["record_id"]] == cluster[first["record_id"]]
            ids = (other["id_number"], first["id_number"])
            if all(ids) and ids[0] != ids[1] and sorted(ids[0]) == sorted(ids[1]):
                transposed += 1
                assert cluster[other["record_id"]] == cluster[first["record_id"]], by_id.loc[
                    other["record_id"]
                ].to_dict()
    assert homophones >= 5 and transposed >= 5


def test_explanation_weights_add_up_to_the_match_weight(resident_run):
    pairs = resident_run.pairs
    assert not pairs.empty
    assert (pairs["match_probability"] >= linking.DEFAULT_THRESHOLDS["review"]).all()
    assert (pairs["record_l"] < pairs["record_r"]).all()
    for row in pairs.head(50).itertuples():
        fields = row.explanation["fields"]
        assert [f["field"] for f in fields] == [
            "name",
            "id_number",
            "birth_date",
            "gender",
            "phone",
            "address",
        ]
        total = row.explanation["prior"] + sum(f["weight"] for f in fields)
        assert total == pytest.approx(row.match_weight, abs=1e-2)
        assert all(isinstance(f["level"], str) and f["level"] for f in fields)


def test_an_exact_id_is_explained_as_such(residents, resident_run):
    by_id = residents.set_index("record_id")
    same_id = [
        row
        for row in resident_run.pairs.itertuples()
        if by_id.loc[row.record_l, "id_number"] is not None
        and by_id.loc[row.record_l, "id_number"] == by_id.loc[row.record_r, "id_number"]
    ]
    assert same_id
    for row in same_id[:20]:
        level = {f["field"]: f for f in row.explanation["fields"]}["id_number"]
        assert level["level"] == "id_number equal"
        assert level["weight"] > 5


def test_a_given_model_skips_training_and_gives_the_same_answer(residents, resident_run):
    again = linking.link(residents, "resident", model=resident_run.model)
    assert again.counts["trained"] is False
    pd.testing.assert_frame_equal(again.clusters, resident_run.clusters)
    assert list(again.pairs["record_l"]) == list(resident_run.pairs["record_l"])
    assert again.model["comparisons"] == resident_run.model["comparisons"]


def numbers_of(model: dict) -> tuple[list, list]:
    """A model's floats (m, u and the prior), and everything else, in a fixed order."""
    floats, others = [], []

    def walk(value):
        if isinstance(value, dict):
            for key in sorted(value):
                others.append(key)
                walk(value[key])
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, float):
            floats.append(value)
        else:
            others.append(value)

    walk(model)
    return floats, others


def test_training_is_deterministic(residents, resident_run):
    again = linking.link(residents, "resident")
    # DuckDB sums in parallel, so the last bits of a float may differ between runs
    floats, others = numbers_of(again.model)
    expected_floats, expected_others = numbers_of(resident_run.model)
    assert others == expected_others
    assert floats == pytest.approx(expected_floats, rel=1e-9)
    pd.testing.assert_frame_equal(again.clusters, resident_run.clusters)


def test_the_model_is_json(resident_run):
    import json

    assert json.loads(json.dumps(resident_run.model)) == resident_run.model


def test_an_unmatched_record_stays_alone(residents, resident_run):
    stranger = resident_row(
        "newcomer:1",
        "housing",
        name="欧阳娜娜",
        id_number=make_resident_id("110105", date(1999, 9, 9), 1),
        phone="19900000000",
        address="北京市朝阳区1号",
    )
    frame = pd.concat([residents, pd.DataFrame([stranger])], ignore_index=True)
    result = linking.link(frame, "resident", model=resident_run.model)
    cluster = result.clusters.set_index("record_id")["cluster_id"]
    assert (cluster == cluster["newcomer:1"]).sum() == 1


def test_match_new_finds_the_person_among_the_existing(residents, resident_run):
    person = residents.iloc[0]
    newcomer = person.to_dict() | {"record_id": "tax:new", "source": "tax", "phone": None}
    newcomer["name"] = person["name"][0] + "".join(
        HOMOPHONES.get(ch, ch) for ch in person["name"][1:]
    )
    new = pd.DataFrame([newcomer])
    pairs = linking.match_new(new, residents, "resident", resident_run.model)
    same_person = set(residents.loc[residents["person"] == person["person"], "record_id"])
    best = pairs.sort_values("match_probability").iloc[-1]
    assert best["record_l"] == "tax:new"
    assert best["record_r"] in same_person
    assert best["match_probability"] >= 0.95
    assert set(pairs.columns) == set(linking.PAIR_COLUMNS)


def test_match_new_with_a_stranger_finds_nothing(residents, resident_run):
    stranger = resident_row(
        "tax:x",
        "tax",
        name="欧阳娜娜",
        id_number=make_resident_id("110105", date(1999, 9, 9), 1),
        phone="19900000000",
        address="北京市朝阳区1号",
    )
    pairs = linking.match_new(pd.DataFrame([stranger]), residents, "resident", resident_run.model)
    assert pairs.empty


def test_match_new_one_against_many_is_fast(resident_run):
    existing = synthetic_residents(40_000, seed=5)
    new = existing.sample(1, random_state=3).assign(record_id="new:1", source="tax")
    linking.match_new(new, existing.head(100), "resident", resident_run.model)  # warm up
    started = time.perf_counter()
    pairs = linking.match_new(new, existing, "resident", resident_run.model)
    seconds = time.perf_counter() - started
    assert len(existing) > 60_000
    assert not pairs.empty
    assert seconds < 3, seconds  # measured about 1 s on two busy cores


def test_enterprises_link_by_credit_code_and_core_name():
    firms = synthetic_enterprises(400)
    result = linking.link(firms, "enterprise")
    truth = true_pairs(firms, "firm")
    found = cluster_pairs(result.clusters)
    assert len(found & truth) / len(found) >= 0.95
    assert len(found & truth) / len(truth) >= 0.85
    fields = [f["field"] for f in result.pairs.iloc[0]["explanation"]["fields"]]
    assert fields == ["uscc", "name", "legal_rep", "phone", "address", "industry_code"]


def test_a_model_for_the_wrong_kind_is_refused(residents, resident_run):
    firms = synthetic_enterprises(20)
    with pytest.raises(ValueError, match="trained for another kind"):
        linking.link(firms, "enterprise", model=resident_run.model)
    with pytest.raises(ValueError, match="trained for another kind"):
        linking.match_new(firms.head(1), firms, "enterprise", resident_run.model)


def test_bad_frames_are_refused_with_one_line():
    with pytest.raises(ValueError, match="empty"):
        linking.link(synthetic_residents(3).head(0), "resident")
    with pytest.raises(ValueError, match="lacks columns: id_number"):
        linking.link(synthetic_residents(3).drop(columns=["id_number"]), "resident")
    with pytest.raises(ValueError, match="unknown record kind"):
        linking.link(synthetic_residents(3), "vehicle")
    with pytest.raises(ValueError, match="repeats record_id"):
        frame = synthetic_residents(3)
        linking.link(pd.concat([frame, frame]), "resident")
    with pytest.raises(ValueError, match="thresholds"):
        linking.link(synthetic_residents(3), "resident", link_threshold=0.4)
    with pytest.raises(ValueError, match="unknown linking engine"):
        linking.link(synthetic_residents(3), "resident", engine="oracle")
