"""The keyword rule language: grammar, matching, NEAR on segmented Chinese, errors, hostile
input, the DuckDB superset filter and the stream matcher, on real Weibo posts where it counts."""

from __future__ import annotations

import csv
import gzip
import itertools
import random
import unicodedata

import pytest

from civicpulse.text import rules as rules_module
from civicpulse.text import tokenize
from civicpulse.text.rules import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    Rule,
    RuleSet,
    RuleSyntaxError,
    normalize,
    parse,
)
from tests.support import shared_data

WEIBO = "zh/covid19_weibo_unlabeled_daily_2020.csv.gz"

# Fifty rules of the kind analysts keep for the concerns of an epidemic winter; the stream
# benchmark uses them too.
WEIBO_RULES = [
    "口罩 AND (买不到 OR 断货 OR 缺货 OR 涨价 OR 抢购)",
    "(停水 OR 断水 OR 停电 OR 断电) NOT 演习",
    "发热 NEAR/5 (医院 OR 门诊)",
    "(确诊 OR 疑似) NEAR/3 小区",
    "source:weibo AND (物资 OR 捐赠) AND (短缺 OR 紧缺 OR 求助)",
    "(医护 OR 医生 OR 护士) AND (感染 OR 防护服 OR 累倒)",
    "床位 AND (不够 OR 紧张 OR 没有)",
    "方舱 OR 火神山 OR 雷神山",
    "红十字会 AND (质疑 OR 问题 OR 调查 OR 捐款)",
    "双黄连 OR 抢购 NEAR/3 药",
    "(谣言 OR 辟谣 OR 不实) NOT 官方",
    "(菜价 OR 物价 OR 蔬菜) NEAR/4 (涨 OR 贵)",
    "(超市 OR 菜场 OR 菜市场) AND (排队 OR 关门 OR 限购)",
    "(复工 OR 返岗 OR 开工) AND (工资 OR 收入 OR 失业)",
    "(开学 OR 网课 OR 学校) AND (延迟 OR 推迟 OR 家长)",
    "(快递 OR 外卖) NEAR/5 (停 OR 不送 OR 无接触)",
    "(物业 OR 社区 OR 居委会) AND (不管 OR 投诉 OR 封闭)",
    "(封城 OR 封路 OR 交通管制) AND -解封",
    "解封 OR 复学 OR 恢复运营",
    "(隔离 OR 居家观察) NEAR/5 (酒店 OR 宾馆)",
    "(湖北人 OR 武汉人) NEAR/5 (歧视 OR 拒绝 OR 赶)",
    "(通行证 OR 健康码) AND (办理 OR 申请 OR 怎么)",
    "(核酸 OR 检测) NEAR/3 (试剂盒 OR 结果)",
    "(酒精 OR 消毒液 OR 84) AND (买 OR 缺)",
    "(体温 OR 发烧 OR 发热) AND 咳嗽",
    "(死亡 OR 去世 OR 病逝) NOT (美国 OR 意大利 OR 伊朗)",
    "(治愈 OR 出院) AND 新增",
    "(返程 OR 返工 OR 返城) AND (高速 OR 火车 OR 航班)",
    "(房租 OR 房贷 OR 还贷) AND (减免 OR 压力 OR 交不起)",
    "(餐馆 OR 饭店 OR 小店) AND (倒闭 OR 关门 OR 亏)",
    "(志愿者 OR 义工) AND (招募 OR 报名 OR 感谢)",
    "(焦虑 OR 恐慌 OR 害怕 OR 失眠) -加油",
    "(愤怒 OR 气愤 OR 无语) NEAR/5 (政府 OR 官员 OR 领导)",
    '(李文亮 OR 吹哨人) OR "吹哨"',
    "(口罩厂 OR 口罩生产) AND (招工 OR 扩产 OR 转产)",
    "(野味 OR 野生动物) AND (禁止 OR 吃)",
    "(海鲜市场 OR 华南海鲜) AND (源头 OR 来源)",
    "(输入 OR 境外) NEAR/3 (病例 OR 输入性)",
    "(养老院 OR 敬老院 OR 老人) AND (无人照顾 OR 独居 OR 困难)",
    "(孕妇 OR 产妇 OR 透析 OR 化疗) AND (就医 OR 医院 OR 求助)",
    "(求助 OR 救救) NEAR/5 (家人 OR 父亲 OR 母亲 OR 妈妈 OR 爸爸)",
    "(捐款 OR 捐赠) AND (明星 OR 企业 OR 公司)",
    "lang:zh AND (疫苗 NEAR/5 (研发 OR 上市 OR 试验))",
    "(瑞德西韦 OR 氯喹 OR 特效药) NOT 谣言",
    '"新型冠状病毒" AND (传播 OR 人传人)',
    "(钟南山 OR 李兰娟) AND (院士 OR 专家)",
    "(武汉 OR 湖北) AND (加油 OR 挺住)",
    "(垃圾 OR 废弃口罩) NEAR/4 (处理 OR 乱扔)",
    "(网格员 OR 社区工作者 OR 基层) AND (辛苦 OR 感谢 OR 累)",
    "(宠物 OR 猫 OR 狗) NEAR/5 (扔 OR 遗弃 OR 饿死)",
]


