"""Tests of the alignment side of speechx.metrics.asr: .pra rendering, confusions, per-language
rates and the normaliser's settings round trip."""

from __future__ import annotations

import json
import math

import pytest

from speechx.errors import MetricError
from speechx.metrics.asr import (
    TextNormalizer,
    align,
    cer,
    count_errors,
    display_width,
    error_rate,
    format_alignment,
    format_pra,
    mer,
    rates_by_language,
    tokenize,
    wer,
)


def test_known_alignment_one_sub_one_ins() -> None:
    (a,) = align("a b c d", "a x c d e", ids=["u1"])
    assert a.utt_id == "u1" and a.unit == "word"
    assert a.scores == (3, 1, 0, 1) and a.errors == 2
    assert [(t.op, t.ref, t.hyp) for t in a.tokens] == [
        ("C", "a", "a"),
        ("S", "b", "x"),
        ("C", "c", "c"),
        ("C", "d", "d"),
        ("I", None, "e"),
    ]
    assert a.ref_tokens == ["a", "b", "c", "d"] and a.hyp_tokens == ["a", "x", "c", "d", "e"]
    assert a.rate == pytest.approx(0.5)


def test_missing_and_empty_sides() -> None:
    dele, ins = align(["x y", ""], ["", "p q"], ids=["d", "i"])
    assert dele.scores == (0, 0, 2, 0) and [t.hyp for t in dele.tokens] == [None, None]
    assert ins.scores == (0, 0, 0, 2) and math.isnan(ins.rate)


@pytest.mark.parametrize(
    ("refs", "hyps"),
    [
        (["The cat sat on the mat.", "e f"], ["the cat sit on mat mat now", ""]),
        (
            ["我今天要去 meeting，然后写 report。", "ab c"],
            ["我今天去 meeting 然后写 the report", "abd"],
        ),
    ],
)
def test_alignment_counts_agree_with_the_rates(refs: list[str], hyps: list[str]) -> None:
    norm = TextNormalizer()
    for unit, fn in (("word", wer), ("char", cer), ("mixed", mer)):
        summed = error_rate(align(refs, hyps, unit=unit), normalizer=norm)
        assert summed == fn(refs, hyps, norm)
    nospace = error_rate(align(refs, hyps, unit="char-no-space"), normalizer=norm)
    assert nospace == cer(refs, hyps, norm, count_spaces=False)


def test_tokenize_units() -> None:
    assert tokenize("ab  c") == ["ab", "c"]
    assert tokenize("ab  c", "char") == ["a", "b", " ", "c"]
    assert tokenize("ab c", "char-no-space") == ["a", "b", "c"]
    assert tokenize("我爱 nl", "mixed") == ["我", "爱", "nl"]
    with pytest.raises(MetricError, match="unknown token unit 'phone'"):
        tokenize("a", "phone")


def test_pra_block_is_sclite_style() -> None:
    (a,) = align("a bb c d", "a x c d eee", ids=["spk1-utt1"])
    assert format_alignment(a) == (
        "id: (spk1-utt1)\n"
        "Scores: (#C #S #D #I) 3 1 0 1\n"
        "REF:  a BB c d ***\n"
        "HYP:  a X  c d EEE\n"
        "Eval:   S      I\n"
    )
    (d,) = align("hello big world", "hello world", ids=["u2"])
    lines = format_alignment(d).splitlines()
    assert lines[2:] == ["REF:  hello BIG world", "HYP:  hello *** world", "Eval:       D"]
    (long_del,) = align("ab verylongword", "ab", ids=["u3"])
    assert format_alignment(long_del).splitlines()[3] == "HYP:  ab ************"


def test_pra_columns_line_up_with_cjk_and_spaces() -> None:
    (a,) = align("我喜欢 python", "我爱 python", unit="mixed", ids=["zh"])
    ref, hyp = format_alignment(a).splitlines()[2:4]
    # the column of each token starts at the same display offset on both lines
    assert display_width(ref[: ref.index("python")]) == display_width(hyp[: hyp.index("python")])
    assert "***" in hyp and "爱" in hyp
    (c,) = align("a b", "ab", unit="char")
    assert "␣" in format_alignment(c)  # a deleted space is visible


def test_format_pra_many_with_header() -> None:
    al = align(["a b", "c"], ["a b", "d"], ids=["u1", "u2"])
    text = format_pra(al, header=["# speechx", "# normalizer: x"])
    assert text.startswith("# speechx\n# normalizer: x\n\nid: (u1)\n")
    assert text.count("id: (") == 2 and "\n\nid: (u2)\n" in text
    assert format_pra([]) == ""


