"""Tests of speechx.evaluation.codeswitch on tiny code-switched Kaldi dirs made at test time.

ASR scoring runs on given hypotheses (no CTC model needed); retrieval runs with a fake speech
encoder and a fake teacher, so every expected number is known exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from speechx.errors import DataDirError, EvaluationError
from speechx.evaluation.codeswitch import (
    evaluate_codeswitch,
    hypotheses_for_sets,
    read_codeswitch_dir,
    score_codeswitch,
    split_pair,
)
from speechx.metrics.asr import mer
from speechx.testing import AxisTeacher, make_kaldi_dir

UTTS = ("spk1-utt1", "spk1-utt2", "spk2-utt3")
# sentence i: (code-switched transcript, its tags, Dutch, English, cstype)
SENTENCES = (
    ("Ik heb de meeting gemist.", "nl nl nl en nl", "Ik heb de vergadering gemist.",
     "I missed the meeting.", "intra"),
    ("We gaan naar de shop", "nl nl nl nl en", "We gaan naar de winkel",
     "We are going to the shop", "intra"),
    ("Dat is leuk. That is cool", "nl nl nl en en en", "Dat is leuk. Dat is gaaf",
     "That is nice. That is cool", "inter"),
)  # fmt: skip
DIM = 8


def make_cs_dir(root: Path, name: str = "synthcs_nl-en_test") -> Path:
    """Three nl-en utterances in the shared layout (text, text.langtags, utt2lang = nl-en, ...)."""
    d = make_kaldi_dir(root / name, n=3, lang="nl-en", texts=[s[0] for s in SENTENCES])

    def write(fname: str, col: int) -> None:
        (d / fname).write_text(
            "".join(f"{u} {s[col]}\n" for u, s in zip(UTTS, SENTENCES, strict=True))
        )

    write("text.langtags", 1)
    write("text.nl", 2)
    write("text.en", 3)
    write("utt2cstype", 4)
    return d


def make_mono_dir(root: Path, lang: str, col: int, name: str) -> Path:
    return make_kaldi_dir(root / name, n=3, lang=lang, texts=[s[col] for s in SENTENCES])


def fake_teacher() -> AxisTeacher:
    """Every text of sentence i (any language, mixed too) lands on axis i."""
    axes = {t: i for i, s in enumerate(SENTENCES) for t in (s[0], s[2], s[3])}
    return AxisTeacher(axes, dim=DIM, name="fake", teacher_id="fake-teacher")


class FakeEncoder:
    """Utterance i of a dir lands on sentence i's axis, except in code-switched dirs, where the
    third utterance lands on sentence 0's axis (a retrieval miss)."""

    def encode(self, inputs: Sequence[Any], batch_size: int = 16) -> np.ndarray:
        out = np.zeros((len(inputs), DIM), dtype=np.float32)
        for row, path in enumerate(inputs):
            i = UTTS.index(Path(path).stem)
            if "synthcs" in str(path) and i == 2:
                i = 0
            out[row, i] = 1.0
        return out


HYPS = {
    "spk1-utt1": "ik heb de meting gemist",  # meeting -> meting: in no vocabulary, undecided
    "spk1-utt2": "we gaan naar de winkel",  # shop -> winkel: en read as nl (text.nl has winkel)
    "spk2-utt3": "dat is leuk that is cool",  # correct
}


def test_read_codeswitch_dir(tmp_path: Path) -> None:
    cs = read_codeswitch_dir(make_cs_dir(tmp_path))
    assert cs.pairs == ["nl-en"] and cs.utts_of("nl-en") == list(UTTS)
    assert cs.tags["spk1-utt1"] == ["nl", "nl", "nl", "en", "nl"]
    assert set(cs.translations) == {"nl", "en"}  # text.langtags is not a language
    assert cs.utt2cstype["spk2-utt3"] == "inter"
    assert split_pair("zh-en") == ("zh", "en")