def weibo_posts(limit: int, every: int = 1) -> list[dict]:
    """Real Weibo posts as the stream delivers them (every ``every``-th of the first ones)."""
    path = shared_data(WEIBO)
    with gzip.open(path, "rt", encoding="utf-8") as f:
        rows = itertools.islice(csv.DictReader(f), 0, limit * every, every)
        return [{"text": row["text"], "source": "weibo", "lang": "zh"} for row in rows]


@pytest.fixture(scope="module")
def weibo():
    return weibo_posts(6000, every=3)


def post(text: str, **fields) -> dict:
    return {"text": text, **fields}


def hits(query: str, *texts: str, **fields) -> list[bool]:
    rule = parse(query)
    return [rule.matches(post(t, **fields)) for t in texts]


# ---------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    "query, spelled_out",
    [
        ("停水 OR 断水 小区", "停水 OR (断水 AND 小区)"),
        ("停水 断水 OR 小区", "(停水 AND 断水) OR 小区"),
        ("NOT 演习 停水", "NOT 演习 AND 停水"),
        ("停水 NEAR/5 小区 投诉", "(停水 NEAR/5 小区) AND 投诉"),
        ("停水 OR 小区 NEAR/2 投诉", "停水 OR (小区 NEAR/2 投诉)"),
        (
            "source:weibo AND (停水 OR 断水) NOT 演习",
            "source:weibo AND (停水 OR 断水) AND NOT 演习",
        ),
        ("停水 && 小区 || 断水 -演习", "(停水 AND 小区) OR (断水 AND NOT 演习)"),
        (
            "((停水 OR 断水) (小区 OR 社区)) NOT (演习 OR 演练)",
            "(停水 OR 断水) AND (小区 OR 社区) AND NOT (演习 OR 演练)",
        ),
        ("NOT NOT 停水", "停水"),
        ("-(停水 小区)", "NOT (停水 AND 小区)"),
        ("（停水　ＯＲ　断水）", "停水 OR 断水"),  # full-width brackets, keyword and spaces
        ("heating and cooling", "heating AND and AND cooling"),  # lower case: a word
        ('“停水 通知” 「小区」 "Heat Pump"', '"停水 通知" AND "小区" AND "heat pump"'),
        ("(停水 OR 断水) NEAR/5 小区", "(停水 OR 断水) NEAR/5 小区"),
        ("heat* area:松河区 lang:ZH", "heat* AND area:松河区 AND lang:zh"),
    ],
)
def test_precedence_and_implicit_and(query, spelled_out):
    rule = parse(query)
    assert str(rule) == spelled_out
    assert str(parse(str(rule))) == spelled_out  # the spelled-out form reads back the same


def test_precedence_decides_what_matches():
    # 停水 OR (断水 AND 小区): 断水 alone is not enough, 停水 alone is.
    assert hits("停水 OR 断水 小区", "今天停水", "今天断水", "小区断水") == [True, False, True]
    # (停水 AND 断水) OR 小区
    assert hits("停水 断水 OR 小区", "停水", "小区", "停水又断水") == [False, True, True]
    # (NOT 演习) AND 停水, not NOT (演习 AND 停水)
    assert hits("NOT 演习 停水", "停水", "停水演习", "演习") == [True, False, False]
    assert hits("-演习 停水", "停水", "停水演习") == [True, False]


