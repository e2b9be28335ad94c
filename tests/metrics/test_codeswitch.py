"""Tests of speechx.metrics.codeswitch on Mandarin-English and Dutch-English fixtures.

Every expected number below is counted by hand from the alignment written next to it
(C correct, S substitution, D deletion, I insertion).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.errors import MetricError
from speechx.metrics.asr import TextNormalizer, align, mer
from speechx.metrics.codeswitch import (
    build_lexicon,
    check_tag_counts,
    codeswitch_scores,
    lexicons_from_tagged,
    normalize_tagged,
    scores_from_alignments,
    switch_boundaries,
    tag_alignment,
    token_language,
)

ZH = "zh"
EN = "en"
NL = "nl"


def test_mandarin_english_each_cjk_char_is_a_token() -> None:
    # REF: 我 喜 欢 python 编 程 ***    tags zh zh zh en zh zh
    # HYP: 我 喜 欢 pison  编 成 了
    #      C  C  C  S      C  S  I      (了 follows 程: a zh insertion)
    s = codeswitch_scores(
        ["我喜欢 python 编程"], ["我喜欢 pison 编成 了"], [[ZH] * 3 + [EN] + [ZH] * 2]
    )
    assert s.mer.rate == pytest.approx(3 / 6)
    assert s.mer.rate == mer("我喜欢 python 编程", "我喜欢 pison 编成 了").rate
    assert (s.mer.substitutions, s.mer.deletions, s.mer.insertions) == (2, 0, 1)
    assert s.per_lang[EN].rate == 1.0 and s.per_lang[EN].ref_tokens == 1
    zh = s.per_lang[ZH]
    assert (zh.ref_tokens, zh.substitutions, zh.insertions, zh.rate) == (5, 1, 1, 2 / 5)
    # switches 欢|python and python|编; switch tokens 欢 python 编 (python counted once)
    sp = s.switch_point
    assert (sp.n_switches, sp.switch_tokens, sp.errors) == (2, 3, 1)
    assert sp.rate == pytest.approx(1 / 3)
    assert (sp.other_tokens, sp.other_errors) == (3, 2)
    assert sp.other_rate == pytest.approx(2 / 3)
    # script decides the language: pison is Latin (en), 成 is CJK (zh)
    assert s.confusion.count(EN, EN) == 1 and s.confusion.count(ZH, ZH) == 1
    assert s.confusion.cross_rate(EN) == 0.0


def test_mandarin_english_confusion_across_languages() -> None:
    # 明 天 有 meeting -> 明 天 有 密: the English word came out as a Chinese character
    # 他 很 nice       -> 他 很 nice: correct
    refs = ["明天有 meeting", "他很 nice"]
    hyps = ["明天有密", "他很 nice"]
    tags = [[ZH, ZH, ZH, EN], [ZH, ZH, EN]]
    s = codeswitch_scores(refs, hyps, tags)
    assert s.mer.rate == pytest.approx(1 / 7)
    assert s.per_lang[EN].rate == pytest.approx(1 / 2)
    assert s.per_lang[ZH].rate == 0.0
    assert s.confusion.count(EN, ZH) == 1
    assert s.confusion.rate(EN, ZH) == pytest.approx(1 / 2)
    assert s.confusion.cross_rate(ZH) == 0.0
    # switches: 有|meeting and 很|nice -> tokens 有 meeting 很 nice, one error
    assert s.switch_point.switch_tokens == 4
    assert s.switch_point.rate == pytest.approx(1 / 4)


NL_LEX = {
    NL: {"ik", "heb", "de", "meting", "gemist", "is", "kool", "we"},
    EN: {"meeting", "the", "is"},
}


def test_dutch_english_per_language_and_confusion_with_lexicons() -> None:
    refs = [
        "Ik heb de meeting gemist.",  # meeting -> meting: en read as nl
        "we gaan naar de shop",  # de -> the: nl read as en
        "dat is cool",  # cool -> kool: en read as nl
        "hij zegt hello",  # hello -> is: in both lexicons, undecided
    ]
    hyps = ["ik heb de meting gemist", "we gaan naar the shop", "dat is kool", "hij zegt is"]
    tags = [
        [NL, NL, NL, EN, NL],
        [NL, NL, NL, NL, EN],
        [NL, NL, EN],
        [NL, NL, EN],
    ]
    s = codeswitch_scores(refs, hyps, tags, lexicons=NL_LEX)
    assert s.mer.rate == pytest.approx(4 / 16)
    assert s.per_lang[EN].ref_tokens == 4 and s.per_lang[NL].ref_tokens == 12
    assert s.per_lang[EN].rate == pytest.approx(3 / 4)
    assert s.per_lang[NL].rate == pytest.approx(1 / 12)
    c = s.confusion
    assert c.count(EN, NL) == 2 and c.count(NL, EN) == 1 and c.undecided == {EN: 1}
    assert c.rate(EN, NL) == pytest.approx(2 / 4)
    assert c.rate(NL, EN) == pytest.approx(1 / 12)
    d = c.to_dict()
    assert d["counts"] == {EN: {EN: 0, NL: 2}, NL: {EN: 1, NL: 0}}
    assert d["undecided"] == {EN: 1, NL: 0}
    # switch tokens: (de, meeting, gemist), (de, shop), (is, cool), (zegt, hello) = 9 tokens;
    # every one of the 4 errors is on a switch token
    assert s.switch_point.switch_tokens == 9
    assert s.switch_point.errors == 4
    assert s.switch_point.other_rate == 0.0


@pytest.mark.parametrize(
    ("hyp", "lang", "at_switch"),
    [
        ("ik wil de cookie please", EN, False),  # after the last token: its tag, en
        ("nou ik wil de cookie", NL, False),  # before every token: the first token's tag
        ("ik wil de uh cookie", NL, True),  # at the switch de|cookie: preceding token de, nl
        ("ik uh wil de cookie", NL, False),
    ],
)
def test_insertion_attribution(hyp: str, lang: str, at_switch: bool) -> None:
    s = codeswitch_scores(["ik wil de cookie"], [hyp], [[NL, NL, NL, EN]])
    assert s.mer.insertions == 1
    assert s.per_lang[lang].insertions == 1
    other = EN if lang == NL else NL
    assert s.per_lang[other].errors == 0
    assert s.switch_point.insertions == int(at_switch)
    assert s.switch_point.rate == pytest.approx(0.5 if at_switch else 0.0)


def test_switch_window_two() -> None:
    # tokens ik wil de cookie, switch before cookie. window 1: tokens de cookie, gap de|cookie;
    # window 2: tokens wil de cookie, gaps wil|de, de|cookie and after cookie
    s1 = codeswitch_scores(["ik wil de cookie"], ["ik wil de cookie uh"], [[NL, NL, NL, EN]])
    s2 = codeswitch_scores(
        ["ik wil de cookie"], ["ik wil de cookie uh"], [[NL, NL, NL, EN]], window=2
    )
    assert s1.switch_point.switch_tokens == 2 and s1.switch_point.insertions == 0
    assert s2.switch_point.switch_tokens == 3 and s2.switch_point.insertions == 1
    assert s2.switch_point.rate == pytest.approx(1 / 3)
    s3 = codeswitch_scores(
        ["ik wil de cookie"], ["ik uh wil de cookie"], [[NL, NL, NL, EN]], window=2
    )
    assert s3.switch_point.insertions == 0  # gap ik|wil is two tokens from the switch
    with pytest.raises(MetricError, match="window"):
        codeswitch_scores(["a"], ["a"], [[EN]], window=0)


def test_deletions_and_no_switch() -> None:
    # REF: ik heb geen tijd   (all nl, no switch)   HYP: ik geen tijd -> one deletion
    s = codeswitch_scores(["ik heb geen tijd"], ["ik geen tijd"], [[NL] * 4])
    assert s.per_lang[NL].deletions == 1 and s.per_lang[NL].rate == 0.25
    assert s.switch_point.n_switches == 0 and math.isnan(s.switch_point.rate)
    assert s.to_dict()["switch_point_error"] is None
    json.dumps(s.to_dict())


def test_empty_reference_insertions_are_unattributed() -> None:
    s = codeswitch_scores(["", "hello wereld"], ["uh", "hello wereld"], [[], [EN, NL]])
    assert s.mer.rate == pytest.approx(1 / 2)
    assert s.unattributed_insertions == 1
    assert sum(r.errors for r in s.per_lang.values()) == 0


def test_tags_follow_the_normalisation() -> None:
    tokens, tags = normalize_tagged(
        "Ik heb een well-known idee !", [NL, NL, NL, EN, NL, NL], TextNormalizer()
    )
    assert tokens == ["ik", "heb", "een", "well", "known", "idee"]
    assert tags == [NL, NL, NL, EN, EN, NL]
    # full-width punctuation between CJK characters is a token of its own, then dropped
    tokens, tags = normalize_tagged("你好 ， world", [ZH, ZH, ZH, EN])
    assert (tokens, tags) == (["你", "好", "world"], [ZH, ZH, EN])
    # an apostrophe between a CJK character and a letter survives whole-line normalisation
    tokens, tags = normalize_tagged("我'a b", [ZH, EN, EN])
    assert tokens == ["我", "'a", "b"] and tags == [ZH, EN, EN]


def test_tag_count_mismatch_names_the_utterance() -> None:
    with pytest.raises(MetricError, match=r"utterance 'u7'.*3 language tags for 4 MER tokens"):
        codeswitch_scores(["a b c d"], ["a b c d"], [[EN, EN, EN]], ids=["u7"])
    with pytest.raises(MetricError, match="not one code"):
        normalize_tagged("a b", [EN, "n l"])
    with pytest.raises(MetricError, match="2 references, 1 hypotheses"):
        codeswitch_scores(["a", "b"], ["a"], [[EN], [EN]])


def test_check_tag_counts() -> None:
    refs = {"u1": "我喜欢 python", "u2": ""}
    assert check_tag_counts(refs, {"u1": [ZH, ZH, ZH, EN], "u2": [], "other": [EN]}) == 2
    with pytest.raises(
        MetricError, match=r"'u1' has 3 language tags but its text has 4 MER tokens"
    ):
        check_tag_counts(refs, {"u1": [ZH, ZH, EN], "u2": []})
    with pytest.raises(MetricError, match="'u2' has no language tags"):
        check_tag_counts(refs, {"u1": [ZH, ZH, ZH, EN]})


def test_rates_to_dict_and_errors() -> None:
    # REF: ik wil een ****** cookie   tags nl nl nl en
    # HYP: ik wil een koekje extra    C C C I S (the insertion goes to the preceding "een": nl)
    s = codeswitch_scores(["ik wil een cookie"], ["ik wil een koekje extra"], [[NL, NL, NL, EN]])
    assert s.per_lang[EN].to_dict() == {
        "lang": EN,
        "rate": 1.0,
        "ref_tokens": 1,
        "hits": 0,
        "substitutions": 1,
        "deletions": 0,
        "insertions": 0,
    }
    assert (s.per_lang[EN].errors, s.per_lang[NL].errors) == (1, 1)
    sp = s.switch_point.to_dict()
    assert (sp["substitutions"], sp["insertions"], s.switch_point.errors) == (1, 1, 2)
    assert sp["rate"] == 1.0 and sp["other_rate"] == 0.0


def test_token_language_rules() -> None:
    assert token_language("好", [ZH, EN]) == ZH
    assert token_language("ok", [ZH, EN]) == EN
    assert token_language("42", [ZH, EN]) is None
    assert token_language("meting", [NL, EN], NL_LEX) == NL
    assert token_language("is", [NL, EN], NL_LEX) is None
    assert token_language("unknown", [NL, EN], NL_LEX) is None
    assert token_language("ok", [NL, EN]) is None  # no CJK language, no lexicons


def test_lexicon_builders() -> None:
    assert build_lexicon(["De vis!", "de BOOT"]) == {"de", "vis", "boot"}
    lex = lexicons_from_tagged(
        ["Ik wil een cookie", "我喜欢 it"], [[NL] * 3 + [EN], [ZH] * 3 + [EN]]
    )
    assert lex == {NL: {"ik", "wil", "een"}, EN: {"cookie", "it"}, ZH: {"我", "喜", "欢"}}


def test_switch_boundaries() -> None:
    assert switch_boundaries([NL, NL, EN, NL]) == [2, 3]
    assert switch_boundaries([]) == [] and switch_boundaries([EN]) == []


def test_subset_scores_add_up() -> None:
    refs = ["ik wil de cookie", "明天有 meeting"]
    hyps = ["ik wil cookie", "明天有密"]
    tags = [[NL, NL, NL, EN], [ZH, ZH, ZH, EN]]
    norm = TextNormalizer()
    al = align(refs, hyps, ids=["a", "b"], unit="mixed", normalizer=norm)
    tagged = [tag_alignment(a, t) for a, t in zip(al, tags, strict=True)]
    first = scores_from_alignments(tagged[:1], normalizer=norm)
    both = scores_from_alignments(tagged, normalizer=norm)
    assert first.mer.rate == 0.25 and both.mer.rate == pytest.approx(2 / 8)
    assert set(first.per_lang) == {EN, NL}
    assert set(both.per_lang) == {EN, NL, ZH}


WORDS = ["ik", "de", "cookie", "meeting", "我", "喜", "欢", "好", "the", "shop", "."]


@st.composite
def _tagged_pair(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    ref = draw(st.lists(st.sampled_from(WORDS[:-1]), min_size=1, max_size=8))
    hyp = draw(st.lists(st.sampled_from(WORDS), max_size=9))
    tags = draw(st.lists(st.sampled_from([NL, EN, ZH]), min_size=len(ref), max_size=len(ref)))
    return " ".join(ref), " ".join(hyp), tags


@settings(max_examples=60, deadline=None)
@given(st.lists(_tagged_pair(), min_size=1, max_size=4))
def test_decomposition_properties(items: list[tuple[str, str, list[str]]]) -> None:
    refs = [r for r, _, _ in items]
    hyps = [h for _, h, _ in items]
    s = codeswitch_scores(refs, hyps, [t for _, _, t in items])
    m = mer(refs, hyps)
    assert (s.mer.substitutions, s.mer.deletions, s.mer.insertions) == (
        m.substitutions,
        m.deletions,
        m.insertions,
    )
    total = m.substitutions + m.deletions + m.insertions
    assert sum(r.errors for r in s.per_lang.values()) == total
    assert sum(r.ref_tokens for r in s.per_lang.values()) == m.ref_tokens
    sp = s.switch_point
    assert sp.errors + sp.other_errors == total
    assert sp.switch_tokens + sp.other_tokens == m.ref_tokens
    decided = sum(s.confusion.counts.values()) + sum(s.confusion.undecided.values())
    assert decided == m.substitutions
    same = codeswitch_scores(refs, refs, [t for _, _, t in items])
    assert same.mer.rate == 0.0 and all(r.rate == 0.0 for r in same.per_lang.values())
