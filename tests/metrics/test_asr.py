"""Tests of speechx.metrics.asr: normalisation, WER, CER and mixed-token MER."""

from __future__ import annotations

import json

import pytest

from speechx.errors import MetricError
from speechx.metrics.asr import ErrorRate, TextNormalizer, cer, is_cjk, mer, mixed_tokens, wer


def test_normalizer_defaults() -> None:
    n = TextNormalizer()
    assert n("  Hallo,   Wereld!  ") == "hallo wereld"
    assert n("¿Qué tal?") == "qué tal"
    assert n("Don't say 'no' to z’n «hond».") == "don't say no to z’n hond"
    assert n("ＡＢＣ，你好。「世界」") == "abc 你好 世界"  # NFKC folds full-width forms
    assert n("well-known 3.5") == "well known 3 5"
    assert n("STRASSE Straße") == "strasse strasse"  # casefold


def test_normalizer_switches_and_settings() -> None:
    n = TextNormalizer(lowercase=False, remove_punctuation=False, collapse_whitespace=False)
    assert n("A,  b") == "A,  b"
    settings = TextNormalizer(keep_word_apostrophes=False).settings()
    assert settings == {
        "unicode_form": "NFKC",
        "lowercase": True,
        "remove_punctuation": True,
        "keep_word_apostrophes": False,
        "collapse_whitespace": True,
    }
    assert TextNormalizer(keep_word_apostrophes=False)("don't") == "don t"
    json.dumps(settings)
    with pytest.raises(MetricError, match="unicode_form"):
        TextNormalizer(unicode_form="NFX")


def test_wer_known_example() -> None:
    # the cat [sat->sit] on [the->mat] mat [+now]: 3 edits over 6 reference words
    r = wer("The cat sat on the mat.", "the cat sit on mat mat now")
    assert isinstance(r, ErrorRate) and r.metric == "wer"
    assert r.substitutions + r.deletions + r.insertions == 3
    assert r.ref_tokens == 6 and r.hyp_tokens == 7 and r.n_utts == 1
    assert r.rate == pytest.approx(3 / 6) and float(r) == r.rate
    assert r.normalizer["lowercase"] is True


def test_wer_is_corpus_level() -> None:
    r = wer(["a b c d", "e"], ["a b c d", "f"])
    assert r.rate == pytest.approx(1 / 5)  # not the mean of 0 and 1
    assert (r.substitutions, r.deletions, r.insertions, r.hits) == (1, 0, 0, 4)
    d = wer(["a b c"], [""]).to_dict()
    assert d["deletions"] == 3 and d["rate"] == 1.0 and d["metric"] == "wer"
    assert wer(["a", ""], ["a", "x y"]).rate == pytest.approx(2.0)


def test_cer_counts_spaces_like_jiwer_or_not() -> None:
    r = cer("ab c", "ab d")
    assert (r.substitutions, r.ref_tokens) == (1, 4) and r.rate == pytest.approx(0.25)
    assert r.normalizer["count_spaces"] is True
    r2 = cer("ab c", "abc", count_spaces=False)
    assert r2.rate == 0.0 and r2.ref_tokens == 3
    assert cer("ab c", "abc").deletions == 1


def test_mixed_tokens() -> None:
    assert mixed_tokens("我喜欢python编程 ok") == ["我", "喜", "欢", "python", "编", "程", "ok"]
    assert mixed_tokens("ラーメン 食べた") == ["ラ", "ー", "メ", "ン", "食", "べ", "た"]
    assert mixed_tokens("안녕 hello") == ["안", "녕", "hello"]
    assert mixed_tokens("  ") == []
    assert is_cjk("中") and is_cjk("ひ") and is_cjk("カ") and is_cjk("한")
    assert not is_cjk("a") and not is_cjk("é") and not is_cjk("中文")


def test_mer_mandarin_english_mixed_sentence() -> None:
    # ref tokens: 我 今 天 要 去 meeting 然 后 写 report  (10)
    ref = "我今天要去 meeting，然后写 report。"
    hyp = "我今天去 meeting 然后写 the report"
    r = mer(ref, hyp)
    assert r.metric == "mer" and r.ref_tokens == 10 and r.hyp_tokens == 10
    assert (r.substitutions, r.deletions, r.insertions) == (0, 1, 1)
    assert r.rate == pytest.approx(2 / 10)
    assert r.normalizer["tokens"] == "cjk-char+word"
    # one wrong Han character is one error, one wrong English word is one error
    assert mer(ref, "我今天要去 meeting 然后读 report").rate == pytest.approx(1 / 10)
    assert mer(ref, "我今天要去 meetings 然后写 report").rate == pytest.approx(1 / 10)
    # WER on the same text sees whole unsegmented chunks instead
    assert wer(ref, hyp).ref_tokens == 4


def test_errors_name_the_problem() -> None:
    with pytest.raises(MetricError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"])
    with pytest.raises(MetricError, match="every reference is empty"):
        wer(["...", ""], ["a", "b"])
    with pytest.raises(MetricError, match="hypothesis 1 is NoneType"):
        cer(["a", "b"], ["a", None])  # type: ignore[list-item]
    with pytest.raises(MetricError, match="no utterances"):
        mer([], [])