def test_nested_parentheses():
    rule = parse("((停水 OR 断水) AND (小区 OR (社区 AND -演练))) OR 水压低")
    assert rule.matches(post("小区停水了"))
    assert rule.matches(post("社区断水"))
    assert not rule.matches(post("社区断水演练"))
    assert rule.matches(post("楼上水压低"))
    assert not rule.matches(post("停水"))


# ---------------------------------------------------------------------------- words and phrases


def test_chinese_terms_match_as_substrings():
    assert hits("停水", "小区停水了", "停 水", "停电") == [True, False, False]


def test_ascii_words_need_word_boundaries():
    assert hits("heat", "No heat today", "WHEAT field", "heating", "暖气heat坏了") == [
        True,
        False,
        False,
        True,
    ]
    assert hits("3号楼", "3号楼停水", "13号楼停水") == [True, False]
    assert hits("n95", "N95口罩", "kn95口罩") == [True, False]


def test_trailing_wildcard_is_a_prefix_for_words():
    assert hits("heat*", "heating broken", "no heat", "wheat") == [True, True, False]
    assert hits("停*", "停水") == [True]  # on Chinese it changes nothing


def test_matching_is_case_insensitive_and_nfkc_normalised():
    assert hits("Heat", "NO ＨＥＡＴ!") == [True]
    assert hits("ＰＭ２.５", "pm2.5 超标") == [True]
    assert hits("pm2.5", "ＰＭ２．５超标") == [True]
    assert hits("at&t", "AT&amp;T store") == [True]  # entities decoded as the tokenizer does


def test_phrases_in_every_kind_of_quote():
    for query in ('"停水通知"', "“停水通知”", "「停水通知」", "『停水通知』", "＂停水通知＂"):
        assert hits(query, "小区停水通知来了", "停水了，通知呢") == [True, False], query
    # Words of an English phrase in order, any white space between; none needed next to Chinese.
    assert hits('"street light"', "street  light out", "light street", "streetlight") == [
        True,
        False,
        False,
    ]
    assert hits('"停水 通知"', "停水通知", "停水 通知") == [True, True]


def test_terms_lists_the_normalised_words_and_phrases():
    rule = parse('source:weibo (停水 OR "Street Light") -演习 heat* NEAR/2 ＡＢＣ')
    assert rule.terms() == {"停水", "street light", "演习", "heat", "abc"}


def test_required_is_a_cheap_necessary_condition():
    assert parse("停水 OR 断水").required() == [frozenset({"停水", "断水"})]
    assert parse("停水 小区 NOT 演习").required() == [frozenset({"停水"}), frozenset({"小区"})]
    assert parse('"street light"').required() == [frozenset({"street"}), frozenset({"light"})]
    assert parse("NOT 演习").required() == []
    assert parse("source:weibo").required() == []
    assert parse("停水 OR source:weibo").required() == []


@pytest.mark.shared_data
def test_required_holds_for_every_match_on_real_posts(weibo):
    for query in WEIBO_RULES:
        rule = parse(query)
        required = rule.required()
        for item in weibo[:2500]:
            if rule.matches(item):
                text = normalize(item["text"])
                assert all(any(s in text for s in alternatives) for alternatives in required), (
                    query,
                    item["text"],
                )


@pytest.mark.shared_data
def test_fast_normalize_equals_the_tokenizers(weibo):
    samples = [p["text"] for p in weibo] + [
        "ＡＢＣ１２３，Ｘ &amp; y",
        "e\u0301t\u00e9",
        "㎏ ① ⽔ ﬁ …",
        "Ａ\u0301",
        "",
        "plain ascii & more",
    ]
    for text in samples:
        assert normalize(text) == tokenize.normalize(text)


# ---------------------------------------------------------------------------- fields


def test_field_filters():
    tagged = post("小区停水", source="Weibo", lang="zh-CN", areas=["239901", "松河区", "云州市"])
    assert parse("source:weibo").matches(tagged)
    assert not parse("source:douyin").matches(tagged)
    assert parse("lang:zh").matches(tagged)  # zh-CN is Chinese
    assert not parse("lang:en").matches(tagged)
    assert parse("area:松河区").matches(tagged)
    assert parse("area:239901").matches(tagged)
    assert parse("area:云州市").matches(tagged)  # an ancestor the post is tagged with
    assert not parse("area:柳岸区").matches(tagged)
    assert not parse("area:2399").matches(tagged)  # whole values, not prefixes
    assert parse("source:weibo AND (停水 OR 断水) NOT 演习").matches(tagged)
    assert not parse("source:weibo AND (停水 OR 断水) NOT 演习").matches(
        {**tagged, "text": "停水演习"}
    )