def test_read_codeswitch_dir_errors_name_file_and_utterance(tmp_path: Path) -> None:
    d = make_cs_dir(tmp_path)
    tags = (d / "text.langtags").read_text().replace("nl nl nl nl en", "nl nl nl en")
    (d / "text.langtags").write_text(tags)
    with pytest.raises(DataDirError, match=r"text\.langtags: utterance 'spk1-utt2' has 4 .* 5 MER"):
        read_codeswitch_dir(d)
    d2 = make_cs_dir(tmp_path / "b")
    (d2 / "utt2lang").write_text("".join(f"{u} nl\n" for u in UTTS))
    with pytest.raises(DataDirError, match=r"utt2lang: utterance 'spk1-utt1': 'nl' is not a"):
        read_codeswitch_dir(d2)
    (d2 / "text.langtags").unlink()
    with pytest.raises(DataDirError, match="missing text.langtags"):
        read_codeswitch_dir(d2)


def test_score_codeswitch_given_hypotheses(tmp_path: Path) -> None:
    d = make_cs_dir(tmp_path)
    rep = score_codeswitch(d, HYPS)
    s = rep.scores["nl-en"]
    refs = [s[0] for s in SENTENCES]
    assert s.mer.rate == pytest.approx(2 / 16)
    assert s.mer.rate == mer(refs, [HYPS[u] for u in UTTS]).rate
    # en tokens: meeting, shop, that, is, cool -> 2 errors of 5; nl: 11 tokens, none wrong
    assert s.per_lang["en"].rate == pytest.approx(2 / 5)
    assert s.per_lang["nl"].rate == 0.0
    # switch tokens: (de meeting gemist), (de shop), (leuk that) = 7, both errors among them
    assert s.switch_point.switch_tokens == 7 and s.switch_point.errors == 2
    # winkel is in text.nl only -> en read as nl; meting is in no vocabulary -> undecided
    assert s.confusion.count("en", "nl") == 1 and s.confusion.undecided == {"en": 1}
    row = rep.rows()[0]
    assert row["pair"] == "nl-en" and row["matrix"] == "nl" and row["embedded"] == "en"
    assert row["by_cstype"]["inter"]["mer"] == 0.0
    assert row["by_cstype"]["intra"]["mer"] == pytest.approx(2 / 10)
    # a lexicon entry can decide the undecided word
    rep2 = score_codeswitch(d, HYPS, lexicons={"nl": {"meting"}})
    assert rep2.scores["nl-en"].confusion.count("en", "nl") == 2


def test_missing_and_extra_hypotheses(tmp_path: Path) -> None:
    d = make_cs_dir(tmp_path)
    hyp_file = tmp_path / "hyp.txt"
    hyp_file.write_text("spk1-utt1 ik heb de meeting gemist\nother-utt hallo\n")
    rep = score_codeswitch(d, hyp_file)
    assert rep.missing_hyps == ["spk1-utt2", "spk2-utt3"]
    assert rep.extra_hyps == ["other-utt"]
    assert rep.scores["nl-en"].mer.deletions == 11
    assert rep.rows()[0]["n_missing_hyps"] == 2


def test_evaluate_codeswitch_writes_json_and_summary(tmp_path: Path) -> None:
    d = make_cs_dir(tmp_path / "data")
    nl = make_mono_dir(tmp_path / "data", "nl", 2, "synth_nl_test")
    # German speech of the same sentences is not a comparison for the nl-en pair
    de = make_mono_dir(tmp_path / "data", "de", 2, "synth_de_test")
    out = tmp_path / "results"
    (out).mkdir()
    (out / "summary.md").write_text("# demo\n\nother sections stay\n")
    path = evaluate_codeswitch(
        [d],
        out,
        hyps={d.name: HYPS},
        encoder=FakeEncoder(),
        teacher=fake_teacher(),
        mono_dirs=[nl, de],
        cache_dir=tmp_path / "cache",
        model_name="exp/x/model",
        asr_name="given",
    )
    doc = json.loads(path.read_text())
    assert doc["task"] == "codeswitch" and doc["split"] == "test"
    (row,) = doc["results"]
    assert row["pair"] == "nl-en" and row["set"] == d.name
    assert row["mer"] == pytest.approx(2 / 16)
    assert row["per_lang"] == {"en": pytest.approx(0.4), "nl": 0.0}
    assert row["switch_point_error"] == pytest.approx(2 / 7)
    targets = {r["target"]: r for r in row["retrieval"]}
    assert set(targets) == {"text:nl", "text:en"}
    assert targets["text:nl"]["query"] == "speech:nl-en"
    assert targets["text:nl"]["recall@1"] == pytest.approx(2 / 3)
    assert targets["text:nl"]["pool_size"] == 3
    assert all(r["recall@1"] == 1.0 for r in row["ceiling"])  # the teacher reads mixed text
    mono = {r["target"]: r for r in row["retrieval_mono"]}
    assert mono["text:en"]["query"] == "speech:nl" and mono["text:en"]["recall@1"] == 1.0
    assert mono["text:en"]["pool_set"] == d.name
    drop = {r["target"]: r for r in row["retrieval_drop"]}
    assert drop["text:en"]["recall@1_drop"] == pytest.approx(1 / 3)
    assert drop["text:en"]["n_sentences"] == 3 and drop["text:en"]["mono_set"] == nl.name
    assert {r["mono_set"] for r in row["retrieval_drop"]} == {nl.name}
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# demo") and "other sections stay" in summary
    for heading in ("## Code-switching", "### Per language", "### Switch points",
                    "### Language confusion", "### Monolingual vs code-switched"):  # fmt: skip
        assert heading in summary
    assert "| synthcs_nl-en_test | nl-en | en | 5 | 2 | 0 | 0 | 40.00 |" in summary
    assert (out / f"codeswitch_alignments.{d.name}.pra").is_file()
    # a second run replaces the section instead of adding another
    evaluate_codeswitch([d], out, hyps={d.name: HYPS})
    assert (out / "summary.md").read_text().count("## Code-switching") == 1