def test_count_errors_most_frequent_first() -> None:
    refs = ["de kat zit", "de hond zit", "een kat", "de vis"]
    hyps = ["het kat zit", "het hond", "een kat kat", "de vis"]
    counts = count_errors(align(refs, hyps))
    assert counts.top_substitutions() == [("de", "het", 2)]
    assert counts.top_deletions() == [("zit", 1)]
    assert counts.top_insertions() == [("kat", 1)]
    d = counts.to_dict(top=1)
    assert d["substitutions"] == [{"ref": "de", "hyp": "het", "count": 2}]
    json.dumps(d)


def test_rates_by_language_are_corpus_level() -> None:
    refs = {"n1": "a b c d", "n2": "e", "e1": "x y", "e2": "z"}
    hyps = {"n1": "a b c d", "n2": "f", "e1": "", "e2": "z", "extra": "ignored"}
    langs = {"n1": "nl", "n2": "nl", "e1": "en", "e2": "en"}
    r = rates_by_language(refs, hyps, langs)
    assert list(r) == ["en", "nl", "all"]
    assert r["nl"]["wer"].rate == pytest.approx(1 / 5)  # not the mean of 0 and 1
    assert r["en"]["wer"].rate == pytest.approx(2 / 3)
    assert r["all"]["wer"].rate == pytest.approx(3 / 8)
    assert r["nl"]["wer"].n_utts == 2 and r["all"]["cer"].n_utts == 4
    assert r["all"]["cer"] == cer(list(refs.values()), [hyps[u] for u in refs])
    only = rates_by_language(refs, hyps, metrics=["wer"])
    assert list(only) == ["all"] and list(only["all"]) == ["wer"]


def test_rates_by_language_cjk_mer() -> None:
    refs = {"z1": "我喜欢 python", "z2": "你好", "d1": "guten tag"}
    hyps = {"z1": "我爱 python", "z2": "你好", "d1": "guten tag"}
    r = rates_by_language(refs, hyps, {"z1": "zh", "z2": "zh", "d1": "de"})
    assert r["zh"]["mer"].ref_tokens == 6 and r["zh"]["mer"].rate == pytest.approx(2 / 6)
    assert r["zh"]["wer"].ref_tokens == 3  # 我喜欢 is one whitespace word
    assert r["de"]["mer"].rate == 0.0
    assert r["all"]["mer"].rate == pytest.approx(2 / 8)


def test_rates_by_language_errors_name_the_utterance() -> None:
    with pytest.raises(MetricError, match="'u2' has a reference but no hypothesis"):
        rates_by_language({"u1": "a", "u2": "b"}, {"u1": "a"})
    with pytest.raises(MetricError, match="'u1' has no language"):
        rates_by_language({"u1": "a"}, {"u1": "a"}, {})
    with pytest.raises(MetricError, match="unknown metric"):
        rates_by_language({"u1": "a"}, {"u1": "a"}, metrics=["bleu"])
    with pytest.raises(MetricError, match="clashes"):
        rates_by_language({"u1": "a"}, {"u1": "a"}, {"u1": "all"})
    with pytest.raises(MetricError, match="different units"):
        error_rate(align("a", "a") + align("a", "a", unit="char"), normalizer=TextNormalizer())


def test_normalizer_settings_round_trip() -> None:
    for n in (TextNormalizer(), TextNormalizer.verbatim(), TextNormalizer(unicode_form="NFC")):
        again = TextNormalizer.from_settings(json.loads(json.dumps(n.settings())))
        assert again == n
    # an ErrorRate's record (with tokenisation keys) rebuilds the normaliser too
    rec = cer("a", "a", TextNormalizer(lowercase=False)).normalizer
    assert TextNormalizer.from_settings(rec) == TextNormalizer(lowercase=False)
    assert TextNormalizer.from_settings({"lowercase": False}).remove_punctuation is True
    with pytest.raises(MetricError, match="unknown normalizer setting 'lower'"):
        TextNormalizer.from_settings({"lower": True})
    with pytest.raises(MetricError, match="lowercase='yes' is not true/false"):
        TextNormalizer.from_settings({"lowercase": "yes"})
    with pytest.raises(MetricError, match="must be a mapping"):
        TextNormalizer.from_settings(["lowercase"])  # type: ignore[arg-type]
    assert TextNormalizer.verbatim()("Hallo,  Wereld!") == "Hallo, Wereld!"
    assert "case-folded" in TextNormalizer().describe()
    assert "punctuation kept" in TextNormalizer.verbatim().describe()