def test_missing_fields_and_the_lake_area_column():
    assert not parse("source:weibo").matches(post("停水"))
    assert parse("NOT source:weibo").matches(post("停水"))
    assert not parse("area:松河区").matches(post("停水"))
    assert parse("lang:zh").matches(post("小区停水了"))  # guessed from the text
    assert parse("lang:en").matches(post("No heat in the flat"))
    assert parse("area:松河区").matches(post("停水", areas="|239901|松河区|2399|"))
    assert parse('area:"Pine Ward"').matches(post("x", areas=["pine ward"]))
    assert parse("area:239901").matches(post("x", areas=[239901, 2399]))  # codes as numbers


# ---------------------------------------------------------------------------- NEAR


def test_near_counts_jieba_words_in_either_order():
    text = "我们小区物业管理很差，而且已经停水三天了，没人管"
    # Two words between: 物业管理, 很差 (而且, 已经 are stop words and not counted).
    assert tokenize.tokens(text)[:4] == ["小区", "物业管理", "很差", "停水"]
    assert hits("小区 NEAR/2 停水", text) == [True]
    assert hits("停水 NEAR/2 小区", text) == [True]
    assert hits("小区 NEAR/1 停水", text) == [False]
    assert hits("停水 NEAR/1 小区", text) == [False]


def test_near_distance_is_exact_with_one_character_words():
    assert tokenize.tokens("小区猫狗停水") == ["小区", "猫", "狗", "停水"]
    assert hits("小区 NEAR/2 停水", "小区猫狗停水") == [True]
    assert hits("小区 NEAR/1 停水", "小区猫狗停水") == [False]
    assert hits("停水 NEAR/1 小区", "停水3天小区") == [False]  # a number is a word
    assert hits("停水 NEAR/2 小区", "停水3天小区") == [True]
    assert hits("heat NEAR/0 apartment", "heat 5 apartment") == [False]
    # Stop words are letters but not words: 又 is not counted.
    assert hits("小区 NEAR/1 停水", "小区又冷又停水") == [True]


def test_near_with_a_term_inside_one_jieba_word():
    text = "居民小区今天上午突然停水，物业说是管道抢修"
    assert tokenize.tokens(text)[:4] == ["居民小区", "今天上午", "突然", "停水"]
    assert hits("小区 NEAR/2 停水", text) == [True]
    assert hits("小区 NEAR/1 停水", text) == [False]
    assert hits("停水 NEAR/0 突然", text) == [True]


def test_near_with_a_term_spanning_jieba_words():
    text = "口罩买不到，药店说明天才有货"
    assert tokenize.tokens(text) == ["口罩", "买不到", "药店", "说明", "天才", "有", "货"]
    # 明天 spans 说明|天才, so it touches 药店 although a character (说) lies between.
    assert hits("药店 NEAR/0 明天", text) == [True]
    assert hits("明天 NEAR/1 货", text) == [True]  # only 有 between
    assert hits("明天 NEAR/0 货", text) == [False]
    assert hits("口罩 NEAR/3 明天", text) == [True]  # 买不到, 药店 between
    assert hits("口罩 NEAR/1 明天", text) == [False]


def test_near_between_phrases_and_ors_and_in_english():
    text = "No heat in the apartment since Monday"
    assert hits("heat NEAR/0 apartment", text) == [True]  # "in the" are stop words
    assert hits("apartment NEAR/0 monday", text) == [False]
    assert hits("monday NEAR/1 apartment", text) == [True]
    assert hits('"no heat" NEAR/3 monday', text) == [True]
    assert hits("(停水 OR 断水) NEAR/1 小区", "小区昨天断水", "小区昨天又一次断水") == [True, False]


def test_near_uses_the_callers_tokens_when_given():
    text = "居民小区今天上午突然停水"
    rule = parse("小区 NEAR/0 停水")
    assert not rule.matches(post(text))
    # A caller who segmented differently (one word for the whole middle) gets its own count.
    assert rule.matches(post(text, tokens=["居民小区", "今天上午突然", "停水"])) is False
    assert rule.matches(post(text, tokens=["居民小区今天上午突然停水"])) is True


