"""Language guess and tokens (no Django needed)."""

from __future__ import annotations

import csv

import pytest

from civicpulse.text import tokenize
from civicpulse.text.tokenize import NUM, URL, add_words, guess_language, normalize, tokens
from tests.support import shared_data


@pytest.mark.parametrize(
    "text, lang",
    [
        ("小区暖气不热，室温只有十二度", "zh"),
        ("Street light out at the corner of 5th Ave", "en"),
        ("iPhone屏幕坏了", "zh"),  # a brand name in a Chinese sentence
        ("Please fix the 路灯", "en"),
        ("ＳＴＲＥＥＴ　ＬＩＧＨＴ", "en"),  # full-width Latin letters
        ("", "en"),
        ("12345 !!!", "en"),
    ],
)
def test_guess_language(text, lang):
    assert guess_language(text) == lang


def test_normalize_folds_full_width_case_and_entities():
    assert normalize("ＡＢＣ１２３，Ｘ &amp; y") == "abc123,x & y"


def test_english_tokens_lowercase_without_stop_words():
    assert tokens("The Street Light is OUT on Main St") == ["street", "light", "out", "main", "st"]
    assert tokens("the dog's owner") == ["dog", "owner"]


def test_numbers_and_urls_become_placeholders():
    assert tokens("3 potholes on 23rd St, see https://example.org/x?y=1") == [
        NUM,
        "potholes",
        NUM,
        "st",
        "see",
        URL,
    ]
    zh = tokens("３号楼１２层停水，详见 http://example.cn/a 谢谢")
    assert zh.count(NUM) == 2 and zh[-1] == URL
    assert not any(t.isdigit() or "http" in t or "example" in t for t in zh)


def test_chinese_tokens_drop_punctuation_and_stop_words():
    words = tokens("小区的暖气不热，室温只有十二度！")
    assert "暖气" in words and "小区" in words
    assert "的" not in words and "，" not in words and "！" not in words


def test_full_width_text_tokenizes_like_half_width():
    assert tokens("ＳＴＲＥＥＴ　ＬＩＧＨＴ　ＯＵＴ") == tokens("street light out")
    assert tokens("３号楼暖气不热") == tokens("3号楼暖气不热")


def test_add_words_keeps_a_city_name_whole():
    name = "喵呜桥社区"
    assert name not in tokens(f"{name}的路灯坏了")
    assert add_words([name, " ", ""]) == 1
    assert tokens(f"{name}的路灯坏了")[0] == name
    assert add_words([name]) == 0  # already known


def test_jieba_is_initialised_once_per_process():
    tokens("暖气")
    first = tokenize._tokenizer()
    tokens("路灯")
    assert tokenize._tokenizer() is first


@pytest.mark.shared_data
def test_real_government_messages_tokenize():
    """The TipDM 2020 messages (real, long, messy): every one reads as Chinese and yields
    words; ids and phone numbers become placeholders, not features."""
    path = shared_data("zh/tipdm2020_gov_messages_labeled_part_a.csv")
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 247
    for row in rows:
        text = f"{row['留言主题']}\n{row['留言详情']}"
        assert guess_language(text) == "zh"
        words = tokens(text)
        assert len(words) >= 3
        assert not any(w.isdigit() for w in words)