def test_evaluate_codeswitch_needs_something_to_do(tmp_path: Path) -> None:
    d = make_cs_dir(tmp_path)
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        evaluate_codeswitch([d], tmp_path / "out")
    with pytest.raises(EvaluationError, match="unknown sets"):
        evaluate_codeswitch([d], tmp_path / "out", hyps={"other_set": HYPS})


def test_hypotheses_for_sets(tmp_path: Path) -> None:
    (tmp_path / "dec" / "a").mkdir(parents=True)
    (tmp_path / "dec" / "a" / "text").write_text("u1 hallo\n")
    (tmp_path / "dec" / "text").write_text("u2 hello\n")
    got = hypotheses_for_sets(tmp_path / "dec", ["a", "b"])
    assert got == {"a": {"u1": "hallo"}, "b": {"u2": "hello"}}
    assert hypotheses_for_sets(tmp_path / "dec" / "text", ["x"]) == {"x": {"u2": "hello"}}
    with pytest.raises(EvaluationError, match="no such"):
        hypotheses_for_sets(tmp_path / "nope", ["a"])


def test_lexicons_from_dirs(tmp_path: Path) -> None:
    from speechx.evaluation.codeswitch import lexicons_from_dirs

    cs = make_cs_dir(tmp_path / "cs")
    en = make_mono_dir(tmp_path / "mono", "en", 3, "synth_en_train")
    lex = lexicons_from_dirs([cs, en])
    assert {"meeting", "shop", "cool", "missed", "going"} <= lex["en"]
    assert "gemist" in lex["nl"] and "gemist" not in lex["en"]
    (en / "utt2lang").unlink()
    with pytest.raises(DataDirError, match="needs text and utt2lang"):
        lexicons_from_dirs([en])


def test_inter_sentential_utterances_are_keyed_by_all_their_sentences(tmp_path: Path) -> None:
    d = make_cs_dir(tmp_path / "data")
    # the third utterance renders sentences 3 and 1 (utt2sent keeps the first only)
    (d / "utt2sents").write_text("spk1-utt1 sent1\nspk1-utt2 sent2\nspk2-utt3 sent3 sent1\n")
    nl = make_mono_dir(tmp_path / "data", "nl", 2, "synth_nl_test")
    path = evaluate_codeswitch(
        [d],
        tmp_path / "res",
        encoder=FakeEncoder(),
        teacher=fake_teacher(),
        mono_dirs=[nl],
        cache_dir=tmp_path / "cache",
    )
    (row,) = json.loads(path.read_text())["results"]
    nl_row = next(r for r in row["retrieval"] if r["target"] == "text:nl")
    assert nl_row["pool_size"] == 3 and nl_row["recall@1"] == pytest.approx(2 / 3)
    # only sentences 1 and 2 have a one-sentence code-switched rendering to compare with
    drop = next(r for r in row["retrieval_drop"] if r["target"] == "text:nl")
    assert drop["n_sentences"] == 2 and drop["recall@1_drop"] == 0.0