def test_a_post_is_segmented_once_for_all_near_rules():
    text = "冬季供暖期间，我们居民小区的暖气很不热，物业一直说在排查管道，已经投诉好几次了"
    near_rules = [parse(q) for q in ("暖气 NEAR/2 物业", "管道 NEAR/0 投诉", "小区 NEAR/3 物业")]
    ruleset = RuleSet(enumerate(near_rules))
    rules_module._segment.cache_clear()
    assert ruleset.match(post(text, lang="zh")) == [0, 1, 2]
    for rule in near_rules:
        assert rule.matches(post(text, lang="zh"))
    segmented = rules_module._segment.cache_info().misses
    clauses = len(rules_module._clauses(normalize(text))[0])
    assert 0 < segmented <= clauses  # each clause segmented at most once


@pytest.mark.shared_data
def test_clauses_segment_like_the_whole_post(weibo):
    """NEAR segments only the clauses it needs; that must give the tokens of the whole post."""
    for item in weibo[:400]:
        text = normalize(item["text"])
        whole = [t for t in tokenize.tokens(text, "zh", normalized=True) if t != tokenize.URL]
        pieces = []
        for start, end in zip(*rules_module._clauses(text), strict=True):
            pieces += [
                t
                for t in tokenize.tokens(text[start:end], "zh", normalized=True)
                if t != tokenize.URL
            ]
        assert pieces == whole, item["text"]


@pytest.mark.shared_data
def test_clauses_segment_like_the_whole_text_in_english():
    texts = set()
    for name in ("311/nyc_311_mixed_data237.csv", "311/nyc_311_2019-12-31_atlas.csv"):
        with open(shared_data(name), encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts.add(row.get("Resolution Description") or row.get("resolution_description"))
    texts.discard(None)
    texts.discard("")
    assert len(texts) > 40
    for raw in texts:
        text = normalize(raw)
        whole = [t for t in tokenize.tokens(text, "en", normalized=True) if t != tokenize.URL]
        pieces = []
        for start, end in zip(*rules_module._clauses(text), strict=True):
            pieces += [
                t
                for t in tokenize.tokens(text[start:end], "en", normalized=True)
                if t != tokenize.URL
            ]
        assert pieces == whole, raw


@pytest.mark.shared_data
def test_near_gives_the_same_answer_with_the_callers_tokens(weibo):
    near_rules = [parse(q) for q in WEIBO_RULES if "NEAR" in q]
    checked = 0
    for item in weibo:
        rules = [r for r in near_rules if _meets_required(r, item)]
        if not rules:
            continue
        with_tokens = {**item, "tokens": tokenize.tokens(item["text"], "zh")}
        for rule in rules:
            assert rule.matches(item) == rule.matches(with_tokens), (str(rule), item["text"])
            checked += 1
        if checked >= 200:
            break
    assert checked >= 50  # the sample really exercised NEAR


def _meets_required(rule: Rule, item: dict) -> bool:
    text = normalize(item["text"])
    return all(any(s in text for s in alternatives) for alternatives in rule.required())


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "query, position, token, says",
    [
        ("", 0, "", "empty query"),
        ("   ", 0, "", "empty query"),
        ("停水 AND", 6, "AND", "expected a term after 'AND' at position 6"),
        ("停水 AND OR 断水", 7, "OR", "expected a term after 'AND' at position 7, found 'OR'"),
        ("OR 停水", 0, "OR", "'OR' at position 0 needs a term before it"),
        ("(停水 OR (断水 AND 小区)", 0, "(", "unclosed parenthesis opened at position 0"),
        ("停水 OR 断水)", 8, ")", "unmatched ')' at position 8"),
        ("停水 ()", 3, "()", "empty parentheses"),
        (
            "sorce:weibo 停水",
            0,
            "sorce",
            "unknown field 'sorce' at position 0 (known: source, "
            "area, lang); did you mean 'source'?",
        ),
        ("http://example.cn", 0, "http", "put it in quotes"),
        ("停水 NEAR 小区", 3, "NEAR", "NEAR needs a distance, e.g. NEAR/5"),
        ("停水 NEAR/五 小区", 3, "NEAR/五", "NEAR needs a distance, e.g. NEAR/5"),
        ("停水 NEAR/101 小区", 3, "NEAR/101", "the largest distance is NEAR/100"),
        ("停水 NEAR/3", 9, "NEAR/3", "expected a term after 'NEAR/3'"),
        ("停水 NEAR/3 source:weibo", 10, "source:weibo", "is a field filter"),
        ("NOT 停水 NEAR/3 小区", 0, "NOT", "NOT (a NEAR/3 b)"),
        ("a NEAR/2 b NEAR/2 c", 11, "NEAR/2", "cannot be chained"),
        ('小区 "停水', 3, '"', 'unclosed quote " opened at position 3'),
        ("小区 「停水", 3, "「", "unclosed quote 「 opened at position 3"),
        ('停水 ""', 3, '""', "empty phrase at position 3"),
        ("停水”", 2, "”", "has no opening quote"),
        ("source: 停水", 7, "source:", "field 'source' at position 0 needs a value, e.g. "),
        ("area:松河|区", 5, "area:松河|区", "cannot contain '|'"),
        ("he*at", 2, "he*at", "only allowed at the end of a word"),
        ("停水 *", 3, "*", "needs letters before it"),
        ("停水 - 演习", 3, "-", "expected a term right after '-'"),
        ("停水\x00演习", 2, "\x00", "control character U+0000 at position 2"),
    ],
)
def test_errors_name_the_position(query, position, token, says):
    with pytest.raises(RuleSyntaxError) as caught:
        parse(query)
    err = caught.value
    assert isinstance(err, ValueError)
    assert (err.position, err.token) == (position, token)
    assert says in err.message


def test_errors_survive_pickling():
    import pickle

    with pytest.raises(RuleSyntaxError) as caught:
        parse("停水 AND")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.message, copy.position, copy.token, str(copy)) == (
        caught.value.message,
        caught.value.position,
        caught.value.token,
        str(caught.value),
    )


def test_error_text_shows_the_query_with_a_caret():
    with pytest.raises(RuleSyntaxError) as caught:
        parse("停水 AND (断水 OR)")
    err = caught.value
    message, shown, caret = str(err).split("\n")
    assert message == err.message
    assert shown == "  停水 AND (断水 OR)"
    # Chinese characters take two columns in a terminal: the caret sits under the ')'.
    width = sum(2 if unicodedata.east_asian_width(c) == "W" else 1 for c in "停水 AND (断水 OR")
    assert caret == " " * (2 + width) + "^"
    assert err.query[err.position] == ")"


# ---------------------------------------------------------------------------- hostile input


def test_ten_thousand_parentheses_are_refused_cleanly():
    for query in ("(" * 10_000 + "停水" + ")" * 10_000, "(" * 10_000):
        with pytest.raises(RuleSyntaxError) as caught:
            parse(query)
        assert "limit is 2,000" in caught.value.message
        assert len(str(caught.value)) < 300  # the long query is cut around the position


def test_deep_nesting_within_the_length_limit_is_refused_cleanly():
    query = "(" * 500 + "停水" + ")" * 500
    assert len(query) <= MAX_QUERY_LENGTH
    with pytest.raises(RuleSyntaxError) as caught:
        parse(query)
    assert caught.value.position == MAX_DEPTH
    assert "nested" in caught.value.message
    nested = "(" * MAX_DEPTH + "停水" + ")" * MAX_DEPTH  # the limit itself is fine
    assert parse(nested).matches(post("停水"))


def test_a_hundred_thousand_character_query_is_refused():
    with pytest.raises(RuleSyntaxError) as caught:
        parse("停水 OR " * 20_000)
    assert caught.value.position == MAX_QUERY_LENGTH


def test_too_many_terms_and_many_negations():
    with pytest.raises(RuleSyntaxError) as caught:
        parse(" ".join(["停水"] * (MAX_TERMS + 1)))
    assert caught.value.position == 3 * MAX_TERMS
    assert parse("NOT " * 400 + "停水").matches(post("停水"))  # an even number of NOTs


def test_control_characters_are_refused_and_layout_characters_are_spaces():
    for bad in ("\x00", "\x07", "\x1b[31m", "\x7f", "\x85"):
        with pytest.raises(RuleSyntaxError) as caught:
            parse(f"停水{bad}小区")
        assert caught.value.position == 2 and "control character" in caught.value.message
        assert "\ufffd" in str(caught.value)  # shown as a replacement, not sent to a terminal
    assert str(parse("停水\t小区\r\n断水\u200b演习")) == "停水 AND 小区 AND 断水 AND 演习"


def test_random_junk_never_escapes_as_another_exception():
    alphabet = list('()"“”「」-*:/&|  abANDORNOTNEAR/35停水小区source:area:lang:\x00\u3000（）')
    generator = random.Random(20261126)
    for _ in range(3000):
        query = "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 40)))
        try:
            rule = parse(query)
        except RuleSyntaxError as err:
            assert 0 <= err.position <= len(query)
            assert str(err)
        else:
            rule.matches(post("小区停水 source ab"))
            rule.to_duckdb()


def test_a_huge_post_is_handled():
    # 100k characters: each 小区 has 5 words before its 停水 and 20 after it.
    block = "小区" + "北风" * 5 + "停水。" + "白雪" * 20 + "。"
    assert tokenize.tokens(block).count("白雪") == 20
    text = block * (100_000 // len(block))
    assert not parse("小区 NEAR/4 停水").matches(post(text, lang="zh"))
    assert parse("小区 NEAR/5 停水").matches(post(text, lang="zh"))
    assert parse("停水 NEAR/20 小区").matches(post(text, lang="zh"))


# ---------------------------------------------------------------------------- DuckDB


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


SQL_RULES = [
    "口罩 OR n95",
    "(sars OR mers) AND 病毒",
    "新型冠状病毒 NOT 武汉",
    "source:weibo AND (肺炎 OR 确诊) NOT 谣言",
    "NOT source:weibo AND 病毒",
    "lang:zh AND 发热 NEAR/5 医院",
    "area:松河区 AND 病毒",
    "area:239902 OR who",
    "-病毒",
    "NOT (肺炎 OR 病毒)",
    '"新型冠状病毒" 疫情',
    "sar* OR ncov",
    "NOT lang:en AND 口罩",
    "NOT (source:douyin OR 武汉) 肺炎",
]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A few hundred real posts in Parquet as the lake keeps them, plus variants that only
    normalisation makes match (full-width letters, a Kangxi radical, an HTML entity)."""
    duckdb = pytest.importorskip("duckdb")
    posts = weibo_posts(400, every=37)
    rows = []
    for number, item in enumerate(posts):
        text = item["text"]
        areas = ("|239901|松河区|2399|云州市|", "|239902|柳岸区|2399|云州市|", None)[number % 3]
        source = ("weibo", "Weibo", "douyin", None)[number % 4]
        lang = ("zh", None, "", "zh-CN", "en")[number % 5]
        rows.append((number, text, source, lang, areas))
    extra = len(rows)
    for item in posts:
        text = item["text"]
        if any(w in normalize(text) for w in ("sars", "n95", "ncov", "who", "mers")):
            rows.append((extra, _full_width(text), "weibo", "zh", None))
            extra += 1
        if "口罩" in text:
            rows.append((extra, text.replace("口罩", "\u2f1d罩"), "weibo", None, None))
            rows.append((extra + 1, text.replace("口罩", "&#21475;罩"), "weibo", None, None))
            extra += 2
    rows.append((extra, None, None, None, None))
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE posts (id INTEGER, text VARCHAR, source VARCHAR, lang VARCHAR, areas VARCHAR)"
    )
    con.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?)", rows)
    lake = tmp_path_factory.mktemp("lake") / "posts.parquet"
    con.execute(f"COPY posts TO '{lake}' (FORMAT parquet)")
    return con, str(lake), rows


def _as_post(row) -> dict:
    number, text, source, lang, areas = row
    return {"text": text, "source": source, "lang": lang, "areas": areas}


@pytest.mark.shared_data
@pytest.mark.parametrize("query", SQL_RULES)
def test_duckdb_filter_is_a_superset_of_matches(history, query):
    con, lake, rows = history
    rule = parse(query)
    where, params = rule.to_duckdb()
    assert "?" in where or where in ("TRUE", "FALSE")
    candidates = {
        r[0]
        for r in con.execute(
            f"SELECT id FROM read_parquet(?) WHERE {where}", [lake, *params]
        ).fetchall()
    }
    matched = {row[0] for row in rows if rule.matches(_as_post(row))}
    assert matched <= candidates, sorted(matched - candidates)


@pytest.mark.shared_data
def test_duckdb_filter_narrows_and_finds_the_normalised_variants(history):
    con, lake, rows = history
    total = len(rows)
    found_any = 0
    for query in SQL_RULES:
        rule = parse(query)
        where, params = rule.to_duckdb()
        candidates = con.execute(f"SELECT count(*) FROM posts WHERE {where}", params).fetchone()[0]
        matched = sum(rule.matches(_as_post(row)) for row in rows)
        found_any += matched > 0
        if rule.required():  # a rule needing text must not scan everything back
            assert candidates < total, query
    assert found_any >= len(SQL_RULES) - 2  # the rules really match real posts

    # The variants match only after normalisation; the filter keeps them.
    wide = [r for r in rows if r[1] and any("\uff10" <= c <= "\uff5a" for c in r[1])]
    assert any(parse("sar* OR ncov OR n95 OR who").matches(_as_post(r)) for r in wide)
    variants = [r for r in rows if r[1] and ("\u2f1d" in r[1] or "&#21475;" in r[1])]
    assert variants
    where, params = parse("口罩").to_duckdb()
    kept = {r[0] for r in con.execute(f"SELECT id FROM posts WHERE {where}", params).fetchall()}
    for row in variants:
        assert parse("口罩").matches(_as_post(row))
        assert row[0] in kept


def test_duckdb_escapes_like_wildcards_and_binds_everything():
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute("CREATE TABLE posts (id INTEGER, text VARCHAR)")
    texts = ["100% 满意", "1000 满意", "a_b 坏了", "axb 坏了", "c:\\temp 满", "c:xtemp 满"]
    con.executemany("INSERT INTO posts VALUES (?, ?)", list(enumerate(texts)))

    def ids(query: str) -> set[int]:
        where, params = parse(query).to_duckdb(fields={})
        return {r[0] for r in con.execute(f"SELECT id FROM posts WHERE {where}", params).fetchall()}

    assert ids('"100%"') == {0}
    assert ids('"a_b"') == {2}
    assert ids('"c:\\temp"') == {4}
    hostile = "x'); DROP TABLE posts; --"
    assert ids(f'"{hostile}"') == set()
    where, params = parse(f'"{hostile}"').to_duckdb(fields={})
    assert "DROP" not in where  # the text travels as a parameter only
    assert con.execute("SELECT count(*) FROM posts").fetchone()[0] == len(texts)


def test_duckdb_fields_and_columns():
    where, params = parse("source:weibo -lang:en area:松河区 停水").to_duckdb(
        text_column="body", fields={"source": "channel", "lang": "lang", "area": "area_path"}
    )
    assert '"body"' in where and '"channel"' in where and '"area_path"' in where
    assert params[:4] == ["weibo", "en", "en-", "|松河区|"]
    # A field the table lacks cannot narrow the scan.
    assert parse("source:weibo").to_duckdb(fields={}) == ("TRUE", [])
    assert parse("NOT 停水").to_duckdb() == ("TRUE", [])
    with pytest.raises(ValueError, match="unknown fields"):
        parse("停水").to_duckdb(fields={"sorce": "source"})


def test_reverse_normalisation_map_skips_only_stable_blocks():
    every = range(0x80, 0x110000)
    full = rules_module._scan(cp for cp in every if not 0xD800 <= cp <= 0xDFFF)
    assert rules_module._sources_of() == full


# ---------------------------------------------------------------------------- RuleSet


def test_ruleset_handles_overlapping_and_nested_strings():
    ruleset = RuleSet(
        [
            ("notice", '"停水通知"'),
            ("cut", "停水"),
            ("water", "水通"),
            ("negative", "NOT 演习"),
            ("weibo", "source:weibo"),
            ("near", "停水 NEAR/0 通知"),
        ]
    )
    assert ruleset.match(post("小区停水通知", source="weibo")) == [
        "notice",
        "cut",
        "water",
        "negative",
        "weibo",
        "near",
    ]
    assert ruleset.match(post("演习")) == []
    assert len(ruleset) == 6


@pytest.mark.shared_data
def test_ruleset_agrees_with_each_rule_on_real_posts(weibo):
    rules = [(number, parse(query)) for number, query in enumerate(WEIBO_RULES)]
    ruleset = RuleSet(rules)
    matched = 0
    for item in weibo[:3000]:
        expected = [number for number, rule in rules if rule.matches(item)]
        assert ruleset.match(item) == expected, item["text"]
        matched += bool(expected)
    assert matched > 300  # the rules are typical: a good share of posts meets one
